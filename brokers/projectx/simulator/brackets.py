"""Auto OCO brackets as the live gateway shows them: children exist at once, suspended.

On the live gateway a bracketed ``Order/place`` allocates three orders in the same instant: the
entry, and its stop-loss and take-profit children tagged ``<tag>-SL`` / ``<tag>-TP``, pushed on
``GatewayUserOrder`` with status 8 (Suspended) and no price, carrying ``parentOrderId``. When the
entry fills, the children turn Open (status 1) with absolute prices (fill price ± signed ticks ×
tick size) and behave as an OCO pair; if the entry ends unfilled, they are cancelled. Suspended
children are not listed by ``Order/searchOpen`` or ``Order/search`` (observed), only pushed.

The kernel's own bracket logic spawns exits only after the fill, under new order ids, so this
book keeps the children itself while suspended and, once the entry fills, submits them to the
kernel and maps the kernel's ids back to the gateway ids the client already knows.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from ....common.clock import utcnow
from ...model import OrderStatus, OrderType, Side
from ...simkernel.exchange import SimExchange, SimOrder

#: Gateway ids of children never collide with kernel ids (those count up from 1001).
CHILD_ID_BASE = 900_000_001


@dataclass(slots=True)
class Child:
    gateway_id: int
    leg: str  # "SL" or "TP"
    side: Side
    order_type: OrderType  # STOP (stop-loss) or LIMIT (take-profit)
    size: int
    ticks: int  # signed, as the client sent them
    tag: str | None
    parent_kernel_id: str
    parent_gateway_id: int
    created: datetime = field(default_factory=utcnow)
    updated: datetime = field(default_factory=utcnow)
    status: OrderStatus = OrderStatus.PENDING  # PENDING = the gateway's 8 (Suspended)
    kernel_id: str | None = None  # once the entry filled


@dataclass(slots=True)
class BracketSpec:
    """What one bracketed place asked for: signed ticks per leg (None = no such leg)."""

    stop_loss_ticks: int | None
    take_profit_ticks: int | None
    tag: str | None


class BracketBook:
    def __init__(self, exchange: SimExchange) -> None:
        self.exchange = exchange
        self._ids = itertools.count(CHILD_ID_BASE)
        self.pending: BracketSpec | None = None  # set around one submit
        self.children: dict[str, list[Child]] = {}  # parent kernel id → children
        self.by_kernel: dict[str, Child] = {}  # activated child's kernel id → child
        self.by_gateway: dict[int, Child] = {}
        self._activating: Child | None = None  # claims the next new kernel order id

    # -- ids ---------------------------------------------------------------------------
    def gateway_id(self, kernel_id: str) -> int:
        child = self.by_kernel.get(kernel_id)
        if child is None and self._activating is not None:
            # The kernel publishes a new order's first event inside submit, before it returns
            # the id: that first event is the child being activated.
            child, self._activating = self._activating, None
            child.kernel_id = kernel_id
            self.by_kernel[kernel_id] = child
        return child.gateway_id if child is not None else int(kernel_id)

    def kernel_id(self, gateway_id: Any) -> str:
        """The kernel id behind a gateway id (children map; every other order is itself)."""
        try:
            child = self.by_gateway.get(int(gateway_id))
        except (TypeError, ValueError):
            return str(gateway_id)
        if child is not None and child.kernel_id is not None:
            return child.kernel_id
        return str(gateway_id)

    def forget(self, kernel_id: str) -> int:
        """A finished order the kernel forgot: its gateway id (no new id is claimed here: this
        runs inside the kernel's submit), and its child record goes."""
        child = self.by_kernel.pop(kernel_id, None)
        self.children.pop(kernel_id, None)
        if child is None:
            return int(kernel_id)
        self.by_gateway.pop(child.gateway_id, None)
        return child.gateway_id

    def parent_of(self, kernel_id: str) -> int | None:
        child = self.by_kernel.get(kernel_id)
        return child.parent_gateway_id if child is not None else None

    # -- lifecycle -----------------------------------------------------------------------
    def bind(self, entry: SimOrder) -> list[Child]:
        """The entry of the pending bracketed place was just created: allocate its children."""
        spec, self.pending = self.pending, None
        if spec is None:
            return []
        exit_side = entry.side.opposite()
        made = []
        for leg, ticks, kind in (
            ("SL", spec.stop_loss_ticks, OrderType.STOP),
            ("TP", spec.take_profit_ticks, OrderType.LIMIT),
        ):
            if ticks is None:
                continue
            child = Child(
                next(self._ids),
                leg,
                exit_side,
                kind,
                entry.quantity,
                ticks,
                f"{spec.tag}-{leg}" if spec.tag else None,
                entry.order_id,
                int(entry.order_id),
            )
            self.by_gateway[child.gateway_id] = child
            made.append(child)
        self.children[entry.order_id] = made
        return made

    def suspended(self, parent_kernel_id: str) -> list[Child]:
        return [c for c in self.children.get(parent_kernel_id, []) if c.kernel_id is None and not c.status.is_final]

    def activate(self, entry: SimOrder, tick: Decimal) -> None:
        """The entry filled: the children become real OCO orders at fill price ± ticks."""
        assert entry.average_price is not None
        group = f"auto-oco-{entry.order_id}"
        for child in self.suspended(entry.order_id):
            price = entry.average_price + child.ticks * tick
            self._activating = child
            order, _ = self.exchange.submit(
                entry.account,
                symbol=entry.symbol,
                side=child.side,
                quantity=child.size,
                order_type=child.order_type,
                oco_group=group,
                client_order_id=child.tag,
                limit_price=price if child.order_type is OrderType.LIMIT else None,
                stop_price=price if child.order_type is OrderType.STOP else None,
            )
            self._activating = None
            child.kernel_id = order.order_id
            self.by_kernel[order.order_id] = child

    def cancel_suspended(self, parent_kernel_id: str) -> list[Child]:
        """The entry ended unfilled: its suspended children are cancelled with it."""
        cancelled = []
        for child in self.suspended(parent_kernel_id):
            child.status, child.updated = OrderStatus.CANCELLED, utcnow()
            cancelled.append(child)
        return cancelled

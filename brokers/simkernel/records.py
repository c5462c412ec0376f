"""The kernel's records: orders, positions and accounts as the simulated exchange holds them.

Split from :mod:`.exchange` so the matching logic reads on its own; ``exchange`` re-exports
every name here, so ``from ...simkernel.exchange import SimOrder`` keeps working.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from ...common.clock import utcnow
from ..model import Bracket, OrderEvent, OrderStatus, OrderType, Side, TimeInForce
from .faults import FaultSwitches

#: Reject tags: ``fault`` (a test's reject_next), ``unknown_contract``, ``invalid_quantity``,
#: ``max_order_size``, ``invalid_price``.
REJECT_CODES = frozenset({"fault", "unknown_contract", "invalid_quantity", "max_order_size", "invalid_price"})


class SimError(Exception):
    """A request the exchange cannot act on (unknown order, already final, bad account).

    ``code`` is a stable, platform-neutral tag a simulator maps to its platform's own error
    (Tradovate ``failureReason``, ProjectX ``errorCode``...) without parsing message text:
    ``unknown_account``, ``unknown_order``, ``already_final``, ``too_late``, ``invalid_quantity``.
    """

    def __init__(self, message: str, code: str = "invalid_request") -> None:
        super().__init__(message)
        self.code = code


@dataclass(slots=True)
class SimOrder:
    order_id: str
    account: str
    client_order_id: str | None
    symbol: str
    side: Side
    order_type: OrderType
    quantity: int
    limit_price: Decimal | None = None
    stop_price: Decimal | None = None
    time_in_force: TimeInForce = TimeInForce.DAY
    status: OrderStatus = OrderStatus.WORKING
    filled_quantity: int = 0
    average_price: Decimal | None = None
    reason: str | None = None
    triggered: bool = False
    oco_group: str | None = None
    bracket: Bracket | None = None
    parent_id: str | None = None
    created_at: datetime = field(default_factory=utcnow)
    updated_at: datetime = field(default_factory=utcnow)
    #: Stable tag of why the order was rejected (see ``REJECT_CODES``); reason is the text.
    reject_code: str | None = None

    @property
    def leaves_quantity(self) -> int:
        return self.quantity - self.filled_quantity

    def to_event(self) -> OrderEvent:
        return OrderEvent(
            account_id=self.account,
            client_order_id=self.client_order_id,
            broker_order_id=self.order_id,
            symbol=self.symbol,
            side=self.side,
            order_type=self.order_type,
            quantity=self.quantity,
            status=self.status,
            filled_quantity=self.filled_quantity,
            limit_price=self.limit_price,
            stop_price=self.stop_price,
            reason=self.reason,
            timestamp=self.updated_at,
        )


@dataclass(slots=True)
class SimPosition:
    net_quantity: int = 0
    average_price: Decimal | None = None
    realized_pnl: Decimal = Decimal(0)


@dataclass(slots=True)
class SimAccount:
    name: str
    balance: Decimal
    max_order_quantity: int = 1000
    positions: dict[str, SimPosition] = field(default_factory=dict)
    orders: dict[str, SimOrder] = field(default_factory=dict)
    by_client_id: dict[str, str] = field(default_factory=dict)
    faults: FaultSwitches = field(default_factory=FaultSwitches)

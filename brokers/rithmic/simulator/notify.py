"""Kernel events → RithmicOrderNotification (351) and ExchangeOrderNotification (352).

Rithmic reports an order twice over: 351 is Rithmic's own view (``notify_type`` ORDER_RCVD_FROM_CLNT,
OPEN, MODIFIED, COMPLETE …, ``status`` and ``completion_reason`` strings) and 352 the exchange's
(STATUS, MODIFY, CANCEL, FILL, REJECT, with ``fill_price``/``fill_size``/``fill_id`` per fill and
cumulative ``total_fill_size``/``total_unfilled_size``/``avg_fill_price``) [PB78 field comments,
docs/platforms/rithmic-sources.md §3]. Neither carries ``user_msg``: they belong to the account,
not to a request, so they go to every session subscribed (308) to that account.

The ``status``/``completion_reason`` strings are UNDOCUMENTED; the lower-case words used here
("open", "complete"; "Fill", "Cancel", "Reject") are opaque to a careful reader.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from decimal import Decimal

from google.protobuf.message import Message

from ...model import FillEvent, OrderEvent, OrderStatus
from ...simkernel.exchange import KernelEvent, SimOrder
from .. import codec
from ..parsing import DURATION, PRICE_TYPE, TRANSACTION
from .wire import exchange_of_symbol

# 351 notify_type
ORDER_RCVD_FROM_CLNT, OPEN, MODIFIED, COMPLETE = 1, 13, 14, 15
# 352 notify_type
STATUS, MODIFY, CANCEL, FILL, REJECT = 1, 2, 3, 5, 6


@dataclass(slots=True)
class _Seen:
    quantity: int
    limit_price: Decimal | None
    stop_price: Decimal | None


class Notifier:
    """Turns the kernel's events for one account's orders into 351/352 messages, in order."""

    def __init__(self, fcm_id: str, ib_id: str, route_of: dict[str, str], exchange_of: dict[str, str]) -> None:
        self.fcm_id, self.ib_id = fcm_id, ib_id
        self._route_of = route_of  # exchange → trade route
        self._exchange_of = exchange_of  # broker order id → exchange the order was sent to
        self._seen: dict[str, _Seen] = {}
        #: Set by the order desk around a 312's kernel submit: the exchange of the order whose
        #: events are published before submit returns (the ack, and a market order's fills).
        self.expecting: str | None = None
        #: Set around an exit position (3504): every order created meanwhile is ours, on this
        #: exchange (empty: the symbol's own venue).
        self.expecting_all: str | None = None
        self._sequence = itertools.count(1)

    def forget(self, order_ids: list[str]) -> None:
        """Orders the kernel forgot: their last-seen terms go too."""
        for order_id in order_ids:
            self._seen.pop(order_id, None)

    def translate(self, event: KernelEvent, order: SimOrder | None) -> list[Message]:
        """Messages for ``event``; ``order`` is the kernel's record of its order (None: not ours)."""
        if order is not None and order.order_id not in self._exchange_of:
            parent = order.oco_group[len("oco-") :] if order.oco_group and order.oco_group.startswith("oco-") else None
            if (
                parent is not None and parent in self._exchange_of
            ):  # a bracket's exit, placed by the exchange on the entry's fill
                self._exchange_of[order.order_id] = self._exchange_of[parent]
            elif self.expecting is not None:
                self._exchange_of[order.order_id], self.expecting = self.expecting, None
            elif self.expecting_all is not None:
                self._exchange_of[order.order_id] = self.expecting_all or exchange_of_symbol(order.symbol)
        if order is None or order.order_id not in self._exchange_of:
            return []  # positions, corrections, and orders not placed through this simulator
        if isinstance(event, FillEvent):
            return self._fill(event, order)
        if not isinstance(event, OrderEvent):
            return []  # fill corrections: how Rithmic reports a bust is UNDOCUMENTED; not sent
        seen = self._seen.get(order.order_id)
        status = event.status
        if seen is None:
            self._seen[order.order_id] = _Seen(event.quantity, event.limit_price, event.stop_price)
            if status is OrderStatus.REJECTED:
                text = event.reason or "rejected"
                return [
                    self._rithmic(order, ORDER_RCVD_FROM_CLNT, "order received from client"),
                    self._exchange(order, REJECT, "reject", status="complete", text=text),
                    self._rithmic(order, COMPLETE, "complete", completion_reason="Reject", text=text),
                ]
            return [
                self._rithmic(order, ORDER_RCVD_FROM_CLNT, "order received from client"),
                self._exchange(order, STATUS, "status", status="open"),
                self._rithmic(order, OPEN, "open"),
            ]
        if status in (OrderStatus.CANCELLED, OrderStatus.EXPIRED):
            reason = "Cancel" if status is OrderStatus.CANCELLED else "Expired"
            return [
                self._exchange(order, CANCEL, "cancel", status="complete", cancelled_size=order.leaves_quantity),
                self._rithmic(order, COMPLETE, "complete", completion_reason=reason),
            ]
        changed = (event.quantity, event.limit_price, event.stop_price) != (
            seen.quantity,
            seen.limit_price,
            seen.stop_price,
        )
        if status in (OrderStatus.WORKING, OrderStatus.PARTIALLY_FILLED) and changed:
            seen.quantity, seen.limit_price, seen.stop_price = event.quantity, event.limit_price, event.stop_price
            return [
                self._exchange(order, MODIFY, "modify", status="open", modified_size=event.quantity),
                self._rithmic(order, MODIFIED, "open"),
            ]
        return []  # FILLED / PARTIALLY_FILLED: the fill event that follows says it

    def snapshot(self, order: SimOrder) -> Message:
        """An order as ShowOrders (320) or the day's history (324) lists it: a 352 with
        ``is_snapshot`` [AR order.py] whose type says its state (how a real snapshot of a
        finished order looks is UNDOCUMENTED)."""
        kind, report = {
            OrderStatus.FILLED: (FILL, "fill"),
            OrderStatus.CANCELLED: (CANCEL, "cancel"),
            OrderStatus.EXPIRED: (CANCEL, "cancel"),
            OrderStatus.REJECTED: (REJECT, "reject"),
        }.get(order.status, (STATUS, "status"))
        status = "complete" if order.status.is_final else "open"
        return self._exchange(order, kind, report, status=status, is_snapshot=True, text=order.reason)

    def _fill(self, fill: FillEvent, order: SimOrder) -> list[Message]:
        done = fill.leaves_quantity == 0
        messages = [
            self._exchange(
                order,
                FILL,
                "fill",
                status="complete" if done else "open",
                fill_price=float(fill.price),
                fill_size=fill.quantity,
                fill_id=fill.fill_id,
                fill_time=fill.timestamp.strftime("%H:%M:%S"),
                fill_date=fill.timestamp.strftime("%Y%m%d"),
                total_fill_size=fill.cumulative_quantity,
                total_unfilled_size=fill.leaves_quantity,
            )
        ]
        if done:
            messages.append(self._rithmic(order, COMPLETE, "complete", completion_reason="Fill"))
        return messages

    def _common(self, order: SimOrder) -> dict[str, object]:
        exchange = self._exchange_of[order.order_id]
        fields: dict[str, object] = {
            "user_tag": order.client_order_id,
            "basket_id": order.order_id,
            "fcm_id": self.fcm_id,
            "ib_id": self.ib_id,
            "account_id": order.account,
            "symbol": order.symbol,
            "exchange": exchange,
            "trade_route": self._route_of.get(exchange),
            "quantity": order.quantity,
            "transaction_type": TRANSACTION[order.side],
            "duration": DURATION[order.time_in_force],
            "price_type": PRICE_TYPE[order.order_type],
            "total_fill_size": order.filled_quantity,
            "total_unfilled_size": order.leaves_quantity if not order.status.is_final else 0,
            "sequence_number": str(next(self._sequence)),
            "ssboe": int(order.updated_at.timestamp()),
            "usecs": order.updated_at.microsecond,
        }
        if order.limit_price is not None:
            fields["price"] = float(order.limit_price)
        if order.stop_price is not None:
            fields["trigger_price"] = float(order.stop_price)
        if order.average_price is not None:
            fields["avg_fill_price"] = float(order.average_price)
        return fields

    def _rithmic(self, order: SimOrder, notify_type: int, status: str, **extra: object) -> Message:
        return codec.build(351, notify_type=notify_type, status=status, **{**self._common(order), **extra})

    def _exchange(self, order: SimOrder, notify_type: int, report_type: str, **extra: object) -> Message:
        fields = {**self._common(order), **extra}
        return codec.build(352, notify_type=notify_type, report_type=report_type, **fields)

"""Requests waiting for their answers on a DTC connection.

DTC has no request/response pairing of its own for orders: the answer to a new order, a
cancel or a cancel-replace is the next ORDER_UPDATE carrying our ClientOrderID with the
matching ``OrderUpdateReason``. Resync requests carry a ``RequestID`` and are answered by a
numbered series (``MessageNumber`` of ``TotalNumberMessages``) ending early with a "none" flag
(NoOrders, NoPositions, NoOrderFills, NoAccountBalances), or by the request's reject message.
"""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import dataclass, field

from ..errors import BrokerError
from .codec import Message
from .messages import MsgType

__all__ = ["Collector", "OrderWaiter", "Pending", "RequestRefused"]

_NONE_FLAGS = ("NoOrders", "NoPositions", "NoOrderFills", "NoAccountBalances")
_REJECTS = {
    MsgType.OPEN_ORDERS_REQUEST: MsgType.OPEN_ORDERS_REJECT,
    MsgType.CURRENT_POSITIONS_REQUEST: MsgType.CURRENT_POSITIONS_REJECT,
    MsgType.HISTORICAL_ORDER_FILLS_REQUEST: MsgType.HISTORICAL_ORDER_FILLS_REJECT,
    MsgType.ACCOUNT_BALANCE_REQUEST: MsgType.ACCOUNT_BALANCE_REJECT,
}
_ANSWERS = {
    MsgType.OPEN_ORDERS_REQUEST: MsgType.ORDER_UPDATE,
    MsgType.CURRENT_POSITIONS_REQUEST: MsgType.POSITION_UPDATE,
    MsgType.HISTORICAL_ORDER_FILLS_REQUEST: MsgType.HISTORICAL_ORDER_FILL_RESPONSE,
    MsgType.ACCOUNT_BALANCE_REQUEST: MsgType.ACCOUNT_BALANCE_UPDATE,
    MsgType.TRADE_ACCOUNTS_REQUEST: MsgType.TRADE_ACCOUNT_RESPONSE,
}


class RequestRefused(BrokerError):
    """The server answered a resync request with its reject message (the text inside)."""


def _number(msg: Message, name: str) -> int:
    value = msg.values.get(name)
    return value if isinstance(value, int) else 0


@dataclass
class Collector:
    """The messages answering one RequestID, complete at the last one or a "none" marker."""

    answer: MsgType
    reject: MsgType | None
    future: asyncio.Future[list[Message]]
    items: list[Message] = field(default_factory=list)

    def take(self, msg: Message) -> bool:
        """Consume ``msg`` if it answers this request; True when it did."""
        if self.future.done():
            return msg.type in (self.answer, self.reject)
        if msg.type is self.reject:
            self.future.set_exception(RequestRefused(f"dtc: {msg.spec.name}: {msg.as_text('RejectText')}"))
            return True
        if msg.type is not self.answer:
            return False
        marker = any(_number(msg, flag) for flag in _NONE_FLAGS)
        if not marker:
            self.items.append(msg)
        total = _number(msg, "TotalNumMessages") or _number(msg, "TotalNumberMessages")
        if marker or _number(msg, "MessageNumber") >= total:
            self.future.set_result(self.items)
        return True


@dataclass
class OrderWaiter:
    """Waits for the ORDER_UPDATE that answers one order request (by ClientOrderID and reason).

    ``ignore`` holds ServerOrderIDs known before the request was sent: a ClientOrderID used
    before belongs to an earlier order, whose own updates must not pass for this answer.
    """

    client_order_id: str
    reasons: frozenset[int]
    ignore: frozenset[str]
    future: asyncio.Future[Message]

    def matches(self, msg: Message) -> bool:
        if msg.as_text("ClientOrderID") != self.client_order_id:
            return False
        if msg.as_text("ServerOrderID") in self.ignore:
            return False
        return msg.as_int("OrderUpdateReason") in self.reasons


class Pending:
    def __init__(self) -> None:
        self._ids = itertools.count(1)
        self.requests: dict[int, Collector] = {}
        self.waiters: list[OrderWaiter] = []

    def request(self, msg_type: MsgType) -> tuple[int, Collector]:
        """A new RequestID and the collector its answers go to."""
        request_id = next(self._ids)
        future: asyncio.Future[list[Message]] = asyncio.get_running_loop().create_future()
        collector = Collector(_ANSWERS[msg_type], _REJECTS.get(msg_type), future)
        self.requests[request_id] = collector
        future.add_done_callback(lambda _: self.requests.pop(request_id, None))
        return request_id, collector

    def wait_order(self, client_order_id: str, reasons: frozenset[int], ignore: frozenset[str]) -> OrderWaiter:
        future: asyncio.Future[Message] = asyncio.get_running_loop().create_future()
        waiter = OrderWaiter(client_order_id, reasons, ignore, future)
        self.waiters.append(waiter)
        future.add_done_callback(lambda _: self.waiters.remove(waiter) if waiter in self.waiters else None)
        return waiter

    def offer_response(self, msg: Message) -> bool:
        """Give a RequestID-bearing message to its collector; False when none waits for it."""
        request_id = _number(msg, "RequestID")
        collector = self.requests.get(request_id) if request_id else None
        return collector is not None and collector.take(msg)

    def offer_order(self, msg: Message) -> None:
        for waiter in list(self.waiters):
            if not waiter.future.done() and waiter.matches(msg):
                waiter.future.set_result(msg)

    def fail_all(self, error: BaseException) -> None:
        for collector in list(self.requests.values()):
            if not collector.future.done():
                collector.future.set_exception(error)
        for waiter in list(self.waiters):
            if not waiter.future.done():
                waiter.future.set_exception(error)

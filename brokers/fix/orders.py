"""Order requests of the FIX adapter: place, cancel/replace, cancel, flatten, lookup, status.

Each request is sent once and answered by the ExecutionReport (or OrderCancelReject, or a
reject) carrying its ClOrdID. Nothing here resends: a lost answer is
``BrokerUnavailable(sent=True)`` and the executor calls :func:`lookup` before placing again.
The counterparty is never trusted to refuse a repeated ClOrdID.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import TYPE_CHECKING

from ..errors import BrokerUnavailable, OrderRejected, UnknownOrder
from ..model import CancelOrder, FlattenPosition, ModifyOrder, OrderAck, OrderEvent, OrderStatus, PlaceOrder, Side
from . import messages as m
from .codec import FixDecodeError, FixMessage
from .messages import OrderTerms
from .reports import UnreadableAnswer
from .tracking import TrackedOrder

if TYPE_CHECKING:
    from .adapter import FixAdapter


def _refusal(answer: FixMessage) -> str | None:
    """The text of a refusal (reject report, cancel reject, business or session reject)."""
    if answer.msg_type in (m.SESSION_REJECT, m.BUSINESS_REJECT, m.CANCEL_REJECT):
        return answer.get(m.TEXT) or f"refused ({answer.msg_type})"
    if answer.get(m.ORD_STATUS) == "8" or answer.get(m.EXEC_TYPE) == "8":
        return answer.get(m.TEXT) or "rejected"
    return None


def _ack(adapter: FixAdapter, account_id: str, client_id: str, answer: FixMessage) -> OrderAck:
    try:
        return OrderAck(account_id, client_id, answer.require(m.ORDER_ID), m.order_status(answer))
    except FixDecodeError as exc:
        raise UnreadableAnswer(f"fix: {exc}", code="BAD_ANSWER") from None


async def _request(adapter: FixAdapter, msg_type: str, cl: str, fields: m.Fields, what: str) -> FixMessage:
    await adapter.ready()
    future = adapter.router.wait(cl)
    try:
        adapter.send(msg_type, fields)
    except BaseException:
        adapter.router.waiters.pop(cl, None)
        raise
    return await adapter.router.answer(cl, future, what)


async def place(adapter: FixAdapter, command: PlaceOrder) -> OrderAck:
    terms = OrderTerms(
        account=adapter.broker_account(command.account_id),
        symbol=command.symbol,
        side=command.side,
        quantity=command.quantity,
        order_type=command.order_type,
        limit_price=command.limit_price,
        stop_price=command.stop_price,
        time_in_force=command.time_in_force,
    )
    return await _new(adapter, command.account_id, command.client_order_id, terms)


async def _new(adapter: FixAdapter, account_id: str, client_id: str, terms: OrderTerms) -> OrderAck:
    fields = m.new_order(client_id, terms)  # built first: a bad value is refused before the journal
    adapter.book.record_new(account_id, client_id, client_id, terms)
    answer = await _request(adapter, m.NEW_ORDER, client_id, fields, f"new order {client_id!r}")
    text = _refusal(answer)
    if text is not None:
        raise OrderRejected(f"fix: {text}", code="NEW_ORDER_REJECTED")
    return _ack(adapter, account_id, client_id, answer)


def _tracked(adapter: FixAdapter, account_id: str, client_id: str) -> TrackedOrder:
    order = adapter.book.orders.get(client_id)
    if order is None or order.account_id != account_id:
        raise UnknownOrder(f"fix: no order {client_id!r} was sent by this session")
    return order


def _cancel_refused(answer: FixMessage, what: str) -> None:
    text = _refusal(answer)
    if text is None:
        return
    if answer.get(m.CXL_REJ_REASON) == "1" or answer.get(m.ORD_STATUS) in ("2", "4", "C", "3"):
        raise UnknownOrder(f"fix: {what} refused: {text}", code="CANCEL_REJECTED")
    raise OrderRejected(f"fix: {what} refused: {text}", code="CANCEL_REJECTED")


async def modify(adapter: FixAdapter, command: ModifyOrder) -> OrderAck:
    """OrderCancelReplaceRequest with the full new terms; the new ClOrdID becomes current."""
    order = _tracked(adapter, command.account_id, command.client_order_id)
    terms = replace(
        order.terms,
        quantity=command.quantity or order.terms.quantity,
        limit_price=command.limit_price if command.limit_price is not None else order.terms.limit_price,
        stop_price=command.stop_price if command.stop_price is not None else order.terms.stop_price,
    )
    cl = adapter.book.next_request_id(order, "R")
    fields = m.replace_request(cl, order.current_cl_ord_id, order.order_id, terms)
    answer = await _request(adapter, m.REPLACE, cl, fields, f"cancel/replace of {order.client_order_id!r}")
    _cancel_refused(answer, "modify")
    order.terms, order.current_cl_ord_id = terms, cl
    return _ack(adapter, command.account_id, command.client_order_id, answer)


async def cancel(adapter: FixAdapter, command: CancelOrder) -> OrderAck:
    order = _tracked(adapter, command.account_id, command.client_order_id)
    return await _cancel(adapter, order)


async def _cancel(adapter: FixAdapter, order: TrackedOrder) -> OrderAck:
    if order.last is not None and order.last.status is OrderStatus.CANCELLED:
        return OrderAck(order.account_id, order.client_order_id, order.order_id, OrderStatus.CANCELLED, duplicate=True)
    cl = adapter.book.next_request_id(order, "C")
    fields = m.cancel_request(cl, order.current_cl_ord_id, order.order_id, order.terms)
    answer = await _request(adapter, m.CANCEL, cl, fields, f"cancel of {order.client_order_id!r}")
    _cancel_refused(answer, "cancel")
    return _ack(adapter, order.account_id, order.client_order_id, answer)


async def flatten(adapter: FixAdapter, command: FlattenPosition) -> OrderAck:
    """Cancel the account's working orders (in the symbol), then an opposite market order per
    open position, carrying our id (a second symbol of a flatten-all gets ``<id>.2``…)."""
    account_id, symbol = command.account_id, command.symbol
    for order in adapter.book.working(account_id, symbol):
        if not order.order_id:
            continue
        try:
            await _cancel(adapter, order)
        except (UnknownOrder, OrderRejected):
            pass  # it finished meanwhile: nothing left to cancel
    account = adapter.broker_account(account_id)
    positions = sorted(
        (key[1], net)
        for key, net in adapter.book.positions.items()
        if key[0] == account_id and net and symbol in (None, key[1])
    )
    first: OrderAck | None = None
    for n, (sym, net) in enumerate(positions, start=1):
        client_id = command.client_order_id if n == 1 else f"{command.client_order_id}.{n}"
        terms = OrderTerms(account, sym, Side.SELL if net > 0 else Side.BUY, abs(net), m.ORD_TYPES_IN["1"])
        ack = await _new(adapter, account_id, client_id, terms)
        first = first or ack
    return first or OrderAck(account_id, command.client_order_id, "none", OrderStatus.FILLED)


async def status(adapter: FixAdapter, order: TrackedOrder, order_id: str = "") -> OrderEvent | None:
    """OrderStatusRequest for ``order``: its state, or None when the counterparty knows none.

    One at a time: an answer names only the ClOrdID, so a resync and a snapshot asking about
    the same order at once could not tell their answers apart."""
    async with adapter.status_lock:
        return await _status(adapter, order, order_id)


async def statuses(adapter: FixAdapter, asks: list[TrackedOrder]) -> list[OrderEvent | None]:
    """OrderStatusRequests for several orders at once (their first OrderID each), answers in
    the same order. Their ClOrdIDs must differ (an answer names only the ClOrdID); the lock
    keeps any other status request out until all are answered. The first failure is raised."""
    if len({order.current_cl_ord_id for order in asks}) != len(asks):
        raise ValueError("fix: status requests at once need distinct ClOrdIDs")
    async with adapter.status_lock:
        answers = await asyncio.gather(*(_status(adapter, o, o.order_id) for o in asks), return_exceptions=True)
    for answer in answers:
        if isinstance(answer, BaseException):
            raise answer
    return [answer for answer in answers if not isinstance(answer, BaseException)]


async def _status(adapter: FixAdapter, order: TrackedOrder, order_id: str) -> OrderEvent | None:
    await adapter.ready()
    cl = order.current_cl_ord_id
    future = adapter.router.wait(cl, status=True)
    try:
        adapter.send(m.STATUS, m.status_request(cl, order.terms, order_id))
    except BaseException:
        adapter.router.status_waiters.pop(cl, None)
        raise
    answer = await adapter.router.answer(cl, future, f"status of {order.client_order_id!r}", status=True)
    if answer.msg_type != m.EXECUTION_REPORT:
        raise BrokerUnavailable(
            f"fix: cannot tell whether {order.client_order_id!r} exists: status request refused "
            f"({answer.get(m.TEXT) or answer.msg_type})",
            sent=False,
        )
    if answer.get(m.ORD_REJ_REASON) == m.UNKNOWN_ORDER:
        return None
    try:
        return m.order_event(answer, order.account_id, order.client_order_id)
    except FixDecodeError as exc:
        raise BrokerUnavailable(f"fix: status answer not understood: {exc}", sent=False) from None


async def lookup(adapter: FixAdapter, account_id: str, client_order_id: str) -> OrderAck | None:
    """An id this session never handed to the engine (the journal is written before sending)
    exists nowhere: None. Otherwise the counterparty is asked with an OrderStatusRequest; one
    that does not answer them (``order_status_requests`` off) leaves the outcome unknown."""
    adapter.broker_account(account_id)
    order = adapter.book.remembered(client_order_id)  # in full or as a fingerprint (#18)
    if order is None or order.account_id != account_id:
        return None
    if not adapter.fix.order_status:
        raise BrokerUnavailable(
            f"fix: cannot tell whether {client_order_id!r} exists: the counterparty takes no order status requests",
            sent=False,
        )
    state = await status(adapter, order, order.order_id)
    if state is None:
        return None
    return OrderAck(account_id, client_order_id, state.broker_order_id, state.status, duplicate=True)

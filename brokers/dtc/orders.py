"""Order requests of the DTC adapter: place, cancel-replace, cancel, flatten and lookup.

Each request is sent once and answered by an ORDER_UPDATE with our ClientOrderID and one of
the reasons that answer it; nothing here resends. ``sent=True`` on a lost answer tells the
executor to :func:`lookup` before anything is placed again.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import BrokerError, BrokerUnavailable, OrderRejected, UnknownOrder
from ..model import (
    CancelOrder,
    FlattenPosition,
    ModifyOrder,
    OrderAck,
    OrderEvent,
    OrderStatus,
    OrderType,
    PlaceOrder,
)
from . import enums as e
from . import parsing
from .codec import EncodeError, Message, make
from .messages import DBL_MAX, MsgType
from .pending import RequestRefused

if TYPE_CHECKING:
    from .adapter import DtcAdapter

Reason = e.OrderUpdateReason
#: Every update that answers a new order (or a flatten): accepted, rejected, or already further.
NEW_ORDER_ANSWERS = frozenset(
    {
        Reason.NEW_ORDER_ACCEPTED,
        Reason.NEW_ORDER_REJECTED,
        Reason.GENERAL_ORDER_UPDATE,
        Reason.ORDER_FILLED,
        Reason.ORDER_FILLED_PARTIALLY,
        Reason.ORDER_CANCELED,
    }
)
REPLACE_ANSWERS = frozenset({Reason.ORDER_CANCEL_REPLACE_COMPLETE, Reason.ORDER_CANCEL_REPLACE_REJECTED})
CANCEL_ANSWERS = frozenset({Reason.ORDER_CANCELED, Reason.ORDER_CANCEL_REJECTED})


class UnreadableAnswer(BrokerError):
    """The ORDER_UPDATE answering our request holds a value we cannot read; ``raw`` is its first
    bytes in hex. The request may have been carried out, so the executor reports BAD_ANSWER
    (state unknown) and looks the order up rather than sending it again."""

    def __init__(self, message: str, raw: str) -> None:
        super().__init__(message, code="BAD_ANSWER")
        self.raw = raw


def _status(adapter: DtcAdapter, update: Message) -> OrderStatus:
    """The answer's order status, strictly: a value we do not know is never guessed."""
    try:
        return parsing.STATUSES[e.OrderStatus(update.as_int("OrderStatus"))]
    except (ValueError, KeyError):
        raw = adapter.raw(update).hex()
        raise UnreadableAnswer(f"dtc: answer with OrderStatus {update.as_int('OrderStatus')}", raw) from None


def text_of(update: Message, fallback: str) -> str:
    return update.as_text("InfoText") or fallback


async def _request(
    adapter: DtcAdapter, account_id: str, message: Message, client_id: str, answers: frozenset[int], what: str
) -> Message:
    """Send ``message`` and wait for the ORDER_UPDATE answering it."""
    connection = adapter.live()
    known = (
        frozenset(adapter.book.known_server_ids(account_id, client_id)) if answers is NEW_ORDER_ANSWERS else frozenset()
    )
    waiter = adapter.pending.wait_order(client_id, answers, known)
    try:
        connection.send(message)
    except BaseException:
        waiter.future.cancel()
        raise
    return await adapter.answer(waiter.future, connection, what)


async def place(adapter: DtcAdapter, command: PlaceOrder, *, is_parent: bool = False) -> OrderAck:
    account = adapter.broker_account(command.account_id)
    adapter.book.placed[(command.account_id, command.client_order_id)] = command
    try:
        message = parsing.submit_order(command, account, is_parent=is_parent)
    except EncodeError as exc:  # e.g. a ClientOrderID over the 31 bytes the struct holds
        raise OrderRejected(f"dtc: cannot send this order: {exc}", code="INVALID") from None
    what = f"new order {command.client_order_id!r}"
    update = await _request(adapter, command.account_id, message, command.client_order_id, NEW_ORDER_ANSWERS, what)
    return await _new_order_answer(adapter, command.account_id, command.client_order_id, update)


def refused(update: Message) -> bool:
    reason, status = update.as_int("OrderUpdateReason"), update.as_int("OrderStatus")
    return reason == Reason.NEW_ORDER_REJECTED or status == e.OrderStatus.REJECTED


async def _new_order_answer(adapter: DtcAdapter, account_id: str, client_id: str, update: Message) -> OrderAck:
    server_id = update.as_text("ServerOrderID")
    if refused(update):
        text = text_of(update, "rejected")
        if not server_id:  # perhaps a repeated ClientOrderID: the order holding it is the answer
            try:
                found = await lookup(adapter, account_id, client_id)
            except BrokerUnavailable:
                found = None
            if found is not None and found.status is not OrderStatus.REJECTED:
                return found
        raise OrderRejected(f"dtc: {text}", code="NEW_ORDER_REJECTED")
    status = _status(adapter, update)
    if not server_id:
        raise UnreadableAnswer("dtc: an accepted order without a ServerOrderID", adapter.raw(update).hex())
    return OrderAck(account_id, client_id, server_id, status)


async def _open_order(adapter: DtcAdapter, account_id: str, client_id: str) -> OrderEvent:
    for order in await adapter.open_orders(account_id):
        if order.client_order_id == client_id:
            return order
    raise UnknownOrder(f"dtc: no open order with ClientOrderID {client_id!r}")


async def modify(adapter: DtcAdapter, command: ModifyOrder) -> OrderAck:
    """CANCEL_REPLACE_ORDER on the open order: prices not changed go with their IsSet flag 0,
    and the quantity is always the full new order quantity (never 0, which servers may read
    as "unchanged" or as zero)."""
    order = await _open_order(adapter, command.account_id, command.client_order_id)
    price1, price2, set1, set2 = DBL_MAX, DBL_MAX, 0, 0
    if order.order_type is OrderType.LIMIT and command.limit_price is not None:
        price1, set1 = float(command.limit_price), 1
    elif order.order_type in (OrderType.STOP, OrderType.STOP_LIMIT) and command.stop_price is not None:
        price1, set1 = float(command.stop_price), 1
    if order.order_type is OrderType.STOP_LIMIT and command.limit_price is not None:
        price2, set2 = float(command.limit_price), 1
    message = make(
        MsgType.CANCEL_REPLACE_ORDER,
        ServerOrderID=order.broker_order_id,
        ClientOrderID=command.client_order_id,
        Price1=price1,
        Price2=price2,
        Price1IsSet=set1,
        Price2IsSet=set2,
        Quantity=float(command.quantity or order.quantity),
    )
    what = f"cancel-replace of {command.client_order_id!r}"
    update = await _request(adapter, command.account_id, message, command.client_order_id, REPLACE_ANSWERS, what)
    if update.as_int("OrderUpdateReason") == Reason.ORDER_CANCEL_REPLACE_REJECTED:
        raise OrderRejected(f"dtc: modify refused: {text_of(update, 'rejected')}", code="CANCEL_REPLACE_REJECTED")
    return OrderAck(
        command.account_id, command.client_order_id, update.as_text("ServerOrderID"), _status(adapter, update)
    )


async def cancel(adapter: DtcAdapter, command: CancelOrder) -> OrderAck:
    known = adapter.book.known_server_ids(command.account_id, command.client_order_id)
    server_id = (
        known[-1]
        if known
        else (await _open_order(adapter, command.account_id, command.client_order_id)).broker_order_id
    )
    return await cancel_server_order(adapter, command.account_id, command.client_order_id, server_id)


async def cancel_server_order(adapter: DtcAdapter, account_id: str, client_id: str, server_id: str) -> OrderAck:
    """CANCEL_ORDER; a refusal for an order already canceled is the cancel done (a redelivery)."""
    message = make(MsgType.CANCEL_ORDER, ServerOrderID=server_id, ClientOrderID=client_id)
    update = await _request(adapter, account_id, message, client_id, CANCEL_ANSWERS, f"cancel of {client_id!r}")
    if update.as_int("OrderUpdateReason") == Reason.ORDER_CANCELED:
        return OrderAck(account_id, client_id, update.as_text("ServerOrderID") or server_id, OrderStatus.CANCELLED)
    text = text_of(update, "cancel rejected")
    status = update.as_int("OrderStatus")
    if status == e.OrderStatus.CANCELED:
        return OrderAck(account_id, client_id, server_id, OrderStatus.CANCELLED, duplicate=True)
    if status in (e.OrderStatus.UNSPECIFIED, e.OrderStatus.REJECTED):
        raise UnknownOrder(f"dtc: cancel refused: {text}", code="CANCEL_REJECTED")
    raise OrderRejected(f"dtc: cancel refused: {text}", code="CANCEL_REJECTED")


async def flatten(adapter: DtcAdapter, command: FlattenPosition) -> OrderAck:
    """Cancel the working orders, then SUBMIT_FLATTEN_POSITION_ORDER per open position.

    The flatten request carries our ClientOrderID and the server's closing order keeps it, so
    :func:`lookup` finds a flatten like any order. Whether a server cancels working orders on
    its own is undocumented, so they are canceled first. A second symbol of a flatten-all gets
    ``<id>.2``, ``<id>.3``…: a server refuses a ClientOrderID used before.
    """
    account_id, symbol = command.account_id, command.symbol
    for order in await adapter.open_orders(account_id):
        if symbol is None or order.symbol == symbol:
            try:  # an order entered without a ClientOrderID is canceled by its ServerOrderID alone
                await cancel_server_order(adapter, account_id, order.client_order_id or "", order.broker_order_id)
            except (UnknownOrder, OrderRejected):
                pass  # it finished meanwhile: nothing left to cancel
    positions = sorted(
        (p for p in await adapter.positions(account_id) if p.net_quantity and symbol in (None, p.symbol)),
        key=lambda p: p.symbol,
    )
    first: OrderAck | None = None
    for n, position in enumerate(positions, start=1):
        client_id = command.client_order_id if n == 1 else f"{command.client_order_id}.{n}"
        message = make(
            MsgType.SUBMIT_FLATTEN_POSITION_ORDER,
            Symbol=position.symbol,
            TradeAccount=adapter.broker_account(account_id),
            ClientOrderID=client_id,
            IsAutomatedOrder=1,
        )
        update = await _request(adapter, account_id, message, client_id, NEW_ORDER_ANSWERS, f"flatten {client_id!r}")
        ack = await _new_order_answer(adapter, account_id, client_id, update)
        first = first or ack
    return first or OrderAck(account_id, command.client_order_id, "none", OrderStatus.FILLED)


async def lookup(adapter: DtcAdapter, account_id: str, client_order_id: str) -> OrderAck | None:
    """Ask the server: the open orders (they carry the ClientOrderID), then the fill history.

    History records name only the ServerOrderID, so a fill is traced to our id through the
    pairs this session read from ORDER_UPDATEs. A fill of an order never seen here could be
    ours: then the answer is "cannot tell" (``BrokerUnavailable``), never "none". An order seen
    here that ended without a fill (canceled, rejected) is reported from what the server said.
    """
    for order in await adapter.open_orders(account_id):
        if order.client_order_id == client_order_id:
            return OrderAck(account_id, client_order_id, order.broker_order_id, order.status, duplicate=True)
    try:
        fills = await adapter.fill_history(account_id)
    except RequestRefused as exc:
        raise BrokerUnavailable(f"dtc: cannot tell whether {client_order_id!r} exists: {exc}", sent=False) from exc
    book = adapter.book
    ours = [f.broker_order_id for f in fills if f.client_order_id == client_order_id]
    if ours:
        last = book.orders.get(ours[0])
        status = last.status if last is not None and last.status.is_final else OrderStatus.FILLED
        return OrderAck(account_id, client_order_id, ours[0], status, duplicate=True)
    untraced = sorted({f.broker_order_id for f in fills if f.client_order_id is None})
    if untraced:
        raise BrokerUnavailable(
            f"dtc: cannot tell whether {client_order_id!r} exists: fills of orders {', '.join(untraced[:5])} "
            "name no ClientOrderID and were not seen on this session",
            sent=False,
        )
    for server_id in book.known_server_ids(account_id, client_order_id):
        seen = book.orders.get(server_id)
        if seen is not None:
            return OrderAck(account_id, client_order_id, server_id, seen.status, duplicate=True)
    return None

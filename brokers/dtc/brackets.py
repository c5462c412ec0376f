"""Brackets on DTC: the entry as a parent order, its two exits as one OCO attached to it.

The entry goes out as SUBMIT_NEW_SINGLE_ORDER with ``IsParentOrder`` 1; then one
SUBMIT_NEW_OCO_ORDER names it in ``ParentTriggerClientOrderID``: leg 1 the take-profit (limit),
leg 2 the stop-loss (stop), both on the exit side. ``UseOffsets`` with the bracket's distances
lets the server price the exits at the entry's real fill; Price1 of each leg carries the same
distances from the best anchor we know (the entry's price, or the bracket's reference price for
a market entry) for a server that prices from Price1. The legs carry ``<id>.tp`` / ``<id>.sl``.
Only servers whose LOGON_RESPONSE sets OCOOrdersSupported and BracketOrdersSupported are asked.
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING

from ..errors import OrderRejected, UnknownOrder, UnsupportedOperation
from ..model import OrderAck, OrderType, PlaceOrder
from . import enums as e
from . import orders, parsing
from .codec import EncodeError, Message, make
from .messages import MsgType

if TYPE_CHECKING:
    from .adapter import DtcAdapter


def _anchor(command: PlaceOrder) -> Decimal | None:
    if command.order_type in (OrderType.LIMIT, OrderType.STOP_LIMIT):
        return command.limit_price
    if command.order_type is OrderType.STOP:
        return command.stop_price
    assert command.bracket is not None
    return command.bracket.reference_price


def oco_exits(command: PlaceOrder, trade_account: str) -> Message:
    """The SUBMIT_NEW_OCO_ORDER holding a bracketed entry's take-profit and stop-loss."""
    bracket = command.bracket
    assert bracket is not None and bracket.take_profit is not None and bracket.stop_loss is not None
    anchor, direction = _anchor(command), command.side.sign
    take_profit = None if anchor is None else anchor + direction * bracket.take_profit
    stop_loss = None if anchor is None else anchor - direction * bracket.stop_loss
    exit_side = int(parsing.DTC_SIDES[command.side.opposite()])
    return make(
        MsgType.SUBMIT_NEW_OCO_ORDER,
        Symbol=command.symbol,
        TradeAccount=trade_account,
        ClientOrderID_1=f"{command.client_order_id}.tp",
        OrderType_1=int(e.OrderType.LIMIT),
        BuySell_1=exit_side,
        Price1_1=parsing.price_out(take_profit),
        Quantity_1=float(command.quantity),
        ClientOrderID_2=f"{command.client_order_id}.sl",
        OrderType_2=int(e.OrderType.STOP),
        BuySell_2=exit_side,
        Price1_2=parsing.price_out(stop_loss),
        Quantity_2=float(command.quantity),
        TimeInForce=int(e.TimeInForce.GOOD_TILL_CANCELED),
        IsAutomatedOrder=1,
        ParentTriggerClientOrderID=command.client_order_id,
        UseOffsets=1,
        OffsetFromParent1=float(bracket.take_profit),
        OffsetFromParent2=float(bracket.stop_loss),
    )


async def place_bracket(adapter: DtcAdapter, command: PlaceOrder) -> OrderAck:
    """Entry (parent) first, then its OCO exits; refused exits cancel the entry.

    An entry that filled before its exits were refused cannot be taken back: it stands without
    exits, which is reported (health and an event) and answered with the entry's ack, because
    the order does exist and its fills flow.
    """
    bracket = command.bracket
    assert bracket is not None
    connection = adapter.live()
    if not (connection.flag("OCOOrdersSupported") and connection.flag("BracketOrdersSupported")):
        raise UnsupportedOperation(
            "dtc: this server does not support brackets (LOGON_RESPONSE OCOOrdersSupported/BracketOrdersSupported = 0)"
        )
    if bracket.take_profit is None or bracket.stop_loss is None:
        raise UnsupportedOperation("dtc: a bracket needs both a take-profit and a stop-loss (DTC sends them as an OCO)")
    if bracket.take_profit <= 0 or bracket.stop_loss <= 0:
        raise OrderRejected("dtc: bracket distances must be positive", code="INVALID")
    account = adapter.broker_account(command.account_id)
    try:
        exits = oco_exits(command, account)
    except EncodeError as exc:
        raise OrderRejected(f"dtc: cannot send this bracket: {exc}", code="INVALID") from None
    entry = await orders.place(adapter, command, is_parent=True)
    legs = [exits.as_text("ClientOrderID_1"), exits.as_text("ClientOrderID_2")]
    waiters = [
        adapter.pending.wait_order(
            leg, orders.NEW_ORDER_ANSWERS, frozenset(adapter.book.known_server_ids(command.account_id, leg))
        )
        for leg in legs
    ]
    try:
        connection = adapter.live()
        connection.send(exits)
        answers = [
            await adapter.answer(w.future, connection, f"bracket exit {leg!r}")
            for w, leg in zip(waiters, legs, strict=True)
        ]
    finally:
        for waiter in waiters:  # the other leg's answer (or failure) is nobody's business any more
            if not waiter.future.done():
                waiter.future.cancel()
            elif not waiter.future.cancelled():
                waiter.future.exception()  # read, so a failure nobody awaited is not logged as lost
    refusals = [orders.text_of(a, "refused") for a in answers if orders.refused(a)]
    if not refusals:
        return entry
    text = "; ".join(refusals)
    try:
        await orders.cancel_server_order(adapter, command.account_id, command.client_order_id, entry.broker_order_id)
    except (UnknownOrder, OrderRejected) as exc:
        adapter.report(
            f"bracket exits of {command.client_order_id!r} refused ({text}); the entry stands without them: {exc}"
        )
        return entry
    raise OrderRejected(f"dtc: bracket exits refused ({text}); the entry was cancelled", code="BRACKET_REJECTED")

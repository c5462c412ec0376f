"""Kernel records to DTC ORDER_UPDATE / POSITION_UPDATE messages.

DTC has one unified order message: acceptance, fills, cancels and every rejection arrive as an
ORDER_UPDATE whose ``OrderUpdateReason`` says which, with the text in ``InfoText``. Doubles the
update does not carry stay at DBL_MAX ("unset"), as the header's ``Clear`` leaves them.
"""

from __future__ import annotations

from datetime import datetime

from ...model import FillEvent, OrderStatus, OrderType, PositionEvent
from ...simkernel.records import SimOrder
from .. import messages as m
from ..codec import Message, make
from ..messages import MsgType, Value
from ..parsing import DTC_ORDER_TYPES, DTC_SIDES, DTC_TIME_IN_FORCE, price_out

STATUS = {
    OrderStatus.PENDING: m.OrderStatus.PENDING_CHILD,
    OrderStatus.WORKING: m.OrderStatus.OPEN,
    OrderStatus.PARTIALLY_FILLED: m.OrderStatus.PARTIALLY_FILLED,
    OrderStatus.FILLED: m.OrderStatus.FILLED,
    OrderStatus.CANCELLED: m.OrderStatus.CANCELED,
    OrderStatus.REJECTED: m.OrderStatus.REJECTED,
    OrderStatus.EXPIRED: m.OrderStatus.CANCELED,  # DTC has no "expired" status
}


def unix_seconds(when: datetime) -> int:
    return int(when.timestamp())


def _prices(order: SimOrder) -> tuple[float, float]:
    """Price1 is the limit (LIMIT) or the stop (STOP, STOP_LIMIT); Price2 the stop-limit's limit."""
    if order.order_type is OrderType.LIMIT:
        return price_out(order.limit_price), m.DBL_MAX
    if order.order_type is OrderType.STOP:
        return price_out(order.stop_price), m.DBL_MAX
    if order.order_type is OrderType.STOP_LIMIT:
        return price_out(order.stop_price), price_out(order.limit_price)
    return m.DBL_MAX, m.DBL_MAX


def order_update(order: SimOrder, reason: m.OrderUpdateReason, **extra: Value) -> Message:
    """The full state of ``order`` as one ORDER_UPDATE."""
    price1, price2 = _prices(order)
    values: dict[str, Value] = {
        "Symbol": order.symbol,
        "ServerOrderID": order.order_id,
        "ClientOrderID": order.client_order_id or "",
        "ExchangeOrderID": order.order_id,
        "TradeAccount": order.account,
        "OrderStatus": int(STATUS[order.status]),
        "OrderUpdateReason": int(reason),
        "OrderType": int(DTC_ORDER_TYPES[order.order_type]),
        "BuySell": int(DTC_SIDES[order.side]),
        "Price1": price1,
        "Price2": price2,
        "TimeInForce": int(DTC_TIME_IN_FORCE[order.time_in_force]),
        "OrderQuantity": float(order.quantity),
        "FilledQuantity": float(order.filled_quantity),
        "RemainingQuantity": float(order.leaves_quantity if not order.status.is_final else 0),
        "AverageFillPrice": price_out(order.average_price),
        "InfoText": (order.reason or "")[:95],
        "OrderReceivedDateTime": unix_seconds(order.created_at),
        "LatestTransactionDateTime": order.updated_at.timestamp(),
    }
    values.update(extra)
    return make(MsgType.ORDER_UPDATE, **values)


def fill_update(order: SimOrder, fill: FillEvent) -> Message:
    reason = m.OrderUpdateReason.ORDER_FILLED_PARTIALLY if fill.leaves_quantity else m.OrderUpdateReason.ORDER_FILLED
    update = order_update(
        order,
        reason,
        LastFillPrice=float(fill.price),
        LastFillQuantity=float(fill.quantity),
        LastFillDateTime=unix_seconds(fill.timestamp),
        LastFillExecutionID=fill.fill_id,
        FilledQuantity=float(fill.cumulative_quantity),
        RemainingQuantity=float(fill.leaves_quantity),
        OrderStatus=int(m.OrderStatus.PARTIALLY_FILLED if fill.leaves_quantity else m.OrderStatus.FILLED),
    )
    return update


def refused_order(
    client_order_id: str, account: str, symbol: str, text: str, reason: m.OrderUpdateReason, server_id: str = ""
) -> Message:
    """An ORDER_UPDATE for a request that never became (or did not change) a kernel order."""
    return make(
        MsgType.ORDER_UPDATE,
        ClientOrderID=client_order_id[:31],
        ServerOrderID=server_id,
        TradeAccount=account[:31],
        Symbol=symbol[:63],
        OrderStatus=int(m.OrderStatus.REJECTED if reason is m.OrderUpdateReason.NEW_ORDER_REJECTED else 0),
        OrderUpdateReason=int(reason),
        InfoText=text[:95],
    )


def position_update(event: PositionEvent, **extra: Value) -> Message:
    values: dict[str, Value] = {
        "Symbol": event.symbol,
        "TradeAccount": event.account_id,
        "Quantity": float(event.net_quantity),
        "AveragePrice": price_out(event.average_price) if event.net_quantity else 0.0,
    }
    values.update(extra)
    return make(MsgType.POSITION_UPDATE, **values)


def fill_record(fill: FillEvent, **extra: Value) -> Message:
    """One HISTORICAL_ORDER_FILL_RESPONSE: a fill as the account's history holds it."""
    values: dict[str, Value] = {
        "Symbol": fill.symbol,
        "ServerOrderID": fill.broker_order_id,
        "BuySell": int(DTC_SIDES[fill.side]),
        "Price": float(fill.price),
        "DateTime": unix_seconds(fill.timestamp),
        "Quantity": float(fill.quantity),
        "UniqueExecutionID": fill.fill_id,
        "TradeAccount": fill.account_id,
    }
    values.update(extra)
    return make(MsgType.HISTORICAL_ORDER_FILL_RESPONSE, **values)

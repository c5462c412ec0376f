"""DTC wire values to the domain model and back (shared by the simulator and the adapter).

Prices travel as doubles; here they become :class:`~decimal.Decimal` through ``repr`` (the
shortest decimal that reads back as the same double, so 5000.25 stays 5000.25), and DBL_MAX —
the header's "unset, do not use" — becomes ``None``. Quantities must be whole contracts.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import TypeVar

from ..model import FillEvent, OrderEvent, OrderStatus, OrderType, PlaceOrder, PositionEvent, Side, TimeInForce
from . import enums as e
from .codec import Message, make
from .messages import DBL_MAX, MsgType

E = TypeVar("E", bound=enum.IntEnum)
V = TypeVar("V")

ORDER_TYPES = {
    e.OrderType.MARKET: OrderType.MARKET,
    e.OrderType.LIMIT: OrderType.LIMIT,
    e.OrderType.STOP: OrderType.STOP,
    e.OrderType.STOP_LIMIT: OrderType.STOP_LIMIT,
}
DTC_ORDER_TYPES = {kernel: dtc for dtc, kernel in ORDER_TYPES.items()}
TIME_IN_FORCE = {
    e.TimeInForce.DAY: TimeInForce.DAY,
    e.TimeInForce.GOOD_TILL_CANCELED: TimeInForce.GTC,
    e.TimeInForce.IMMEDIATE_OR_CANCEL: TimeInForce.IOC,
    e.TimeInForce.FILL_OR_KILL: TimeInForce.FOK,
}
DTC_TIME_IN_FORCE = {kernel: dtc for dtc, kernel in TIME_IN_FORCE.items()}
SIDES = {e.BuySell.BUY: Side.BUY, e.BuySell.SELL: Side.SELL}
DTC_SIDES = {kernel: dtc for dtc, kernel in SIDES.items()}
#: DTC status → domain status. Sent / pending states are live orders (WORKING); UNSPECIFIED has
#: no domain meaning and is not mapped.
STATUSES = {
    e.OrderStatus.ORDER_SENT: OrderStatus.WORKING,
    e.OrderStatus.PENDING_OPEN: OrderStatus.WORKING,
    e.OrderStatus.PENDING_CHILD: OrderStatus.PENDING,
    e.OrderStatus.OPEN: OrderStatus.WORKING,
    e.OrderStatus.PENDING_CANCEL_REPLACE: OrderStatus.WORKING,
    e.OrderStatus.PENDING_CANCEL: OrderStatus.WORKING,
    e.OrderStatus.FILLED: OrderStatus.FILLED,
    e.OrderStatus.CANCELED: OrderStatus.CANCELLED,
    e.OrderStatus.REJECTED: OrderStatus.REJECTED,
    e.OrderStatus.PARTIALLY_FILLED: OrderStatus.PARTIALLY_FILLED,
}


class WireValueError(ValueError):
    """A server sent a value the domain cannot hold (a fractional contract, an unknown enum)."""


#: What reading a server's value can raise: ours, a wrong kind, a timestamp out of range.
BAD_VALUES = (WireValueError, TypeError, ValueError, KeyError, OverflowError, OSError)


def price_in(value: float) -> Decimal | None:
    if not math.isfinite(value) or value == DBL_MAX:
        return None
    return Decimal(repr(value))


def price_out(value: Decimal | None) -> float:
    return DBL_MAX if value is None else float(value)


def contracts(value: float) -> int:
    """A whole number of contracts; DBL_MAX (unset) reads as 0."""
    if value == DBL_MAX:
        return 0
    if not math.isfinite(value) or value != int(value):
        raise WireValueError(f"quantity {value} is not a whole number of contracts")
    return int(value)


def _lookup(table: Mapping[E, V], kind: type[E], value: int, what: str) -> V:
    try:
        return table[kind(value)]
    except (ValueError, KeyError):
        raise WireValueError(f"unsupported {what} {value}") from None


def submit_order(command: PlaceOrder, trade_account: str, *, is_parent: bool = False) -> Message:
    """SUBMIT_NEW_SINGLE_ORDER for a domain order (Price1 = limit or stop, Price2 = stop-limit's limit);
    ``is_parent`` marks the entry of a bracket, whose OCO exits follow naming it."""
    price1, price2 = DBL_MAX, DBL_MAX
    if command.order_type is OrderType.LIMIT:
        price1 = price_out(command.limit_price)
    elif command.order_type is OrderType.STOP:
        price1 = price_out(command.stop_price)
    elif command.order_type is OrderType.STOP_LIMIT:
        price1, price2 = price_out(command.stop_price), price_out(command.limit_price)
    return make(
        MsgType.SUBMIT_NEW_SINGLE_ORDER,
        Symbol=command.symbol,
        TradeAccount=trade_account,
        ClientOrderID=command.client_order_id,
        OrderType=int(DTC_ORDER_TYPES[command.order_type]),
        BuySell=int(DTC_SIDES[command.side]),
        Price1=price1,
        Price2=price2,
        Quantity=float(command.quantity),
        TimeInForce=int(DTC_TIME_IN_FORCE[command.time_in_force]),
        IsAutomatedOrder=1,
        IsParentOrder=int(is_parent),
    )


def order_event(msg: Message, account_id: str) -> OrderEvent | None:
    """The domain view of an ORDER_UPDATE; ``None`` for one with no order (NoOrders) or no status."""
    if msg.as_int("NoOrders") or msg.as_int("OrderStatus") == e.OrderStatus.UNSPECIFIED:
        return None
    status = _lookup(STATUSES, e.OrderStatus, msg.as_int("OrderStatus"), "order status")
    order_type = _lookup(ORDER_TYPES, e.OrderType, msg.as_int("OrderType"), "order type")
    price1, price2 = price_in(msg.as_float("Price1")), price_in(msg.as_float("Price2"))
    limit_price = price1 if order_type is OrderType.LIMIT else price2 if order_type is OrderType.STOP_LIMIT else None
    stop_price = price1 if order_type in (OrderType.STOP, OrderType.STOP_LIMIT) else None
    return OrderEvent(
        account_id=account_id,
        client_order_id=msg.as_text("ClientOrderID") or None,
        broker_order_id=msg.as_text("ServerOrderID"),
        symbol=msg.as_text("Symbol"),
        side=_lookup(SIDES, e.BuySell, msg.as_int("BuySell"), "side"),
        order_type=order_type,
        quantity=contracts(msg.as_float("OrderQuantity")),
        status=status,
        filled_quantity=contracts(msg.as_float("FilledQuantity")),
        limit_price=limit_price,
        stop_price=stop_price,
        reason=msg.as_text("InfoText") or None,
    )


def fill_event(msg: Message, account_id: str) -> FillEvent | None:
    """The fill an ORDER_UPDATE reports (reasons ORDER_FILLED / ORDER_FILLED_PARTIALLY), if any."""
    reason = msg.as_int("OrderUpdateReason")
    filled = (e.OrderUpdateReason.ORDER_FILLED, e.OrderUpdateReason.ORDER_FILLED_PARTIALLY)
    price = price_in(msg.as_float("LastFillPrice"))
    if reason not in filled or price is None or not contracts(msg.as_float("LastFillQuantity")):
        return None
    when = msg.as_int("LastFillDateTime")
    return FillEvent(
        account_id=account_id,
        client_order_id=msg.as_text("ClientOrderID") or None,
        broker_order_id=msg.as_text("ServerOrderID"),
        fill_id=msg.as_text("LastFillExecutionID"),
        symbol=msg.as_text("Symbol"),
        side=_lookup(SIDES, e.BuySell, msg.as_int("BuySell"), "side"),
        quantity=contracts(msg.as_float("LastFillQuantity")),
        price=price,
        cumulative_quantity=contracts(msg.as_float("FilledQuantity")),
        leaves_quantity=contracts(msg.as_float("RemainingQuantity")),
        timestamp=datetime.fromtimestamp(when, UTC) if when > 0 else datetime.now(UTC),
    )


def position_event(msg: Message, account_id: str) -> PositionEvent | None:
    """The domain view of a POSITION_UPDATE; ``None`` for the NoPositions marker."""
    if msg.as_int("NoPositions"):
        return None
    net = contracts(msg.as_float("Quantity"))
    return PositionEvent(
        account_id=account_id,
        symbol=msg.as_text("Symbol"),
        net_quantity=net,
        average_price=price_in(msg.as_float("AveragePrice")) if net else None,
    )


def history_fill(msg: Message, account_id: str, client_order_id: str | None) -> FillEvent:
    """One HISTORICAL_ORDER_FILL_RESPONSE as a fill (cumulative/leaves are the caller's to set:
    a history record knows only its own execution)."""
    price = price_in(msg.as_float("Price"))
    quantity = contracts(msg.as_float("Quantity"))
    if price is None or quantity <= 0:
        raise WireValueError(f"historical fill {msg.as_text('UniqueExecutionID')!r} has no price or quantity")
    when = msg.as_int("DateTime")
    server_id = msg.as_text("ServerOrderID")
    return FillEvent(
        account_id=account_id,
        client_order_id=client_order_id,
        broker_order_id=server_id,
        fill_id=msg.as_text("UniqueExecutionID") or f"{server_id}:{when}:{quantity}",
        symbol=msg.as_text("Symbol"),
        side=_lookup(SIDES, e.BuySell, msg.as_int("BuySell"), "side"),
        quantity=quantity,
        price=price,
        cumulative_quantity=quantity,
        leaves_quantity=0,
        timestamp=datetime.fromtimestamp(when, UTC) if when > 0 else datetime.now(UTC),
    )

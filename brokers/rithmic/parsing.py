"""R|Protocol order notifications → the broker-neutral model (OrderEvent, FillEvent).

Rithmic reports each order twice: 351 (Rithmic's own view, with ``status``/``completion_reason``
strings whose values no public source defines) and 352 (the exchange's view, with a typed
``notify_type``: STATUS, MODIFY, CANCEL, FILL, REJECT …) [PB78]. The model is read from 352 only,
keyed on ``notify_type`` and the cumulative size fields, so no undocumented string decides a
state. Enum values outside the known set (a newer server's, e.g. 351 RELEASE_PENDING 21 that
async-rithmic's classes lack) are left as ints by protobuf and read as "not ours" here.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from ..instruments import instrument_for
from ..model import FillEvent, OrderEvent, OrderStatus, OrderType, Side, TimeInForce
from . import codec

#: Wire enums (request_new_order.proto / exchange_order_notification.proto) ↔ model.
PRICE_TYPE = {OrderType.LIMIT: 1, OrderType.MARKET: 2, OrderType.STOP_LIMIT: 3, OrderType.STOP: 4}
ORDER_TYPE = {v: k for k, v in PRICE_TYPE.items()}
DURATION = {TimeInForce.DAY: 1, TimeInForce.GTC: 2, TimeInForce.IOC: 3, TimeInForce.FOK: 4}
TIME_IN_FORCE = {v: k for k, v in DURATION.items()}
TRANSACTION = {Side.BUY: 1, Side.SELL: 2}
SIDE = {1: Side.BUY, 2: Side.SELL, 3: Side.SELL}  # 3 = SS (sell short) on notifications

# 352 notify_type
STATUS, MODIFY, CANCEL, TRIGGER, FILL, REJECT = 1, 2, 3, 4, 5, 6
#: The 352 types that state an order's condition: one the model cannot read is a bad answer.
STATE_TYPES = frozenset({STATUS, MODIFY, CANCEL, TRIGGER, FILL, REJECT})


class OutOfRange(ValueError):
    """A field whose value no order can have (a NaN or infinite price, a negative size)."""


def price(value: float, symbol: str) -> Decimal:
    """A wire double as the tick-exact Decimal it stands for (prices are doubles [PB78]);
    :class:`OutOfRange` for a NaN or an infinity."""
    raw = Decimal(repr(value))
    if not raw.is_finite():
        raise OutOfRange(f"price {value!r}")
    try:
        return instrument_for(symbol).round_to_tick(raw)
    except (KeyError, ValueError):
        return raw  # a root we hold no tick for: keep what the wire said


def timestamp(message: Any) -> datetime:
    if message.ssboe:
        try:
            return datetime.fromtimestamp(message.ssboe + message.usecs / 1_000_000, tz=UTC)
        except (OverflowError, ValueError, OSError):
            raise OutOfRange(f"ssboe {message.ssboe} usecs {message.usecs}") from None
    return datetime.now(UTC)


def order_event(message: Any) -> OrderEvent | None:
    """The order state a 352 reports, or None when it is not one we can read (unknown types,
    out-of-range fields: the adapter reports those with the raw message)."""
    if codec.template_of(message) != 352:
        return None
    try:
        return _order_event(message)
    except OutOfRange:
        return None


def _order_event(message: Any) -> OrderEvent | None:
    side = SIDE.get(message.transaction_type)
    order_type = ORDER_TYPE.get(message.price_type)
    if side is None or order_type is None or not message.basket_id:
        return None
    filled, unfilled = int(message.total_fill_size), int(message.total_unfilled_size)
    if min(filled, unfilled, message.quantity) < 0:
        raise OutOfRange(f"sizes {message.quantity}/{filled}/{unfilled}")
    kind = message.notify_type
    reason = message.text or None
    if kind == REJECT:
        status = OrderStatus.REJECTED
    elif kind == CANCEL:
        status = OrderStatus.CANCELLED
    elif kind == FILL:
        status = OrderStatus.FILLED if unfilled == 0 else OrderStatus.PARTIALLY_FILLED
    elif kind in (STATUS, MODIFY, TRIGGER):
        status = OrderStatus.PARTIALLY_FILLED if filled else OrderStatus.WORKING
    else:
        return None  # NOT_MODIFIED, NOT_CANCELLED, GENERIC, newer types: no state change we can trust
    symbol = message.symbol
    return OrderEvent(
        account_id=message.account_id,
        client_order_id=message.user_tag or None,
        broker_order_id=message.basket_id,
        symbol=symbol,
        side=side,
        order_type=order_type,
        quantity=int(message.quantity),
        status=status,
        filled_quantity=filled,
        limit_price=price(message.price, symbol) if order_type in (OrderType.LIMIT, OrderType.STOP_LIMIT) else None,
        stop_price=price(message.trigger_price, symbol)
        if order_type in (OrderType.STOP, OrderType.STOP_LIMIT)
        else None,
        reason=reason,
        timestamp=timestamp(message),
    )


def fill_event(message: Any) -> FillEvent | None:
    """The execution a 352 FILL reports (per-fill size and price, cumulative totals), else None."""
    if codec.template_of(message) != 352 or message.notify_type != FILL:
        return None
    side = SIDE.get(message.transaction_type)
    if side is None or not message.fill_id or message.fill_size <= 0 or message.total_fill_size < message.fill_size:
        return None
    if message.total_unfilled_size < 0:
        return None
    try:
        fill_price, when = price(message.fill_price, message.symbol), timestamp(message)
    except OutOfRange:
        return None
    return FillEvent(
        account_id=message.account_id,
        client_order_id=message.user_tag or None,
        broker_order_id=message.basket_id,
        fill_id=message.fill_id,
        symbol=message.symbol,
        side=side,
        quantity=int(message.fill_size),
        price=fill_price,
        cumulative_quantity=int(message.total_fill_size),
        leaves_quantity=int(message.total_unfilled_size),
        timestamp=when,
    )

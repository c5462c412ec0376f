"""Translation between brokers.model and Tradovate's vocabulary (enum strings, numbers).

Prices cross the wire as JSON numbers; they become ``Decimal`` through ``str()`` so a
``5000.25`` never turns into ``5000.2499999``. Unknown enum strings map to a safe default
rather than raising: a new status string from the broker must not kill the event loop.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from ..model import OrderStatus, OrderType, Side, TimeInForce
from . import schemas as s

_SIDE_TO = {Side.BUY: s.BUY, Side.SELL: s.SELL}
_SIDE_FROM = {v: k for k, v in _SIDE_TO.items()}

_TYPE_TO = {OrderType.MARKET: s.MARKET, OrderType.LIMIT: s.LIMIT, OrderType.STOP: s.STOP,
            OrderType.STOP_LIMIT: s.STOP_LIMIT}
_TYPE_FROM = {v: k for k, v in _TYPE_TO.items()}

_TIF_TO = {TimeInForce.DAY: s.TIF_DAY, TimeInForce.GTC: s.TIF_GTC, TimeInForce.IOC: s.TIF_IOC,
           TimeInForce.FOK: s.TIF_FOK}
_TIF_FROM = {v: k for k, v in _TIF_TO.items()}

_STATUS_TO = {
    OrderStatus.PENDING: s.PENDING_NEW, OrderStatus.WORKING: s.WORKING,
    OrderStatus.PARTIALLY_FILLED: s.WORKING, OrderStatus.FILLED: s.FILLED,
    OrderStatus.CANCELLED: s.CANCELED, OrderStatus.REJECTED: s.REJECTED,
    OrderStatus.EXPIRED: s.EXPIRED,
}
_STATUS_FROM = {
    s.PENDING_NEW: OrderStatus.PENDING, "PendingReplace": OrderStatus.WORKING,
    "PendingCancel": OrderStatus.WORKING, s.WORKING: OrderStatus.WORKING,
    s.FILLED: OrderStatus.FILLED, s.COMPLETED: OrderStatus.FILLED,
    s.CANCELED: OrderStatus.CANCELLED, s.REJECTED: OrderStatus.REJECTED,
    s.EXPIRED: OrderStatus.EXPIRED, s.SUSPENDED: OrderStatus.PENDING,
}


def action(side: Side) -> str:
    return _SIDE_TO[side]


def side(value: str) -> Side:
    return _SIDE_FROM.get(value, Side.BUY)


def order_type(value: OrderType) -> str:
    return _TYPE_TO[value]


def order_type_from(value: str | None) -> OrderType:
    return _TYPE_FROM.get(value or "", OrderType.MARKET)


def tif(value: TimeInForce) -> str:
    return _TIF_TO[value]


def tif_from(value: str | None) -> TimeInForce:
    return _TIF_FROM.get(value or "", TimeInForce.DAY)


def ord_status(status: OrderStatus) -> str:
    return _STATUS_TO[status]


def status_from(value: str | None, filled: int = 0, quantity: int = 0) -> OrderStatus:
    """Tradovate keeps a partly filled order ``Working``; the model says PARTIALLY_FILLED."""
    status = _STATUS_FROM.get(value or "", OrderStatus.WORKING)
    if status is OrderStatus.WORKING and 0 < filled < quantity:
        return OrderStatus.PARTIALLY_FILLED
    return status


def price_out(value: Decimal | None) -> float | None:
    """JSON number for the wire; the API takes prices as numbers, not strings."""
    return None if value is None else float(value)


def price_in(value: Any) -> Decimal | None:
    if value is None:
        return None
    return Decimal(str(value))


def failure_reason(text: str | None) -> str:
    """The simulator's failureReason for a kernel reject text (a known reason passes through)."""
    if not text:
        return "UnknownReason"
    if text in s.FAILURE_REASONS:
        return text
    lowered = text.lower()
    if "price" in lowered:
        return "InvalidPrice"
    if "contract" in lowered:
        return "InvalidContract"
    if "max order" in lowered or "quantity" in lowered:
        return "MaxOrderQtyLimitReached"
    if "already" in lowered:
        return "TooLate"
    return "UnknownReason"

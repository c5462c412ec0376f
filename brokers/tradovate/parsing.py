"""Translation between brokers.model and Tradovate's vocabulary (enum strings, numbers).

Prices cross the wire as JSON numbers; they become ``Decimal`` through ``str()`` so a
``5000.25`` never turns into ``5000.2499999``. Order-status strings map to a safe default; the
``commandStatus`` reader is strict and raises :class:`UnknownEnumValue` carrying the raw text,
which the entity cache records instead of crashing: a new string must not kill the feed.
"""

from __future__ import annotations

import enum
from decimal import Decimal
from typing import Any

from ..errors import BrokerError
from ..model import OrderStatus, OrderType, Side, TimeInForce
from . import schemas as s


class UnknownEnumValue(BrokerError):
    """Tradovate sent an enum string this adapter does not know; ``raw`` is the text as sent.

    Raised by the strict readers (``command_outcome``); the entity cache catches it, keeps the
    raw text for health and the logs, and carries on: a new value must never stop the feed.
    """

    def __init__(self, field: str, raw: Any) -> None:
        super().__init__(f"unknown Tradovate {field} {raw!r}", code=str(raw))
        self.field = field
        self.raw = raw


class CommandOutcome(str, enum.Enum):
    """What a ``commandStatus`` means for the request that made the command."""

    PENDING = "pending"  # still on its way (risk, hold, queue)
    EXECUTED = "executed"  # reached the exchange: it took effect
    REJECTED = "rejected"  # refused or stopped: it took no effect


#: Every value of the CommandStatus enum (services-api docs Command.md / CommandReport.md).
#: ExecutionStopped/ExecutionSuspended are not described further: "stopped" is read as final
#: without effect, "suspended" as still pending (it may resume), the safe reading of each.
_COMMAND_OUTCOME = {
    s.CMD_PENDING: CommandOutcome.PENDING,
    s.CMD_PENDING_EXECUTION: CommandOutcome.PENDING,
    s.CMD_ON_HOLD: CommandOutcome.PENDING,
    s.CMD_RISK_PASSED: CommandOutcome.PENDING,
    s.CMD_EXECUTION_SUSPENDED: CommandOutcome.PENDING,
    s.CMD_AT_EXECUTION: CommandOutcome.EXECUTED,
    s.CMD_REPLACED: CommandOutcome.EXECUTED,
    s.CMD_EXECUTION_REJECTED: CommandOutcome.REJECTED,
    s.CMD_RISK_REJECTED: CommandOutcome.REJECTED,
    s.CMD_EXECUTION_STOPPED: CommandOutcome.REJECTED,
}
assert set(_COMMAND_OUTCOME) == s.COMMAND_STATUSES


def command_outcome(value: Any) -> CommandOutcome:
    """Strict: an unknown ``commandStatus`` raises :class:`UnknownEnumValue` with the raw text."""
    try:
        return _COMMAND_OUTCOME[value]
    except (KeyError, TypeError):
        raise UnknownEnumValue("commandStatus", value) from None


_SIDE_TO = {Side.BUY: s.BUY, Side.SELL: s.SELL}
_SIDE_FROM = {v: k for k, v in _SIDE_TO.items()}

_TYPE_TO = {
    OrderType.MARKET: s.MARKET,
    OrderType.LIMIT: s.LIMIT,
    OrderType.STOP: s.STOP,
    OrderType.STOP_LIMIT: s.STOP_LIMIT,
}
_TYPE_FROM = {v: k for k, v in _TYPE_TO.items()}

_TIF_TO = {
    TimeInForce.DAY: s.TIF_DAY,
    TimeInForce.GTC: s.TIF_GTC,
    TimeInForce.IOC: s.TIF_IOC,
    TimeInForce.FOK: s.TIF_FOK,
}
_TIF_FROM = {v: k for k, v in _TIF_TO.items()}

_STATUS_TO = {
    OrderStatus.PENDING: s.PENDING_NEW,
    OrderStatus.WORKING: s.WORKING,
    OrderStatus.PARTIALLY_FILLED: s.WORKING,
    OrderStatus.FILLED: s.FILLED,
    OrderStatus.CANCELLED: s.CANCELED,
    OrderStatus.REJECTED: s.REJECTED,
    OrderStatus.EXPIRED: s.EXPIRED,
}
_STATUS_FROM = {
    s.PENDING_NEW: OrderStatus.PENDING,
    "PendingReplace": OrderStatus.WORKING,
    "PendingCancel": OrderStatus.WORKING,
    s.WORKING: OrderStatus.WORKING,
    s.FILLED: OrderStatus.FILLED,
    s.COMPLETED: OrderStatus.FILLED,
    s.CANCELED: OrderStatus.CANCELLED,
    s.REJECTED: OrderStatus.REJECTED,
    s.EXPIRED: OrderStatus.EXPIRED,
    s.SUSPENDED: OrderStatus.PENDING,
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
    """A price as sent: a JSON number (prices cross the wire as numbers, never as text);
    ``NaN``/``Infinity``, text and anything else raise ``ValueError``."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float, Decimal)):
        raise ValueError(f"price is not a number: {type(value).__name__}")
    price = Decimal(str(value))
    if not price.is_finite():
        raise ValueError(f"price is not finite: {price}")
    return price


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

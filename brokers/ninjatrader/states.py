"""NinjaTrader 8 order states and the outgoing folder's three file formats.

States are NinjaTrader 8's ``OrderState`` names (help guide "Order State Definitions", N-st). The
outgoing files (help guide "Information Update Files", N-out): ``<orderId>.txt`` holds
``State;Filled;AvgFillPrice``, ``<Instrument Exchange>_<Account>_Position.txt`` holds
``LONG|SHORT|FLAT;Qty;AvgPrice`` and ``<Connection>.txt`` holds ``CONNECTED|DISCONNECTED``. The
TCP VALUE pushes carry the same facts under keys (``OrderStatus|<id>`` and so on). Sans-I/O:
the adapter reads and the simulator writes with these functions. Every reader is strict and
raises ``ValueError`` naming what it could not read.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from ..model import OrderStatus


class NtState(str, enum.Enum):
    INITIALIZED = "Initialized"
    SUBMITTED = "Submitted"
    ACCEPTED = "Accepted"
    WORKING = "Working"
    SUSPENDED = "Suspended"
    TRIGGER_PENDING = "TriggerPending"
    CHANGE_PENDING = "ChangePending"
    CHANGE_SUBMITTED = "ChangeSubmitted"
    CANCEL_PENDING = "CancelPending"
    CANCEL_SUBMITTED = "CancelSubmitted"
    CANCELLED = "Cancelled"
    REJECTED = "Rejected"
    PART_FILLED = "PartFilled"
    FILLED = "Filled"
    UNKNOWN = "Unknown"


#: Domain status of each NinjaTrader state. A change or cancel in flight leaves the order live
#: (WORKING) until NinjaTrader says how it ended; Unknown is not a final state, so PENDING.
DOMAIN_STATUS: dict[NtState, OrderStatus] = {
    NtState.INITIALIZED: OrderStatus.PENDING,
    NtState.SUBMITTED: OrderStatus.PENDING,
    NtState.ACCEPTED: OrderStatus.PENDING,
    NtState.SUSPENDED: OrderStatus.PENDING,
    NtState.UNKNOWN: OrderStatus.PENDING,
    NtState.WORKING: OrderStatus.WORKING,
    NtState.TRIGGER_PENDING: OrderStatus.WORKING,
    NtState.CHANGE_PENDING: OrderStatus.WORKING,
    NtState.CHANGE_SUBMITTED: OrderStatus.WORKING,
    NtState.CANCEL_PENDING: OrderStatus.WORKING,
    NtState.CANCEL_SUBMITTED: OrderStatus.WORKING,
    NtState.PART_FILLED: OrderStatus.PARTIALLY_FILLED,
    NtState.FILLED: OrderStatus.FILLED,
    NtState.CANCELLED: OrderStatus.CANCELLED,
    NtState.REJECTED: OrderStatus.REJECTED,
}
_BY_LOWER = {state.value.lower(): state for state in NtState}
_NUMBER = re.compile(r"^-?\d{1,12}(\.\d{1,12})?$")


def read_state(text: str) -> NtState:
    """A state name as NinjaTrader writes it; case is not trusted (files have shown upper case)."""
    try:
        return _BY_LOWER[text.strip().lower()]
    except KeyError:
        raise ValueError(f"unknown NinjaTrader order state {text!r}") from None


def read_decimal(text: str, what: str) -> Decimal:
    """A finite US decimal (``ValueError`` otherwise: no NaN, no exponent, no comma)."""
    value = text.strip()
    if not _NUMBER.match(value):
        raise ValueError(f"{what} {text!r} is not a US decimal number")
    try:
        return Decimal(value)
    except InvalidOperation:
        raise ValueError(f"{what} {text!r} is not a number") from None


def read_count(text: str, what: str) -> int:
    value = text.strip()
    if not re.fullmatch(r"-?\d{1,9}", value):
        raise ValueError(f"{what} {text!r} is not a whole number")
    return int(value)


PRICE_PLACES = Decimal("1e-10")  # an average carries no more: NinjaTrader's are doubles


def price_text(price: Decimal | None) -> str:
    value = price if price is not None else Decimal(0)
    exponent = value.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -10:
        value = value.quantize(PRICE_PLACES)
    return format(value, "f")


@dataclass(frozen=True, slots=True)
class OrderReport:
    """What NinjaTrader says of one order: state, filled quantity, average fill price."""

    state: NtState
    filled: int
    average_price: Decimal

    def line(self) -> str:
        return f"{self.state.value};{self.filled};{price_text(self.average_price)}"


def read_order_file(text: str) -> OrderReport:
    """``State;Filled;AvgFillPrice`` (the last line, if NinjaTrader left several)."""
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        raise ValueError("empty order state file")
    parts = lines[-1].split(";")
    if len(parts) != 3:
        raise ValueError(f"order state file needs State;Filled;AvgFillPrice, got {lines[-1]!r}")
    filled = read_count(parts[1], "filled amount")
    if filled < 0:
        raise ValueError(f"negative filled amount {filled}")
    return OrderReport(read_state(parts[0]), filled, read_decimal(parts[2], "average fill price"))


@dataclass(frozen=True, slots=True)
class PositionReport:
    """A position as NinjaTrader writes it: ``net`` is signed (SHORT is negative)."""

    net: int
    average_price: Decimal

    def line(self) -> str:
        side = "FLAT" if self.net == 0 else ("LONG" if self.net > 0 else "SHORT")
        return f"{side};{abs(self.net)};{price_text(self.average_price)}"


def read_position_file(text: str) -> PositionReport:
    """``LONG|SHORT|FLAT;Qty;AvgPrice``; a FLAT with a quantity is refused (it cannot be both)."""
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        raise ValueError("empty position file")
    parts = lines[-1].split(";")
    if len(parts) != 3:
        raise ValueError(f"position file needs MarketPosition;Qty;AvgPrice, got {lines[-1]!r}")
    side = parts[0].strip().upper()
    quantity = read_count(parts[1], "position quantity")
    if side not in ("LONG", "SHORT", "FLAT") or quantity < 0 or (side == "FLAT") != (quantity == 0):
        raise ValueError(f"position {lines[-1]!r} is not LONG/SHORT with a quantity or FLAT;0")
    net = quantity if side == "LONG" else -quantity
    return PositionReport(net, read_decimal(parts[2], "average entry price"))


def read_connection_file(text: str) -> bool:
    value = text.strip().upper()
    if value not in ("CONNECTED", "DISCONNECTED"):
        raise ValueError(f"connection state {text!r} is not CONNECTED or DISCONNECTED")
    return value == "CONNECTED"


def position_file_name(instrument: str, exchange: str, account: str) -> str:
    """``ES 12-26 Globex_Sim101_Position.txt`` (the help guide's example shape)."""
    return f"{instrument} {exchange}_{account}_Position.txt"


def split_position_file_name(name: str, accounts: list[str]) -> tuple[str, str] | None:
    """(instrument, account) of a position file of one of ``accounts``, else None. The account
    is matched from the end (names may hold ``_``); the exchange word is dropped."""
    suffix = "_Position.txt"
    if not name.endswith(suffix):
        return None
    stem = name[: -len(suffix)]
    for account in sorted(accounts, key=len, reverse=True):
        if stem.endswith("_" + account):
            head = stem[: -len(account) - 1]
            words = head.split(" ")
            if len(words) == 3:  # "ES 12-26 Globex"
                return " ".join(words[:2]), account
            return None
    return None

"""Rithmic wire values ↔ the adapter: exchanges, bracket fields, positions, raw-byte reports.

Kept apart from :mod:`.adapter` so the adapter reads as the order flow; everything here is a pure
function of its arguments (tested through the adapter and the conformance suite).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from ..errors import BrokerError, OrderRejected
from ..instruments import instrument_for
from ..model import PlaceOrder, PositionEvent
from .parsing import OutOfRange

RAW_LIMIT = 200  # bytes of an unreadable frame kept in the report (hex)
# RequestBracketOrder.BracketType [PB78]: exits that do not move once placed
STOP_ONLY_STATIC, TARGET_ONLY_STATIC, TARGET_AND_STOP_STATIC = 4, 5, 6
# The exchange each order names, by symbol root: CME Group's four exchanges and the products
# each lists (CME Group's product codes). Any other root is set by the session's ``exchanges``
# option; an order whose root is in neither is refused before it is sent.
DEFAULT_EXCHANGES = {
    **dict.fromkeys(
        ("ES", "MES", "NQ", "MNQ", "RTY", "M2K", "EMD", "NKD", "6A", "6B", "6C", "6E", "6J", "6M", "6N", "6S"), "CME"
    ),
    **dict.fromkeys(("M6A", "M6B", "M6E", "LE", "HE", "GF", "BTC", "MBT", "ETH", "MET", "SR3"), "CME"),
    **dict.fromkeys(("YM", "MYM", "ZB", "UB", "ZN", "TN", "ZF", "ZT", "ZC", "ZS", "ZW", "ZM", "ZL", "KE"), "CBOT"),
    **dict.fromkeys(("CL", "MCL", "QM", "NG", "QG", "RB", "HO", "PL", "PA"), "NYMEX"),
    **dict.fromkeys(("GC", "MGC", "SI", "SIL", "HG", "MHG"), "COMEX"),
}


class BadAnswer(BrokerError):
    """A reply we cannot read; ``raw`` is what came (the executor reports it as BAD_ANSWER)."""

    def __init__(self, message: str, raw: str) -> None:
        super().__init__(message, code="BAD_ANSWER")
        self.raw = raw


def raw_text(data: bytes) -> str:
    """Raw bytes for a report: hex, cut to :data:`RAW_LIMIT` bytes."""
    cut = data[:RAW_LIMIT].hex()
    return cut + (f"… ({len(data)} bytes)" if len(data) > RAW_LIMIT else "")


def bracket_fields(command: PlaceOrder) -> dict[str, Any]:
    """RequestBracketOrder (330)'s exit fields: whole, positive tick distances from the fill (the
    side says the direction [AR docs/orders.rst]); static (the stop does not trail). A distance
    that is not a whole number of ticks is refused rather than rounded: it would move the exit."""
    assert command.bracket is not None
    tick = instrument_for(command.symbol).tick_size
    fields: dict[str, Any] = {}
    for leg, distance in (("target", command.bracket.take_profit), ("stop", command.bracket.stop_loss)):
        if distance is None:
            continue
        ticks = distance / tick
        if ticks <= 0 or ticks != ticks.to_integral_value():
            raise OrderRejected(f"rithmic: {leg} {distance} is not a positive whole number of ticks of {tick}")
        fields[f"{leg}_ticks"], fields[f"{leg}_quantity"] = int(ticks), command.quantity
    kinds = {
        (True, True): TARGET_AND_STOP_STATIC,
        (True, False): TARGET_ONLY_STATIC,
        (False, True): STOP_ONLY_STATIC,
    }
    wanted = ("target_ticks" in fields, "stop_ticks" in fields)
    if wanted not in kinds:
        raise OrderRejected("rithmic: a bracket needs a take-profit or a stop-loss")
    fields["bracket_type"] = kinds[wanted]
    return fields


def position_event(account_id: str, message: Any) -> PositionEvent:
    """A 450 as our PositionEvent; :class:`OutOfRange` for a NaN or infinite average or P&L."""
    # an average of fills, not a price: kept as the wire's double says, never put on a tick
    average = Decimal(repr(message.avg_open_fill_price)) if message.net_quantity else None
    realized = Decimal(repr(message.day_closed_pnl))
    if not realized.is_finite() or (average is not None and not average.is_finite()):
        raise OutOfRange(f"average {message.avg_open_fill_price!r} / pnl {message.day_closed_pnl!r}")
    return PositionEvent(
        account_id=account_id,
        symbol=message.symbol,
        net_quantity=int(message.net_quantity),
        average_price=average,
        realized_pnl=realized,
    )


def balance(text: str) -> Decimal:
    """451 ``account_balance`` (a string on the wire [PB78]); 0 when it is not a number."""
    try:
        value = Decimal(text) if text else Decimal(0)
    except ArithmeticError:
        return Decimal(0)
    return value if value.is_finite() else Decimal(0)

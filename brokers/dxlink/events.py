"""Typed market-data events decoded from dxLink FEED_DATA (Quote, Trade).

Prices and sizes are Decimal (never floats past the wire) and ``None`` when the server sent
NaN/±Infinity or left the field out of its FEED_CONFIG.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from . import protocol as p

EVENT_TYPES = ("Quote", "Trade")


@dataclass(frozen=True, slots=True)
class Quote:
    symbol: str
    bid: Decimal | None
    ask: Decimal | None
    bid_size: Decimal | None
    ask_size: Decimal | None
    time_ms: int | None


@dataclass(frozen=True, slots=True)
class Trade:
    symbol: str
    price: Decimal | None
    size: Decimal | None
    time_ms: int | None


MarketEvent = Quote | Trade


def _num(event: dict[str, Any], name: str) -> Decimal | None:
    return p.to_decimal(event[name]) if name in event else None


def _time(event: dict[str, Any], name: str) -> int | None:
    value = _num(event, name)
    return int(value) if value is not None else None


def typed(event: dict[str, Any]) -> MarketEvent | None:
    """One decoded event as Quote/Trade; ``None`` for a type we do not use (never an error)."""
    symbol = event.get("eventSymbol")
    if not isinstance(symbol, str):
        raise p.ProtocolError("event without a string eventSymbol")
    kind = event.get("eventType")
    if kind == "Quote":
        return Quote(
            symbol,
            _num(event, "bidPrice"),
            _num(event, "askPrice"),
            _num(event, "bidSize"),
            _num(event, "askSize"),
            _time(event, "bidTime"),
        )
    if kind == "Trade":
        return Trade(symbol, _num(event, "price"), _num(event, "size"), _time(event, "time"))
    return None

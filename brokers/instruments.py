"""Futures contract facts the copier needs: roots, tick sizes, point values.

Symbols arrive as a root plus an optional month code and year (``ESZ6``, ``MESZ26``); symbol
mapping (ES→MES) swaps the root and keeps the expiry.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal

_SYMBOL = re.compile(r"^(?P<root>[A-Z0-9]{1,5}?)(?P<expiry>[FGHJKMNQUVXZ]\d{1,2})?$")


@dataclass(frozen=True, slots=True)
class Instrument:
    root: str
    tick_size: Decimal
    point_value: Decimal
    reference_price: Decimal

    def round_to_tick(self, price: Decimal) -> Decimal:
        ticks = (price / self.tick_size).to_integral_value()
        return ticks * self.tick_size


INSTRUMENTS: dict[str, Instrument] = {
    spec.root: spec
    for spec in (
        Instrument("ES", Decimal("0.25"), Decimal(50), Decimal("5000.00")),
        Instrument("MES", Decimal("0.25"), Decimal(5), Decimal("5000.00")),
        Instrument("NQ", Decimal("0.25"), Decimal(20), Decimal("18000.00")),
        Instrument("MNQ", Decimal("0.25"), Decimal(2), Decimal("18000.00")),
        Instrument("YM", Decimal(1), Decimal(5), Decimal("39000")),
        Instrument("MYM", Decimal(1), Decimal("0.5"), Decimal("39000")),
        Instrument("RTY", Decimal("0.1"), Decimal(50), Decimal("2000.0")),
        Instrument("M2K", Decimal("0.1"), Decimal(5), Decimal("2000.0")),
        Instrument("CL", Decimal("0.01"), Decimal(1000), Decimal("75.00")),
        Instrument("MCL", Decimal("0.01"), Decimal(100), Decimal("75.00")),
        Instrument("GC", Decimal("0.1"), Decimal(100), Decimal("2300.0")),
        Instrument("MGC", Decimal("0.1"), Decimal(10), Decimal("2300.0")),
        Instrument("6E", Decimal("0.00005"), Decimal(125000), Decimal("1.08500")),
    )
}


def split_symbol(symbol: str) -> tuple[str, str]:
    """``ESZ6`` → (``ES``, ``Z6``); a bare root has an empty expiry."""
    match = _SYMBOL.match(symbol.upper())
    if not match:
        raise ValueError(f"not a futures symbol: {symbol!r}")
    return match["root"], match["expiry"] or ""


def instrument_for(symbol: str) -> Instrument:
    """Contract facts for a symbol; unknown roots raise ``KeyError`` naming the root."""
    root, _ = split_symbol(symbol)
    try:
        return INSTRUMENTS[root]
    except KeyError:
        raise KeyError(f"unknown instrument root {root!r} (symbol {symbol!r})") from None


def map_symbol(symbol: str, root_map: dict[str, str]) -> str:
    """Apply a root mapping (``{"ES": "MES"}``) keeping the expiry: ``ESZ6`` → ``MESZ6``."""
    root, expiry = split_symbol(symbol)
    return root_map.get(root, root) + expiry

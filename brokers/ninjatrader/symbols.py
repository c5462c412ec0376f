"""Our futures symbols (``ESZ6``) and NinjaTrader 8 instrument names (``ES 12-26``).

NinjaTrader names a futures contract by its master instrument, a space, and the expiry month
and two-digit year (``ES 12-26``; docs/platforms/ninjatrader-sources.md, N-xt). Our symbols carry
the month code and one or two year digits. A one-digit year is read in the decade 2020-2029,
the only one the copier trades: the mapping must be deterministic, so it never guesses from
today's date. The reverse mapping gives the one-digit form (``ESZ6``), which is what the rest of
the copier sends; the adapter also remembers the exact symbol each command used.
"""

from __future__ import annotations

import re

from ..instruments import INSTRUMENTS, split_symbol

MONTH_CODES = "FGHJKMNQUVXZ"
DECADE = 2020
_NT_NAME = re.compile(r"^(?P<root>[A-Z0-9]{1,5}) (?P<month>0[1-9]|1[0-2])-(?P<year>\d{2})$")


class SymbolError(ValueError):
    """A symbol or instrument name the mapping cannot carry."""


def to_instrument(symbol: str) -> str:
    """``ESZ6`` → ``ES 12-26``; ``ESZ26`` → ``ES 12-26``. A symbol without expiry is refused:
    NinjaTrader needs the contract month (a bare master name is a continuous chart, not an order)."""
    try:
        root, expiry = split_symbol(symbol)
    except ValueError as exc:
        raise SymbolError(str(exc)) from None
    if root not in INSTRUMENTS:
        raise SymbolError(f"unknown instrument root {root!r} (symbol {symbol!r})")
    if not expiry:
        raise SymbolError(f"symbol {symbol!r} names no contract month; NinjaTrader needs e.g. ESZ6")
    month = MONTH_CODES.index(expiry[0]) + 1
    digits = expiry[1:]
    year = DECADE + int(digits) if len(digits) == 1 else 2000 + int(digits)
    return f"{root} {month:02d}-{year % 100:02d}"


def from_instrument(name: str) -> str:
    """``ES 12-26`` → ``ESZ6`` (a 2020s year) or ``ESZ31`` (any other year): strict, the name's
    exact shape or ``SymbolError``."""
    match = _NT_NAME.match(name)
    if not match:
        raise SymbolError(f"not a NinjaTrader futures instrument name (like 'ES 12-26'): {name!r}")
    root = match["root"]
    if root not in INSTRUMENTS:
        raise SymbolError(f"unknown instrument {root!r} in {name!r}")
    code = MONTH_CODES[int(match["month"]) - 1]
    year = 2000 + int(match["year"])
    if DECADE <= year < DECADE + 10:
        return f"{root}{code}{year % 10}"
    return f"{root}{code}{year % 100:02d}"

"""Price band: a leader's market order becomes a protected limit for followers who ask for it.

A follower's copy of a market order arrives a few milliseconds after the leader's, and in a
fast market those milliseconds can cost many ticks. A follower rule with ``price_band_ticks``
turns the copy into a limit at the fresh quote's touch (the ask for a buy, the bid for a sell)
plus or minus that many ticks: still marketable, but never filled further away than the band.

Only a *fresh* quote protects (``QuoteBook.fresh``): a stale price would give a limit that no
longer means anything. Without one, the rule's ``on_no_quote`` decides: ``market`` places the
market order as before and says so (``PRICE_BAND_NO_QUOTE`` on ``order.errors``), ``skip``
refuses the copy (``PRICE_BAND_SKIP``). Exits are never banded (the planner decides what is an
exit): getting out must not be blocked by a band.

Every copy also carries the quote's reference price (mid, else last) at the moment fan-out
planned it, whatever its rule: it is what the copy's slippage is measured against later.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

from ...brokers.instruments import instrument_for
from ...brokers.model import Side
from ...common.clock import utcnow
from ...core.quotes import PriceQuote, QuoteBook

__all__ = ["NO_QUOTE", "SKIPPED", "BandRefused", "Pricing", "band_limit", "price_market_order", "reference_price"]

#: Placed as a market order, unprotected, because no fresh quote was there (a warning).
NO_QUOTE = "PRICE_BAND_NO_QUOTE"
#: Not placed: no fresh quote and the rule says ``on_no_quote: skip``.
SKIPPED = "PRICE_BAND_SKIP"


class BandRefused(ValueError):
    """The follower's copy is not placed (``on_no_quote: skip``); the message says why."""

    code = SKIPPED


@dataclass(frozen=True, slots=True)
class Pricing:
    """How one copy of a market order goes out: as it came, or as a limit inside the band."""

    order_type: str
    limit_price: Decimal | None
    band_ticks: int | None = None  # set when the order was turned into a protected limit
    band_touch: Decimal | None = None  # the touch the limit was built from
    warning: str | None = None  # sent unprotected although the rule asks for a band: why


def band_limit(side: Side, touch: Decimal, ticks: int, tick_size: Decimal) -> Decimal:
    """The touch moved ``ticks`` ticks through the market, on a valid tick.

    A touch off the tick grid is rounded away from the market (up for a buy, down for a sell)
    so the limit still reaches the touch. A sell limit never goes below one tick (a price must
    be positive).
    """
    raw = touch + side.sign * ticks * tick_size
    rounding = ROUND_CEILING if side is Side.BUY else ROUND_FLOOR
    limit = (raw / tick_size).to_integral_value(rounding=rounding) * tick_size
    return max(limit, tick_size)


def _age(quote: PriceQuote | None) -> str:
    if quote is None:
        return "no quote received yet"
    seconds = (utcnow() - quote.at).total_seconds()
    return f"last quote {seconds:.1f} s old"


def price_market_order(quotes: QuoteBook | None, symbol: str, side: str, ticks: int, on_no_quote: str) -> Pricing:
    """Price one follower's copy of a leader market order under a band of ``ticks``.

    Raises :class:`BandRefused` when there is no fresh touch and ``on_no_quote`` is ``skip``.
    """
    order_side = Side(side)
    quote = quotes.fresh(symbol) if quotes is not None else None
    touch = quote.touch(order_side) if quote is not None else None
    if touch is not None:
        limit = band_limit(order_side, touch, ticks, instrument_for(symbol).tick_size)
        return Pricing("limit", limit, band_ticks=ticks, band_touch=touch)
    if quotes is None:
        why = f"{symbol}: no market-data source configured"
    elif quote is not None:
        why = f"{symbol}: fresh quote has no {'ask' if order_side is Side.BUY else 'bid'}"
    else:
        why = f"{symbol}: no fresh quote ({_age(quotes.latest(symbol))}, at most {quotes.max_age_s:g} s allowed)"
    if on_no_quote == "skip":
        raise BandRefused(f"{why}; price band of {ticks} ticks cannot be applied, copy skipped (on_no_quote: skip)")
    return Pricing("market", None, warning=f"{why}; placed as a market order without its {ticks}-tick price band")


def reference_price(quotes: QuoteBook | None, symbol: str) -> Decimal | None:
    """The fresh quote's reference (mid, else last) for ``symbol``; ``None`` when there is none."""
    quote = quotes.fresh(symbol) if quotes is not None else None
    return quote.reference() if quote is not None else None

"""The latest market price per symbol, as every stage that needs prices sees it.

Prices come from a market-data platform (dxFeed over dxLink), never from a broker's fills:
a copier that marks positions with its own fills cannot tell that a follower filled far from
the market. One :class:`QuoteBook` per process is fed by a price feed (``agents/shared``) and
read by fan-out (the price band that turns a leader's market order into a protected limit),
tracking (mark-to-market P&L, the reference price behind each copy's slippage) and the web
(the dashboard's price chart).

A quote older than ``max_age_s`` is *stale*: readers that protect orders (the price band) must
treat a stale or missing quote as "no price", never as the last known one, and say so.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal

from ..brokers.model import Side
from ..common.clock import utcnow

__all__ = ["DEFAULT_MAX_AGE_S", "PriceQuote", "QuoteBook"]

#: A quote older than this is not used to protect an order (seconds).
DEFAULT_MAX_AGE_S = 5.0


@dataclass(frozen=True, slots=True)
class PriceQuote:
    """Best bid/ask and last trade of one symbol (our symbol, e.g. ``ESZ6``), when we got it."""

    symbol: str
    bid: Decimal | None
    ask: Decimal | None
    last: Decimal | None
    at: datetime

    @property
    def mid(self) -> Decimal | None:
        if self.bid is None or self.ask is None or self.bid > self.ask:
            return None
        return (self.bid + self.ask) / 2

    def reference(self) -> Decimal | None:
        """The price a copy is measured against: the mid when the book is sane, else the last trade."""
        return self.mid if self.mid is not None else self.last

    def touch(self, side: Side) -> Decimal | None:
        """What a market order on ``side`` would pay now: the ask for a buy, the bid for a sell."""
        return self.ask if side is Side.BUY else self.bid


class QuoteBook:
    """Latest :class:`PriceQuote` per symbol, plus listeners for pushes (the dashboard chart).

    Updates merge: a Trade event sets ``last`` and keeps the bid/ask of the last Quote event.
    Only finite, positive prices are kept (the feed's decoder already turns NaN/Infinity into
    ``None``; a non-positive price is dropped here as well).
    """

    def __init__(self, max_age_s: float = DEFAULT_MAX_AGE_S, clock: Callable[[], datetime] = utcnow) -> None:
        self.max_age_s = max_age_s
        self._clock = clock
        self._quotes: dict[str, PriceQuote] = {}
        self._listeners: set[asyncio.Queue[PriceQuote]] = set()

    def update(
        self,
        symbol: str,
        *,
        bid: Decimal | None = None,
        ask: Decimal | None = None,
        last: Decimal | None = None,
        at: datetime | None = None,
    ) -> PriceQuote:
        bid, ask, last = (_sane(value) for value in (bid, ask, last))
        when = at or self._clock()
        previous = self._quotes.get(symbol)
        if previous is None:
            quote = PriceQuote(symbol, bid, ask, last, when)
        else:
            quote = replace(
                previous,
                bid=bid if bid is not None else previous.bid,
                ask=ask if ask is not None else previous.ask,
                last=last if last is not None else previous.last,
                at=when,
            )
        self._quotes[symbol] = quote
        for queue in self._listeners:
            queue.put_nowait(quote)
        return quote

    def latest(self, symbol: str) -> PriceQuote | None:
        """The last quote, however old (marks on the dashboard say how old)."""
        return self._quotes.get(symbol)

    def fresh(self, symbol: str) -> PriceQuote | None:
        """The last quote if it is younger than ``max_age_s``; ``None`` otherwise."""
        quote = self._quotes.get(symbol)
        if quote is None or (self._clock() - quote.at).total_seconds() > self.max_age_s:
            return None
        return quote

    def symbols(self) -> Iterator[str]:
        return iter(tuple(self._quotes))

    def listen(self) -> asyncio.Queue[PriceQuote]:
        """A queue that receives every update from now on; pass it to :meth:`unlisten` when done."""
        queue: asyncio.Queue[PriceQuote] = asyncio.Queue(maxsize=0)
        self._listeners.add(queue)
        return queue

    def unlisten(self, queue: asyncio.Queue[PriceQuote]) -> None:
        self._listeners.discard(queue)


def _sane(value: Decimal | None) -> Decimal | None:
    if value is None or not value.is_finite() or value <= 0:
        return None
    return value

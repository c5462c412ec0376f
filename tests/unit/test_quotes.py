"""The QuoteBook every price reader shares: merging, staleness, sanity."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from copytrader.brokers.model import Side
from copytrader.core.quotes import QuoteBook

T0 = datetime(2026, 11, 30, 14, 30, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


def test_trade_keeps_the_book_and_quote_keeps_the_last() -> None:
    book = QuoteBook(clock=Clock())
    book.update("ESZ6", bid=Decimal("5000.00"), ask=Decimal("5000.50"))
    book.update("ESZ6", last=Decimal("5000.25"))
    quote = book.latest("ESZ6")
    assert quote is not None
    assert (quote.bid, quote.ask, quote.last) == (Decimal("5000.00"), Decimal("5000.50"), Decimal("5000.25"))
    assert quote.mid == Decimal("5000.25")
    assert quote.touch(Side.BUY) == Decimal("5000.50")
    assert quote.touch(Side.SELL) == Decimal("5000.00")


def test_a_stale_quote_is_not_fresh() -> None:
    clock = Clock()
    book = QuoteBook(max_age_s=5, clock=clock)
    book.update("ESZ6", bid=Decimal(1), ask=Decimal(2))
    assert book.fresh("ESZ6") is not None
    clock.now = T0 + timedelta(seconds=6)
    assert book.fresh("ESZ6") is None
    assert book.latest("ESZ6") is not None
    assert book.fresh("NQZ6") is None


def test_insane_prices_are_dropped_and_a_crossed_book_has_no_mid() -> None:
    book = QuoteBook(clock=Clock())
    quote = book.update("ESZ6", bid=Decimal("NaN"), ask=Decimal("-1"), last=Decimal("Infinity"))
    assert (quote.bid, quote.ask, quote.last) == (None, None, None)
    crossed = book.update("ESZ6", bid=Decimal(10), ask=Decimal(9), last=Decimal("9.5"))
    assert crossed.mid is None
    assert crossed.reference() == Decimal("9.5")


async def test_listeners_get_every_update_until_they_leave() -> None:
    book = QuoteBook(clock=Clock())
    queue = book.listen()
    book.update("ESZ6", last=Decimal(1))
    assert (await queue.get()).last == Decimal(1)
    book.unlisten(queue)
    book.update("ESZ6", last=Decimal(2))
    assert queue.empty()

"""The FIX adapter's journal stays bounded and a compaction loses nothing still needed (#18).

No network: a :class:`SessionBook` fed the reports an order's life brings, on a temp file.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from copytrader.brokers.fix.journal import JOURNAL
from copytrader.brokers.fix.messages import OrderTerms
from copytrader.brokers.fix.tracking import SessionBook
from copytrader.brokers.model import FillEvent, OrderEvent, OrderStatus, OrderType, Side

ACCOUNT, BROKER_ACCOUNT, SYMBOL = "acct-1", "FIX1", "ESZ6"
TERMS = OrderTerms(BROKER_ACCOUNT, SYMBOL, Side.BUY, 1, OrderType.MARKET)


def state(client: str, order_id: str, status: OrderStatus, filled: int) -> OrderEvent:
    return OrderEvent(ACCOUNT, client, order_id, SYMBOL, Side.BUY, OrderType.MARKET, 1, status, filled)


def filled_order(book: SessionBook, n: int) -> str:
    """Place, acknowledge and fill order ``c<n>`` (OrderID ``o<n>``, ExecID ``e<n>``), as
    ``reports.py`` hands the reports to the book."""
    client, order_id = f"c{n}", f"o{n}"
    book.record_new(ACCOUNT, client, client, TERMS)
    book.changed(client, state(client, order_id, OrderStatus.WORKING, 0))
    book.changed(client, state(client, order_id, OrderStatus.FILLED, 1))
    fill = FillEvent(ACCOUNT, client, order_id, f"e{n}", SYMBOL, Side.BUY, 1, Decimal("5000"), 1, 0)
    assert book.new_fill(fill)
    book.settle(client)
    return client


def journal_lines(path: Path) -> int:
    return len(path.read_text().splitlines())


def test_the_journal_stays_bounded_while_the_counterparty_forgets(tmp_path: Path) -> None:
    path = tmp_path / JOURNAL
    book = SessionBook(path, keep=3)
    book.journal.floor = 20
    longest = 0
    for n in range(300):
        filled_order(book, n)
        if n % 25 == 24:  # a resync: the counterparty no longer knows the forgotten orders
            book.forget_for_good(list(book.forgotten))
        longest = max(longest, journal_lines(path))
        remembered = len(book.orders) + len(book.forgotten)
        assert journal_lines(path) == book.journal.lines <= max(20, 2 * remembered) + 3
    assert book.journal.compactions > 5 and longest <= 2 * (3 + 25) + 3
    assert len(book.orders) == 3 and len(book.cl_ord_ids) == len(book.order_ids) == len(book.fills) == 3
    again = SessionBook(path, keep=3)
    again.load()
    assert set(again.orders) | set(again.forgotten) == set(book.orders) | set(book.forgotten)
    assert not again.sent("c0") and again.sent("c299")


def test_what_a_compaction_keeps_is_what_exactly_once_needs(tmp_path: Path) -> None:
    path = tmp_path / JOURNAL
    book = SessionBook(path)
    book.journal.floor = 0
    live = "live"
    book.record_new(ACCOUNT, live, live, TERMS)
    book.changed(live, state(live, "o-live", OrderStatus.WORKING, 0))
    order = book.orders[live]
    replace_id = book.next_request_id(order, "R")
    cancel_id = book.next_request_id(order, "C")
    done = filled_order(book, 1)
    book.journal.rewrite(book._compacted())
    assert journal_lines(path) == 2  # one line per order
    again = SessionBook(path, keep=0)  # keep 0: the finished order is a fingerprint at once
    again.load()
    restored = again.orders[live]
    assert (restored.requests, restored.order_id, restored.done) == (2, "o-live", False)
    assert again.client_of(replace_id) == again.client_of(cancel_id) == again.client_of(live) == live
    assert again.next_request_id(restored, "R") == f"{live}-R3"  # never a ClOrdID sent before
    assert set(again.forgotten) == {done} and again.forgotten_ids == {"o1": done}
    # the quantity reported survives: a resend of its trade is old news, a bust is not
    assert again.old_news(done, "e1", "o1", 1, correction=False)
    assert not again.old_news(done, "e9", "o1", 2, correction=False)
    assert not again.old_news(done, "x1", "o1", 1, correction=True)


def test_a_crash_during_compaction_loses_nothing(tmp_path: Path) -> None:
    path = tmp_path / JOURNAL
    book = SessionBook(path, keep=1)
    book.journal.floor = 10_000
    clients = [filled_order(book, n) for n in range(5)]
    before = path.read_text()

    def torn() -> object:
        yield from list(book._compacted())[:2]
        raise OSError("disk full")  # the process dies mid-write

    with pytest.raises(OSError):
        book.journal.rewrite(torn())  # type: ignore[arg-type]
    assert path.read_text() == before  # the journal is untouched; the spare file is ignored
    assert (tmp_path / (JOURNAL + ".compacting")).exists()
    again = SessionBook(path, keep=1)
    again.load()
    assert all(again.sent(client) for client in clients)
    again.journal.rewrite(again._compacted())  # the next compaction overwrites the spare
    third = SessionBook(path, keep=1)
    third.load()
    assert set(third.orders) | set(third.forgotten) == set(clients)


def test_a_forgotten_order_comes_back_in_full_for_news(tmp_path: Path) -> None:
    book = SessionBook(None, keep=1)
    first, second = filled_order(book, 1), filled_order(book, 2)
    assert set(book.forgotten) == {first} and set(book.orders) == {second}
    assert "e1" not in book.fills and book.forgotten_client("o1") == first
    assert book.forgotten_client("", f"{first}-C1") is None  # never one of its ClOrdIDs
    assert book.forgotten_client("", first) == first
    book.revive(first)  # e.g. a bust of its fill: its execution is back for the correction
    assert "e1" in book.fills and book.client_of(first) == first and first not in book.forgotten
    assert book.finished.fingerprint_count == 0
    book.settle(first)  # handled: it ends again, and the older one shrinks
    assert set(book.forgotten) == {second} and book.finished.fingerprint_count == 1


def test_a_repeated_client_id_of_a_forgotten_order_ends_again(tmp_path: Path) -> None:
    book = SessionBook(tmp_path / JOURNAL, keep=1)
    first, _ = filled_order(book, 1), filled_order(book, 2)
    assert first in book.forgotten
    book.record_new(ACCOUNT, first, first, TERMS)  # the executor placed the same id again
    assert first in book.orders and not book.orders[first].done and book.working(ACCOUNT)
    book.changed(first, state(first, "o1b", OrderStatus.WORKING, 0))
    book.changed(first, state(first, "o1b", OrderStatus.FILLED, 1))
    book.settle(first)
    assert not book.working(ACCOUNT) and book.orders[first].filled_at_end == {"o1": 1, "o1b": 1}
    again = SessionBook(tmp_path / JOURNAL, keep=1)
    again.load()
    assert not again.working(ACCOUNT) and set(again.orders) | set(again.forgotten) == {first, "c2"}

"""The NinjaTrader book forgets finished orders safely (#18 item 3; docs/fidelity/ninjatrader.md
NT-41..NT-44): answers the simulator never gives (a fill after an order's end, a re-used ORDER
ID once forgotten, lists of several accounts, a folder listing) are fed to the book directly."""

from __future__ import annotations

import os
from decimal import Decimal
from pathlib import Path

from copytrader.brokers.model import FillEvent, OrderStatus, OrderType, Side
from copytrader.brokers.ninjatrader.book import Book, TrackedOrder
from copytrader.brokers.ninjatrader.feed import ValueCache
from copytrader.brokers.ninjatrader.oif import SWEEP_AT_LEAST, OifFolders
from copytrader.brokers.ninjatrader.states import NtState, OrderReport, PositionReport

ACCOUNTS = {"A": "Sim101", "B": "Sim102"}


def track(book: Book, nt_id: str, quantity: int = 1, account_id: str = "A") -> TrackedOrder:
    return book.track(TrackedOrder(account_id, nt_id, nt_id, "ESZ6", Side.BUY, OrderType.MARKET, quantity, None, None))


def report(state: NtState, filled: int, average: str = "5000") -> OrderReport:
    return OrderReport(state, filled, Decimal(average))


def fills(events: list[object]) -> list[FillEvent]:
    return [event for event in events if isinstance(event, FillEvent)]


def test_finished_orders_shrink_and_their_state_told_again_reports_nothing() -> None:
    book = Book(ACCOUNTS, keep=1)
    for nt_id in ("X", "Y", "Z"):
        track(book, nt_id)
        assert len(fills(book.order_report(nt_id, report(NtState.FILLED, 1)))) == 1
    assert set(book.orders) == {"Z"} and set(book.reports) == {"Z"} and set(book.memory.ended) == {"X", "Y"}
    assert book.order_report("X", report(NtState.FILLED, 1)) == []  # a reconnect, a file read again
    assert book.order_report("X", report(NtState.FILLED, 0)) == []  # a Filled value not pushed yet
    assert "X" not in book.orders and "X" not in book.reports
    assert book.status_of("X") is OrderStatus.FILLED


def test_a_fill_shown_after_a_shrunk_orders_end_is_reported_once_under_its_own_fill_ids() -> None:
    book = Book(ACCOUNTS, keep=0)  # every order shrinks as it ends
    order = track(book, "X", quantity=2)
    (first,) = fills(book.order_report("X", report(NtState.CANCELLED, 1, "5000")))
    assert "X" not in book.orders and book.memory.filled("X") == 1
    (late,) = fills(book.order_report("X", report(NtState.FILLED, 2, "5001")))
    assert (late.quantity, late.price, late.cumulative_quantity) == (1, Decimal("5002"), 2)
    assert (late.client_order_id, late.symbol, late.side) == ("X", "ESZ6", Side.BUY)
    assert first.fill_id == f"X#{order.instance}:1" and late.fill_id == f"X#{order.instance}:2"
    assert fills(book.order_report("X", report(NtState.FILLED, 2, "5001"))) == []
    assert "X" not in book.orders and book.memory.filled("X") == 2


def test_a_reused_order_id_never_repeats_a_fill_id_even_once_forgotten() -> None:
    book = Book({"A": "Sim101"}, keep=0)
    book.memory.begin()  # a connection is being opened
    track(book, "X")
    (first,) = fills(book.order_report("X", report(NtState.FILLED, 1)))
    book.order_list("Sim101", [])  # the replay began before X shrank: X stays
    assert "X" in book.memory.ended
    book.memory.begin()  # a reconnect
    book.order_list("Sim101", [])  # NinjaTrader forgot X: so does the book
    assert book.memory.ended == {} and book.memory.dropped == 1 and book.memory.filled("X") is None
    track(book, "X")  # the same client id placed again
    assert fills(book.order_report("X", report(NtState.SUBMITTED, 0))) == []
    (second,) = fills(book.order_report("X", report(NtState.FILLED, 1)))
    assert second.fill_id != first.fill_id


def test_a_tcp_replay_needs_every_accounts_list_and_spares_what_shrank_after_it_began() -> None:
    book = Book(ACCOUNTS, keep=0)
    book.memory.replay_every_s = 0  # a replay begins at every list once the previous one ended
    book.memory.begin()  # a connection is being opened
    track(book, "X")
    book.order_report("X", report(NtState.FILLED, 1))
    book.order_list("Sim101", [])
    book.order_list("Sim102", [])  # every account listed: the replay ends, X made after its start
    assert "X" in book.memory.ended
    book.order_list("Sim101", [])  # begins the next replay; it counts from the next list
    book.order_list("Sim101", [])
    assert "X" in book.memory.ended  # Sim102's list of this replay has not come yet
    book.order_list("Sim102", ["X"])  # listed (an ORDER ID repeated on another account)
    assert "X" in book.memory.ended
    book.order_list("Sim101", [])  # begins the next
    book.order_list("Sim101", [])
    book.order_list("Sim102", [])
    assert "X" not in book.memory.ended and book.memory.dropped == 1


def test_while_a_connection_lasts_tcp_replays_are_spaced_out() -> None:
    book = Book({"A": "Sim101"}, keep=0)
    now = [100.0]
    book.memory._clock = lambda: now[0]
    book.memory.begin()
    track(book, "X")
    book.order_report("X", report(NtState.FILLED, 1))
    book.order_list("Sim101", ["X"])  # ends the connection's replay (X made after it began)
    book.order_list("Sim101", [])
    book.order_list("Sim101", [])
    assert "X" in book.memory.ended  # no replay within replay_every_s of the last one
    now[0] += book.memory.replay_every_s
    book.order_list("Sim101", [])  # begins one
    book.order_list("Sim101", [])  # ends it
    assert book.memory.ended == {}


def test_someone_elses_orders_leave_the_book_when_ninjatrader_stops_listing_them() -> None:
    book = Book(ACCOUNTS)
    book.order_report("N1", report(NtState.FILLED, 1))  # a NinjaTrader-named closing order
    book.order_list("Sim101", ["N1"])
    assert book.status_of("N1") is OrderStatus.FILLED
    book.order_list("Sim101", [])
    assert "N1" not in book.reports
    book.order_report("N2", report(NtState.WORKING, 0))
    book.files_after_wipe({"N3"})
    assert "N2" not in book.reports


def test_after_a_wipe_the_files_ninjatrader_kept_are_all_that_stays() -> None:
    book = Book({"A": "Sim101"}, keep=0)
    for nt_id in ("X", "Y"):
        track(book, nt_id)
        book.order_report(nt_id, report(NtState.FILLED, 1))
    book.files_after_wipe({"Y"})  # the folder was wiped (NinjaTrader restarted); Y's file is back
    assert set(book.memory.ended) == {"Y"} and book.memory.dropped == 1


class Heard:
    """A FeedListener that keeps what it is told."""

    def __init__(self) -> None:
        self.orders: list[tuple[str, OrderReport]] = []
        self.files: list[set[str]] = []

    def on_order(self, nt_id: str, report: OrderReport) -> None:
        self.orders.append((nt_id, report))

    def on_position(self, account: str, instrument: str, report: PositionReport) -> None:
        pass

    def on_orders_list(self, account: str, ids: list[str]) -> None:
        pass

    def on_order_files(self, ids: set[str]) -> None:
        self.files.append(ids)

    def on_connection(self, connected: bool) -> None:
        pass

    def on_bad_input(self, text: str) -> None:
        raise AssertionError(text)


def test_the_value_cache_forgets_the_orders_a_list_stops_naming() -> None:
    cache = ValueCache(Heard())
    cache.push("Orders|Sim101", "X|Y")
    for nt_id in ("X", "Y"):
        cache.push(f"Filled|{nt_id}", "1")
        cache.push(f"AvgFillPrice|{nt_id}", "5000")
        cache.push(f"OrderStatus|{nt_id}", "Filled")
    cache.push("Orders|Sim101", "Y")
    assert cache.report("X") is None and "Filled|X" not in cache.values and "AvgFillPrice|X" not in cache.values
    assert cache.report("Y") == report(NtState.FILLED, 1)


def test_the_file_route_remembers_files_only_while_they_exist(tmp_path: Path) -> None:
    incoming, outgoing = tmp_path / "incoming", tmp_path / "outgoing"
    incoming.mkdir()
    outgoing.mkdir()
    heard = Heard()
    folders = OifFolders(incoming, outgoing, ["Sim101"], heard, 0.02)
    for n in range(3):
        (outgoing / f"X{n}.txt").write_text("Filled;1;5000\r\n")
    folders.scan()  # no sentinel yet: a wipe (or a first run), told with the listing
    assert heard.files == [{"X0", "X1", "X2"}] and len(heard.orders) == 3
    (outgoing / "X0.txt").unlink()
    folders.scan()  # a file gone without a wipe: nothing told, nothing read again
    assert heard.files == [{"X0", "X1", "X2"}] and len(heard.orders) == 3
    assert "X0.txt" not in folders._seen
    for name in os.listdir(outgoing):
        os.unlink(outgoing / name)  # NinjaTrader restarts: the folder is wiped
    (outgoing / "X9.txt").write_text("Working;0;0\r\n")
    folders.scan()
    assert heard.files[-1] == {"X9"}
    for n in range(SWEEP_AT_LEAST * 3):
        path = folders.write([f"CANCEL;;;;;;;;;;O{n};;"], [f"O{n}"])
        os.unlink(path)  # NinjaTrader took it
    assert len(folders.written) < SWEEP_AT_LEAST
    assert not folders.pending("O0")

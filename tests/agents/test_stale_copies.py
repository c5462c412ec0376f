"""Stale copies in an executor's lane (issue #17, item 3): a market copy older than its group's
limit is not placed as it was; the lane nets every stale copy of the symbol into one order for
their net quantity, settling first what an earlier attempt may have done. A fake broker that
fills market orders at once and a fake clock; the real lanes, router and attempt journal."""

from __future__ import annotations

import itertools
import sqlite3
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, ClassVar

import pytest

from copytrader.agents.execution import netting
from copytrader.agents.execution.attempt_journal import AttemptJournal
from copytrader.agents.execution.netting import StaleCopies, net_key, net_quantity, take_run
from copytrader.agents.execution.router import AccountLanes, OrderRouter
from copytrader.agents.shared.outbox import MemoryOutbox
from copytrader.agents.shared.sessions import SessionPool
from copytrader.brokers.base import BrokerAdapter, SessionConfig
from copytrader.brokers.errors import BrokerUnavailable
from copytrader.brokers.model import (
    AccountSnapshot,
    CancelOrder,
    Capabilities,
    ConnectionState,
    FlattenPosition,
    ModifyOrder,
    OrderAck,
    OrderStatus,
    PlaceOrder,
    Side,
)
from copytrader.core import ids
from copytrader.core.config import parse_config
from copytrader.core.records import OrderError, OrderIntent

NOW = 1_800_000_000.0
LIMIT = 5.0


class NettingBroker(BrokerAdapter):
    """Market orders fill at once into ``positions``; ``snapshot_fails`` makes the read fail."""

    platform: ClassVar[str] = "fake"
    capabilities: ClassVar[Capabilities] = Capabilities()

    def __init__(self, config: SessionConfig) -> None:
        super().__init__(config)
        self.positions: dict[tuple[str, str], int] = {}
        self.books: dict[str, OrderAck] = {}
        self.calls: list[tuple[str, str]] = []
        self.lookup_fails = False
        self._ids = itertools.count(1)

    async def connect(self) -> None:
        self._set_state(ConnectionState.CONNECTED)

    async def disconnect(self) -> None:
        self._set_state(ConnectionState.DISCONNECTED)

    async def place(self, command: PlaceOrder) -> OrderAck:
        self.calls.append(("place", command.client_order_id))
        ack = OrderAck(command.account_id, command.client_order_id, f"B{next(self._ids)}", OrderStatus.WORKING)
        self.books[command.client_order_id] = ack
        if command.order_type.value == "market":
            key = (command.account_id, command.symbol)
            signed = command.quantity if command.side is Side.BUY else -command.quantity
            self.positions[key] = self.positions.get(key, 0) + signed
        return ack

    async def lookup(self, account_id: str, client_order_id: str) -> OrderAck | None:
        self.calls.append(("lookup", client_order_id))
        if self.lookup_fails:
            raise BrokerUnavailable("order search timed out", sent=True)
        found = self.books.get(client_order_id)
        return (
            None
            if found is None
            else OrderAck(account_id, client_order_id, found.broker_order_id, found.status, duplicate=True)
        )

    async def modify(self, command: ModifyOrder) -> OrderAck:
        raise AssertionError("not used")

    async def cancel(self, command: CancelOrder) -> OrderAck:
        self.calls.append(("cancel", command.client_order_id))
        return OrderAck(command.account_id, command.client_order_id, "B0", OrderStatus.CANCELLED)

    async def flatten(self, command: FlattenPosition) -> OrderAck:
        raise AssertionError("not used")

    async def snapshot(self, account_id: str) -> AccountSnapshot:
        raise AssertionError("netting never reads the position")


CONFIG = {
    "sessions": [{"id": "s", "platform": "paper"}],
    "accounts": [{"id": "L", "session": "s"}, {"id": "f1", "session": "s"}],
    "copy_groups": [],
}


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> float:
        return self.now


class Lane:
    """One executor's lanes over ``broker`` with a journal at ``path`` and a fake clock."""

    def __init__(self, broker: NettingBroker, path: Path, clock: Clock | None = None) -> None:
        self.outbox = MemoryOutbox()
        self.router = OrderRouter(
            SessionPool(parse_config(CONFIG, env={}), lambda _cfg: broker), self.outbox, AttemptJournal(path)
        )
        self.router.late.delays_s = ()
        self.stale = StaleCopies(self.router, clock or Clock())
        self.lanes = AccountLanes(self.router.execute, self.router.report_crash, self.router.report_skipped, self.stale)
        self.acked: list[str] = []

    def submit(self, intents: list[OrderIntent], redelivered: bool = False) -> None:
        for intent in intents:
            self.lanes.submit(intent, self._done(intent.client_order_id), redelivered)

    def _done(self, key: str) -> Callable[[], Awaitable[None]]:
        async def done() -> None:
            self.acked.append(key)

        return done

    async def settle(self) -> None:
        await self.lanes.join()
        await self.router.outbox.drained()

    def errors(self) -> list[OrderError]:
        return [e for e in self.outbox.sent["error"] if isinstance(e, OrderError)]

    async def close(self) -> None:
        await self.lanes.close()
        assert self.router.journal is not None
        self.router.journal.close()


def copy(
    n: int,
    side: str,
    quantity: int,
    *,
    age: float,
    symbol: str = "ESZ6",
    action: str = "place",
    order_type: str = "market",
    limit: float | None = LIMIT,
) -> OrderIntent:
    return OrderIntent(
        client_order_id=ids.client_order_id(f"sig-{n}", "f1"),
        signal_id=f"sig-{n}",
        account_id="f1",
        platform="paper",
        leader_account="L",
        action=action,
        symbol=symbol,
        side=side,
        quantity=quantity,
        order_type=order_type,
        limit_price=None if order_type == "market" else 5000,
        target_client_order_id=None,
        stamps={"detected": NOW - age, "fanned_out": NOW - age + 0.001},
        stale_after_s=limit,
    )


@pytest.fixture
def broker() -> NettingBroker:
    return NettingBroker(parse_config(CONFIG, env={}).sessions["s"])


# -- the pure rules ------------------------------------------------------------------------------
def test_a_market_copy_is_stale_only_past_its_limit() -> None:
    assert not netting.is_stale(copy(1, "buy", 1, age=LIMIT - 0.1), NOW)
    assert netting.is_stale(copy(1, "buy", 1, age=LIMIT + 0.1), NOW)
    assert not netting.is_stale(copy(1, "buy", 1, age=60, limit=None), NOW)  # a reconcile/guard order
    assert not netting.is_stale(copy(1, "buy", 1, age=60, order_type="limit"), NOW)  # a working order
    assert not netting.is_stale(copy(1, "sell", 1, age=60, action="flatten"), NOW)  # an exit: goes first
    assert not netting.is_stale(copy(1, "buy", 1, age=netting.MAX_TRUSTED_AGE_S + 1), NOW)  # not a clock


def test_a_run_takes_the_stale_copies_of_the_heads_symbol_up_to_a_flatten() -> None:
    head = copy(1, "buy", 1, age=9)
    waiting = [
        copy(2, "buy", 1, age=8, symbol="NQZ6"),
        copy(3, "sell", 1, age=8),
        copy(4, "buy", 1, age=8, order_type="limit"),
        copy(5, "buy", 2, age=1),  # fresh: placed as it was, after the netting order
        copy(6, "buy", 1, age=7),
        copy(7, "sell", 1, age=7, action="flatten"),
        copy(8, "buy", 1, age=6),  # after the flatten: its own run
    ]
    run, rest = take_run((head, None, False), [(w, None, False) for w in waiting], NOW)
    assert [i[0].signal_id for i in run] == ["sig-1", "sig-3", "sig-6"]
    assert [i[0].signal_id for i in rest] == ["sig-2", "sig-4", "sig-5", "sig-7", "sig-8"]
    assert net_quantity([i[0] for i in run]) == 1


# -- the lane -------------------------------------------------------------------------------------
async def test_stale_copies_are_netted_into_one_order_and_each_is_reported(
    broker: NettingBroker, tmp_path: Path
) -> None:
    lane = Lane(broker, tmp_path / "a.sqlite")
    run = [copy(1, "buy", 1, age=12), copy(2, "buy", 1, age=11), copy(3, "sell", 1, age=10), copy(4, "buy", 2, age=9)]
    working = copy(5, "buy", 1, age=9, order_type="limit")
    fresh = copy(6, "sell", 1, age=0.5)
    lane.submit([*run, working, fresh])
    await lane.settle()
    key = net_key(run)
    assert broker.calls == [
        ("place", key),
        ("place", working.client_order_id),  # a working-order copy goes as it was
        ("place", fresh.client_order_id),  # a fresh copy too, after the netting order
    ]
    assert broker.positions[("f1", "ESZ6")] == 2  # +3 in one order, then the fresh sell
    errors = {e.client_order_id: e for e in lane.errors()}
    assert set(errors) == {i.client_order_id for i in run}
    for error in errors.values():
        assert error.code == netting.COPY_STALE_NETTED
        assert "4 copies older than 5 s (9.0–12.0 s)" in error.reason
        assert f"netted into {key}: buy 3" in error.reason
    assert sorted(lane.acked) == sorted(i.client_order_id for i in [*run, working, fresh])  # every offset
    await lane.close()


async def test_a_copy_queued_twice_is_netted_once(broker: NettingBroker, tmp_path: Path) -> None:
    """A restarted fan-out plans the same signals again: the same copy, same key, may sit in
    the lane twice. Its quantity counts once."""
    lane = Lane(broker, tmp_path / "a.sqlite")
    first, second = copy(1, "buy", 1, age=9), copy(2, "buy", 2, age=8)
    lane.submit([first, second, first, second])
    await lane.settle()
    assert broker.calls == [("place", net_key([first]))] and broker.positions[("f1", "ESZ6")] == 3
    assert len(lane.acked) == 4  # every delivery's offset
    await lane.close()


async def test_a_fresh_copy_is_placed_as_it_was(broker: NettingBroker, tmp_path: Path) -> None:
    lane = Lane(broker, tmp_path / "a.sqlite")
    intent = copy(1, "buy", 2, age=LIMIT - 1)
    lane.submit([intent])
    await lane.settle()
    assert broker.calls == [("place", intent.client_order_id)] and not lane.errors()
    await lane.close()


async def test_copies_that_cancel_out_place_nothing(broker: NettingBroker, tmp_path: Path) -> None:
    lane = Lane(broker, tmp_path / "a.sqlite")
    lane.submit([copy(1, "buy", 2, age=9), copy(2, "sell", 2, age=8)])
    await lane.settle()
    assert broker.calls == []
    assert [e.code for e in lane.errors()] == [netting.COPY_STALE_NETTED] * 2
    assert all("net to nothing" in e.reason for e in lane.errors())
    await lane.close()


async def test_a_redelivered_run_is_never_netted_twice(broker: NettingBroker, tmp_path: Path) -> None:
    """After a crash before the offsets were committed: the same journal (a restart) knows the
    netting order; an empty one (another host) finds it at the broker by its key."""
    run = [copy(1, "buy", 1, age=12), copy(2, "buy", 2, age=11)]
    first = Lane(broker, tmp_path / "a.sqlite")
    first.submit(run)
    await first.settle()
    await first.close()
    assert broker.calls == [("place", net_key(run))] and broker.positions[("f1", "ESZ6")] == 3
    restarted = Lane(broker, tmp_path / "a.sqlite")
    restarted.submit(run, redelivered=True)
    await restarted.settle()
    await restarted.close()
    assert broker.calls == [("place", net_key(run))]  # the journal answered: no broker call
    assert [e.code for e in restarted.errors()] == [netting.COPY_STALE_NETTED] * 2
    elsewhere = Lane(broker, tmp_path / "other-host.sqlite")
    elsewhere.submit(run, redelivered=True)
    await elsewhere.settle()
    await elsewhere.close()
    assert [c[0] for c in broker.calls] == ["place", "lookup", "lookup", "lookup"]  # each copy, then the key
    assert broker.positions[("f1", "ESZ6")] == 3


async def test_a_copy_an_earlier_attempt_placed_is_reported_not_netted(broker: NettingBroker, tmp_path: Path) -> None:
    placed, late = copy(1, "buy", 1, age=12), copy(2, "buy", 2, age=11)
    await broker.place(
        PlaceOrder(account_id="f1", client_order_id=placed.client_order_id, symbol="ESZ6", side=Side.BUY, quantity=1)
    )
    lane = Lane(broker, tmp_path / "a.sqlite")
    lane.submit([placed, late], redelivered=True)
    await lane.settle()
    await lane.close()
    assert broker.positions[("f1", "ESZ6")] == 3  # 1 placed before + 2 netted now
    assert [c for c in broker.calls if c[0] == "place"][1:] == [("place", net_key([late]))]
    acks = [e for e in lane.outbox.sent["execution"] if getattr(e, "kind", "") == "ack"]
    assert any(a.client_order_id == placed.client_order_id and a.duplicate for a in acks)


async def test_a_copy_nobody_can_look_up_is_reported_and_left_out(broker: NettingBroker, tmp_path: Path) -> None:
    broker.lookup_fails = True
    lane = Lane(broker, tmp_path / "a.sqlite")
    lane.submit([copy(1, "buy", 1, age=9), copy(2, "buy", 1, age=8)], redelivered=True)
    await lane.settle()
    await lane.close()
    assert [c[0] for c in broker.calls] == ["lookup", "lookup"]  # nothing placed on a guess
    assert [e.code for e in lane.errors()] == [netting.COPY_STALE_UNKNOWN] * 2
    assert "no lookup could tell" in lane.errors()[0].reason


async def test_copies_survive_the_wire_with_their_new_fields(broker: NettingBroker, tmp_path: Path) -> None:
    intents = [OrderIntent.loads(copy(n, "buy", 1, age=9).dumps()) for n in (1, 2)]
    lane = Lane(broker, tmp_path / "a.sqlite")
    lane.submit(intents)
    await lane.settle()
    assert broker.positions[("f1", "ESZ6")] == 2 and len(broker.calls) == 1
    await lane.close()


async def test_a_long_run_costs_one_journal_write_and_no_query_per_copy(
    broker: NettingBroker, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A lane that fell behind nets hundreds of copies at once (#18's soak): their rows are
    begun in one transaction and finished in one, never read one by one; a restart that
    redelivers them all still finds each copy's journaled outcome and places nothing."""
    run = [copy(n, "buy" if n % 3 else "sell", 1, age=60 - n * 0.1) for n in range(300)]
    lane = Lane(broker, tmp_path / "a.sqlite")
    journal = lane.router.journal
    assert journal is not None
    writes: list[tuple[int, int]] = []
    real_write, real_get = journal._write, journal.get
    reads: list[str] = []

    def counted_write(begins: Any, finishes: Any, priors: Any) -> None:
        writes.append((len(begins), len(finishes)))
        real_write(begins, finishes, priors)

    def counted_get(client_order_id: str, *, signal_id: str | None) -> Any:
        reads.append(client_order_id)
        return real_get(client_order_id, signal_id=signal_id)

    monkeypatch.setattr(journal, "_write", counted_write)
    monkeypatch.setattr(journal, "get", counted_get)
    lane.submit(run)
    await lane.settle()
    journal.flush()
    assert broker.calls == [("place", net_key(run))]
    assert reads == []  # no query per copy
    assert sum(b for b, _ in writes) == 301 and len(writes) <= 3  # 300 copies and the order, in bulk
    assert sorted(lane.acked) == sorted(i.client_order_id for i in run)
    assert len(lane.errors()) == 300
    await lane.close()
    restarted = Lane(broker, tmp_path / "a.sqlite")
    restarted.submit(run, redelivered=True)
    await restarted.settle()
    await restarted.close()
    assert broker.calls == [("place", net_key(run))]  # the journal answered every copy
    assert [e.code for e in restarted.errors()] == [netting.COPY_STALE_NETTED] * 300


class CheckingBroker(NettingBroker):
    """Reads the journal file, from a connection of its own, the moment an order arrives: what
    a SIGKILL of the executor during that broker call would leave on disk."""

    journal_path: Path
    on_disk: dict[str, dict[str, tuple[str, str | None]]]

    async def place(self, command: PlaceOrder) -> OrderAck:
        reader = sqlite3.connect(self.journal_path)
        try:
            rows = reader.execute("SELECT client_order_id, state, broker_order_id FROM attempts").fetchall()
        finally:
            reader.close()
        self.on_disk[command.client_order_id] = {cid: (state, covered_by) for cid, state, covered_by in rows}
        return await super().place(command)


async def test_a_netting_order_reaches_the_broker_only_after_its_copies_are_journaled_as_netted(
    tmp_path: Path,
) -> None:
    """What exactly-once under netting rests on: each netted copy's row says which order covers
    it (done, the netting order's key) before that order is sent, so an executor killed during
    the call finds its copies answered when they are redelivered, and places none of them.
    Session 29 wrote the answers apart from the netting order's own row; the chaos test
    (tests/integration/test_chaos_exactly_once.py) then found followers at twice their position."""
    broker = CheckingBroker(parse_config(CONFIG, env={}).sessions["s"])
    broker.journal_path, broker.on_disk = tmp_path / "a.sqlite", {}
    lane = Lane(broker, broker.journal_path)
    run = [copy(1, "buy", 1, age=12), copy(2, "buy", 2, age=11), copy(3, "sell", 1, age=10)]
    lane.submit(run)
    await lane.settle()
    await lane.close()
    key = net_key(run)
    assert broker.calls == [("place", key)]
    on_disk = broker.on_disk[key]
    assert {i.client_order_id: on_disk.get(i.client_order_id) for i in run} == {
        i.client_order_id: ("done", key) for i in run
    }
    assert on_disk[key][0] == "attempting"  # and the netting order's own row, begun before its call

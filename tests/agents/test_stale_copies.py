"""Stale copies in an executor's lane (issue #17, item 3): a copy older than its group's limit
is not placed as it was; the lane nets every stale copy of the symbol into one order to the
newest copy's target, read against the broker's position. A fake broker that fills market
orders at once and a fake clock; the real lanes, router and attempt journal."""

from __future__ import annotations

import itertools
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import ClassVar

import pytest

from copytrader.agents.execution import netting
from copytrader.agents.execution.attempt_journal import AttemptJournal
from copytrader.agents.execution.netting import StaleCopies, plan, take_run, walk
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
    PositionEvent,
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
        self.snapshot_fails = False
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
        self.calls.append(("snapshot", account_id))
        if self.snapshot_fails:
            raise BrokerUnavailable("positions search timed out", sent=True)
        held = tuple(
            PositionEvent(account, symbol, net, None)
            for (account, symbol), net in self.positions.items()
            if account == account_id
        )
        return AccountSnapshot(account_id, balance=0, open_orders=(), positions=held)  # type: ignore[arg-type]  # balance unused


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

    def __init__(self, broker: NettingBroker, path: Path, clock: Clock) -> None:
        self.outbox = MemoryOutbox()
        self.router = OrderRouter(
            SessionPool(parse_config(CONFIG, env={}), lambda _cfg: broker), self.outbox, AttemptJournal(path)
        )
        self.router.late.delays_s = ()
        self.stale = StaleCopies(self.router, clock)
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
    target: int | None,
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
        target_position=target,
    )


@pytest.fixture
def broker() -> NettingBroker:
    return NettingBroker(parse_config(CONFIG, env={}).sessions["s"])


# -- the pure rules ------------------------------------------------------------------------------
def test_a_copy_is_stale_only_past_its_limit_and_only_when_it_can_be_netted() -> None:
    assert not netting.is_stale(copy(1, "buy", 1, 1, age=LIMIT - 0.1), NOW)
    assert netting.is_stale(copy(1, "buy", 1, 1, age=LIMIT + 0.1), NOW)
    assert not netting.is_stale(copy(1, "buy", 1, None, age=60), NOW)  # no target: placed as it was
    assert not netting.is_stale(copy(1, "buy", 1, 1, age=60, limit=None), NOW)  # a reconcile/guard order
    assert not netting.is_stale(copy(1, "buy", 1, 1, age=60, order_type="limit"), NOW)  # a working order
    assert not netting.is_stale(copy(1, "buy", 1, 1, age=netting.MAX_TRUSTED_AGE_S + 1), NOW)  # not a clock


def test_a_run_takes_the_stale_copies_of_the_heads_symbol_and_leaves_the_rest_in_order() -> None:
    head = copy(1, "buy", 1, 1, age=9)
    waiting = [
        copy(2, "buy", 1, 1, age=8, symbol="NQZ6"),
        copy(3, "sell", 1, 0, age=8),
        copy(4, "buy", 1, None, age=8, order_type="limit"),
        copy(5, "buy", 2, 2, age=1),  # fresh: placed as it was, after the netting order
        copy(6, "buy", 1, 3, age=7),
    ]
    run, rest = take_run((head, None, False), [(w, None, False) for w in waiting], NOW)
    assert [i[0].signal_id for i in run] == ["sig-1", "sig-3", "sig-6"]
    assert [i[0].signal_id for i in rest] == ["sig-2", "sig-4", "sig-5"]


def test_the_plan_reaches_the_target_when_it_agrees_with_the_copies() -> None:
    run = [copy(1, "buy", 1, 1, age=9), copy(2, "buy", 1, 2, age=9), copy(3, "sell", 3, -1, age=9)]
    assert walk(0, run) == -1
    decided = plan(0, run, uncertain=False)
    assert (decided.goal, decided.quantity) == (-1, -1)
    assert plan(-1, run, uncertain=True).quantity == 0  # netted before: the position says so


def test_a_target_the_copies_cannot_reach_falls_back_to_the_copies_own_sum_or_to_nothing() -> None:
    # Fan-out restarted while the leader held 5: its target (1) is 4 contracts from the walk (5+1).
    run = [copy(1, "buy", 1, 1, age=9)]
    decided = plan(5, run, uncertain=False)
    assert (decided.goal, decided.quantity) == (6, 1) and "copies' own" in decided.how
    refused = plan(5, run, uncertain=True)  # an earlier attempt may have bought: 6 is no proof
    assert refused.goal is None and refused.quantity == 0 and "nothing placed" in refused.how
    redelivered = plan(3, [copy(1, "buy", 1, 1, age=9), copy(2, "buy", 2, 3, age=9)], uncertain=True)
    assert (redelivered.goal, redelivered.quantity) == (3, 0)  # the position counts what was done


# -- the lane -------------------------------------------------------------------------------------
async def test_stale_copies_are_netted_into_one_order_and_each_is_reported(
    broker: NettingBroker, tmp_path: Path
) -> None:
    clock = Clock()
    lane = Lane(broker, tmp_path / "a.sqlite", clock)
    broker.positions[("f1", "ESZ6")] = 0
    run = [
        copy(1, "buy", 1, 1, age=12),
        copy(2, "buy", 1, 2, age=11),
        copy(3, "sell", 1, 1, age=10),
        copy(4, "buy", 2, 3, age=9),
    ]
    working = copy(5, "buy", 1, None, age=9, order_type="limit")
    fresh = copy(6, "sell", 1, 2, age=0.5)
    lane.submit([*run, working, fresh])
    await lane.settle()
    net_key = ids.client_order_id(f"stale:{run[0].client_order_id}:{run[-1].client_order_id}", "f1")
    assert broker.calls == [
        ("snapshot", "f1"),
        ("place", net_key),
        ("place", working.client_order_id),  # a working-order copy goes as it was
        ("place", fresh.client_order_id),  # a fresh copy too, after the netting order
    ]
    assert broker.positions[("f1", "ESZ6")] == 2  # 0 → 3 by one order, then the fresh sell
    errors = {e.client_order_id: e for e in lane.errors()}
    assert set(errors) == {i.client_order_id for i in run}
    for error in errors.values():
        assert error.code == netting.COPY_STALE_NETTED
        assert "12.0 s, 11.0 s, 10.0 s, 9.0 s" in error.reason and "older than 5 s" in error.reason
        assert net_key in error.reason and "0 → 3" in error.reason
    assert sorted(lane.acked) == sorted(i.client_order_id for i in [*run, working, fresh])  # every offset
    await lane.close()


async def test_a_fresh_copy_is_placed_as_it_was(broker: NettingBroker, tmp_path: Path) -> None:
    lane = Lane(broker, tmp_path / "a.sqlite", Clock())
    intent = copy(1, "buy", 2, 2, age=LIMIT - 1)
    lane.submit([intent])
    await lane.settle()
    assert broker.calls == [("place", intent.client_order_id)] and not lane.errors()
    await lane.close()


async def test_an_unreadable_position_places_nothing_and_says_so(broker: NettingBroker, tmp_path: Path) -> None:
    broker.snapshot_fails = True
    lane = Lane(broker, tmp_path / "a.sqlite", Clock())
    run = [copy(1, "buy", 1, 1, age=9), copy(2, "buy", 1, 2, age=8)]
    lane.submit(run)
    await lane.settle()
    assert broker.calls == [("snapshot", "f1")]
    errors = lane.errors()
    assert [e.code for e in errors] == [netting.COPY_STALE_UNREAD] * 2
    assert "positions search timed out" in errors[0].reason and "nothing placed" in errors[0].reason
    await lane.close()


async def test_a_follower_already_at_the_target_gets_no_order(broker: NettingBroker, tmp_path: Path) -> None:
    broker.positions[("f1", "ESZ6")] = 2
    lane = Lane(broker, tmp_path / "a.sqlite", Clock())
    lane.submit([copy(1, "sell", 1, 1, age=9), copy(2, "buy", 1, 2, age=8)])
    await lane.settle()
    assert broker.calls == [("snapshot", "f1")]
    assert all("already holds 2" in e.reason for e in lane.errors())
    await lane.close()


async def test_a_redelivered_run_is_never_netted_twice(broker: NettingBroker, tmp_path: Path) -> None:
    """After a crash before the offsets were committed: the same journal (a restart) and an
    empty one (another host) each see the broker already at the target."""
    run = [copy(1, "buy", 1, 1, age=12), copy(2, "buy", 2, 3, age=11)]
    first = Lane(broker, tmp_path / "a.sqlite", Clock())
    first.submit(run)
    await first.settle()
    await first.close()
    assert [c[0] for c in broker.calls] == ["snapshot", "place"] and broker.positions[("f1", "ESZ6")] == 3
    for path in (tmp_path / "a.sqlite", tmp_path / "other-host.sqlite"):
        again = Lane(broker, path, Clock())
        again.submit(run, redelivered=True)
        await again.settle()
        await again.close()
        assert [e.code for e in again.errors()] == [netting.COPY_STALE_NETTED] * 2
    assert [c[0] for c in broker.calls].count("place") == 1 and broker.positions[("f1", "ESZ6")] == 3


async def test_a_netting_order_whose_fill_is_not_yet_seen_is_found_by_its_key(
    broker: NettingBroker, tmp_path: Path
) -> None:
    """The position may lag the netting order's fill: the same run then plans the same key,
    and the router looks it up instead of placing it again."""
    run = [copy(1, "buy", 1, 1, age=12), copy(2, "buy", 2, 3, age=11)]
    first = Lane(broker, tmp_path / "a.sqlite", Clock())
    first.submit(run)
    await first.settle()
    await first.close()
    broker.positions[("f1", "ESZ6")] = 0  # the broker's position view has not caught up
    again = Lane(broker, tmp_path / "b.sqlite", Clock())
    again.submit(run, redelivered=True)
    await again.settle()
    await again.close()
    assert [c[0] for c in broker.calls] == ["snapshot", "place", "snapshot", "lookup"]


async def test_the_planner_and_the_lane_agree_on_the_wire(broker: NettingBroker, tmp_path: Path) -> None:
    """A netting decision survives the intents' JSON round trip (fields with defaults)."""
    intents = [OrderIntent.loads(copy(n, "buy", 1, n, age=9).dumps()) for n in (1, 2)]
    lane = Lane(broker, tmp_path / "a.sqlite", Clock())
    lane.submit(intents)
    await lane.settle()
    assert broker.positions[("f1", "ESZ6")] == 2
    await lane.close()

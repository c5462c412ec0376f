"""Stale copies against the ProjectX simulator with an exhausted request budget (issue #17,
item 3): late copies are netted into one order, the follower ends at the leader's position
scaled (4 × 2), each skipped copy is on ``order.errors``, a redelivery places nothing twice, and an exit
is served before entries that waited longer."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from waiting import wait_until

from copytrader.agents.execution import netting
from copytrader.agents.execution.attempt_journal import AttemptJournal
from copytrader.agents.execution.netting import StaleCopies
from copytrader.agents.execution.router import AccountLanes, OrderRouter
from copytrader.agents.fanout.planner import FanoutPlanner
from copytrader.agents.shared.outbox import MemoryOutbox
from copytrader.agents.shared.sessions import SessionPool
from copytrader.brokers.base import SessionConfig
from copytrader.brokers.projectx.adapter import ProjectXAdapter
from copytrader.brokers.projectx.simulator import ProjectXSimulator, create_simulator
from copytrader.core import ids
from copytrader.core.config import CopyConfig, parse_config
from copytrader.core.records import OrderError, OrderIntent, TradeSignal

SYMBOL = "ESZ6"
ACCOUNTS = {"f1": "PX-FOLLOWER-1", "f2": "PX-FOLLOWER-2", "f3": "PX-LEADER"}
CONFIG = {
    "sessions": [{"id": "px", "platform": "projectx", "endpoint": "http://127.0.0.1:1"}],
    "accounts": [{"id": "L", "session": "px"}, *({"id": a, "session": "px"} for a in ACCOUNTS)],
    "copy_groups": [
        {"leader": "L", "stale_copy_s": 0.5, "followers": [{"account": "f1", "rule": {"multiplier": 2}}]},
    ],
}


def adapter_for(sim: ProjectXSimulator, rate_limit: tuple[int, float]) -> ProjectXAdapter:
    creds = sim.demo_credentials()
    return ProjectXAdapter(
        SessionConfig(
            platform="projectx",
            session_id="px",
            accounts=dict(ACCOUNTS),
            endpoint=sim.base_url,
            username=creds["userName"],
            secret=creds["apiKey"],
            options={"rate_limit": rate_limit, "max_429_retries": 0, "reconnect_min_s": 0.02},
        )
    )


class Executor:
    """One executor: router, journal, lanes with stale-copy netting, over one ProjectX login."""

    def __init__(self, config: CopyConfig, adapter: ProjectXAdapter, journal: Path) -> None:
        self.outbox = MemoryOutbox()
        self.router = OrderRouter(SessionPool(config, lambda _cfg: adapter), self.outbox, AttemptJournal(journal))
        self.lanes = AccountLanes(
            self.router.execute, self.router.report_crash, self.router.report_skipped, StaleCopies(self.router)
        )

    async def run(self, intents: list[OrderIntent], redelivered: bool = False) -> None:
        for intent in intents:
            self.lanes.submit(intent, None, redelivered)
        await self.lanes.join()
        await self.router.outbox.drained()

    def errors(self) -> list[OrderError]:
        return [e for e in self.outbox.sent["error"] if isinstance(e, OrderError)]

    async def close(self) -> None:
        await self.lanes.close()
        await self.router.pool.close()
        assert self.router.journal is not None
        self.router.journal.close()


@pytest.fixture
async def sim() -> AsyncIterator[ProjectXSimulator]:
    simulator = create_simulator(tick_ms=0)
    await simulator.start()
    try:
        yield simulator
    finally:
        await simulator.stop()


def leader_signal(n: int, side: str, quantity: int) -> TradeSignal:
    return TradeSignal(
        signal_id=ids.signal_id("L", str(n), "new"),
        leader_account="L",
        platform="projectx",
        symbol=SYMBOL,
        side=side,
        quantity=quantity,
        leader_order_id=str(n),
        stamps={"detected": time.time()},
    )


def held(sim: ProjectXSimulator, account: str) -> int:
    position = sim.exchange.account(ACCOUNTS[account]).positions.get(SYMBOL)
    return 0 if position is None else int(position.net_quantity)


def orders_of(sim: ProjectXSimulator, account: str) -> list[Any]:
    return sorted(sim.exchange.account(ACCOUNTS[account]).orders.values(), key=lambda o: int(o.order_id))


async def test_late_copies_are_netted_into_one_order_and_never_twice(sim: ProjectXSimulator, tmp_path: Path) -> None:
    config = parse_config(CONFIG, env={})
    planner = FanoutPlanner(config)
    leader = [("buy", 1), ("buy", 2), ("sell", 1), ("buy", 3), ("sell", 2), ("buy", 1)]  # leader ends long 4
    intents = [i for n, (side, qty) in enumerate(leader) for i in planner.plan(leader_signal(n, side, qty))[0]]
    assert [i.quantity for i in intents] == [2, 4, 2, 6, 4, 2]  # multiplier 2
    adapter = adapter_for(sim, rate_limit=(4, 1.0))
    executor = Executor(config, adapter, tmp_path / "journal.sqlite")
    try:
        await executor.router.pool.adapter_for("f1")  # the pool connects it
        adapter.budget.penalize(1.0)  # the login's budget is spent (a 429's penalty)
        await executor.run(intents)
        # The first copy was under way before it aged and is placed, late; the other five
        # reached the lane's head older than 0.5 s and became one order.
        assert [o.quantity for o in orders_of(sim, "f1")] == [2, 6]
        await wait_until(lambda: held(sim, "f1") == 8, timeout_s=5, what="the netting order filled")
        errors = executor.errors()
        assert sorted(e.client_order_id or "" for e in errors) == sorted(i.client_order_id for i in intents[1:])
        assert {e.code for e in errors} == {netting.COPY_STALE_NETTED}
        assert "older than 0.5 s" in errors[0].reason and "buy 6" in errors[0].reason
    finally:
        await executor.close()
    # Redelivered (the offsets were never committed): a restart with the same journal, then
    # another host with none. The broker's position already holds the target: nothing placed.
    for journal in ("journal.sqlite", "other-host.sqlite"):
        again = Executor(config, adapter_for(sim, rate_limit=(40, 1.0)), tmp_path / journal)
        try:
            await again.run(intents, redelivered=True)
            assert {e.code for e in again.errors() if e.client_order_id != intents[0].client_order_id} == {
                netting.COPY_STALE_NETTED
            }
        finally:
            await again.close()
    assert [o.quantity for o in orders_of(sim, "f1")] == [2, 6] and held(sim, "f1") == 8


def copy_for(account: str, side: str, *, reduces: bool = False, action: str = "place") -> OrderIntent:
    signal = f"order-{account}-{action}-{side}"
    return OrderIntent(
        client_order_id=ids.client_order_id(signal, account),
        signal_id=signal,
        account_id=account,
        platform="projectx",
        leader_account="L",
        action=action,
        symbol=SYMBOL,
        side=side,
        quantity=1,
        stamps={"detected": time.time()},
        reduces_position=reduces,
    )


@pytest.mark.parametrize("action", ["place", "flatten"])
async def test_an_exit_or_flatten_goes_before_entries_that_waited_longer_for_the_budget(
    sim: ProjectXSimulator, tmp_path: Path, action: str
) -> None:
    config = parse_config(CONFIG, env={})
    adapter = adapter_for(sim, rate_limit=(1, 0.2))  # one request at a time: the order shows
    executor = Executor(config, adapter, tmp_path / "journal.sqlite")
    try:
        await executor.run([copy_for("f2", "buy")])  # f2 is long 1
        adapter.budget.penalize(0.5)
        # Two entries on two accounts of the login wait first; f2's exit comes last.
        exit_ = copy_for("f2", "sell", reduces=True, action=action)
        await executor.run([copy_for("f1", "buy"), copy_for("f3", "buy"), exit_])
        placed = sorted(
            (int(o.order_id), account)
            for account in ACCOUNTS
            for o in sim.exchange.account(ACCOUNTS[account]).orders.values()
        )
        assert [account for _, account in placed] == ["f2", "f2", "f1", "f3"]
        assert held(sim, "f2") == 0
    finally:
        await executor.close()

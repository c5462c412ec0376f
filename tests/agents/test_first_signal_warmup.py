"""The warm-up for the first signal (#16 item 3): the fan-out's throw-away plans and the
executor's lanes, metric series and journal reads run before ``/readyz``, and none of them
sends a record, calls a broker or writes a journal row."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

import pytest
from aiokafka.structs import TopicPartition
from prometheus_client import REGISTRY
from waiting import wait_until

from copytrader.agents.execution.warmup import INTENT_PARTITIONS, served_accounts, warm_lanes
from copytrader.agents.fanout.warmup import WARM_KINDS, warm_planner, warm_symbols
from copytrader.agents.shared.outbox import MemoryOutbox
from copytrader.app.factory import CopyTraderApp, create_app
from copytrader.brokers.base import BrokerAdapter
from copytrader.brokers.paper.adapter import reset_venues
from copytrader.brokers.registry import create_adapter
from copytrader.core.config import parse_config
from copytrader.core.records import OrderIntent
from copytrader.core.settings import Settings
from copytrader.core.topics import partition_for

PLATFORM = "paper"
FOLLOWERS = [f"warm-f{n}" for n in range(6)]
CONFIG: dict[str, Any] = {
    "sessions": [{"id": "p", "platform": PLATFORM, "options": {"tick_ms": 0, "venue": "first-signal-warmup"}}],
    "accounts": [{"id": "L", "session": "p"}, *({"id": f, "session": "p"} for f in FOLLOWERS)],
    "copy_groups": [
        {
            "leader": "L",
            "followers": [
                {"account": FOLLOWERS[0]},
                {"account": FOLLOWERS[1], "rule": {"multiplier": 3, "symbol_map": {"ES": "MES"}}},
                {"account": FOLLOWERS[2], "rule": {"mode": "fixed", "quantity": 2}},
                *({"account": f} for f in FOLLOWERS[3:]),
            ],
        }
    ],
}


class Spy:
    """The adapter factory, counting every session the worker opens (a broker call needs one)."""

    def __init__(self) -> None:
        self.opened: list[str] = []

    def __call__(self, session: Any) -> BrokerAdapter:
        self.opened.append(session.session_id)
        return create_adapter(session)


@pytest.fixture
def spy() -> Spy:
    return Spy()


@pytest.fixture
def outbox() -> MemoryOutbox:
    return MemoryOutbox()


@pytest.fixture
def app(tmp_path: Path, spy: Spy, outbox: MemoryOutbox) -> Any:
    reset_venues()
    settings = Settings(
        app_id=f"first-signal-{uuid.uuid4().hex[:8]}",
        kafka_broker="kafka://127.0.0.1:1",
        data_dir=tmp_path,
        roles=("fanout", "execute"),
        executor_consumer="faust",  # no direct consumer: every follower's lane is warmed
    )
    yield create_app(settings, parse_config(CONFIG, env={}), adapter_factory=spy, outbox=outbox)
    reset_venues()


def sample_value(name: str, labels: dict[str, str]) -> float | None:
    return REGISTRY.get_sample_value(name, labels)


async def test_the_planner_warm_up_plans_every_kind_for_each_leader_and_changes_nothing(app: CopyTraderApp) -> None:
    assert app.runtime.fanout is not None
    planner = app.runtime.fanout.planner
    planner.leader_net[("L", "ESZ6")] = 2  # a position the leader held before: kept as it was
    controls = (set(planner.controls.paused_accounts), planner.controls.paused_all, dict(planner.controls.rules))

    planned = await warm_planner(planner, ["ESZ6", "NQZ6"])

    # six kinds on the first symbol and a market entry on the second, each to every follower
    assert planned == (len(WARM_KINDS) + 1) * len(FOLLOWERS)
    assert planner.leader_net == {("L", "ESZ6"): 2}
    assert (set(planner.controls.paused_accounts), planner.controls.paused_all, dict(planner.controls.rules)) == (
        controls
    )
    assert sample_value("copytrader_signals_total", {"kind": "new", "outcome": "copied"}) is not None


async def test_the_planner_warms_the_priced_symbols_or_every_instrument_root(app: CopyTraderApp) -> None:
    config = app.runtime.config
    assert warm_symbols(config)[:2] == ["6E", "CL"]  # no price feed: bare instrument roots
    assert await warm_planner(app.runtime.fanout.planner) > 0  # type: ignore[union-attr]  # fanout role installed


async def test_the_lane_warm_up_opens_lanes_and_series_without_a_broker_call_a_record_or_a_row(
    app: CopyTraderApp, spy: Spy, outbox: MemoryOutbox
) -> None:
    stage = app.runtime.execution
    assert stage is not None and stage.router.journal is not None
    journal = stage.router.journal
    placed = {"platform": PLATFORM, "outcome": "placed"}
    calls = {"platform": PLATFORM, "operation": "place"}
    # The registry is the process's: other tests may have counted into these series already.
    before = (
        sample_value("copytrader_orders_total", placed),
        sample_value("copytrader_broker_call_seconds_count", calls),
    )

    assert await warm_lanes(stage) == len(FOLLOWERS)

    assert spy.opened == []  # no session opened: no broker call could have been made
    assert dict(outbox.sent) == {}  # nothing for trade.executions, order.errors or anywhere
    assert len(journal) == 0 and journal.get("warmup|0", signal_id="warmup") is None  # the reads wrote nothing
    assert stage.lanes.depth() == 0
    queues = [stage.lanes.open(account) for account in FOLLOWERS]
    assert all(queue.empty() for queue in queues)
    assert stage.router.stats == {}  # the dashboard's per-account figures are untouched
    publisher = stage.router.outbox._task  # started by the warm-up's step, which sent nothing
    assert publisher is not None and not publisher.done()
    # the series exist now, and the warm-up counted nothing into them
    assert sample_value("copytrader_orders_total", placed) == (before[0] or 0.0)
    assert sample_value("copytrader_broker_call_seconds_count", calls) == (before[1] or 0.0)

    # the warmed lane is the one the first real intent runs in
    intent = OrderIntent(
        client_order_id=f"warm-test|{FOLLOWERS[0]}",
        signal_id="warm-test",
        account_id=FOLLOWERS[0],
        platform=PLATFORM,
        leader_account="L",
        action="place",
        symbol="ESZ6",
        side="buy",
        quantity=1,
        stamps={"detected": 1.0},
    )
    stage.lanes.submit(intent)
    await wait_until(lambda: bool(outbox.sent.get("execution")), timeout_s=10, what="the first copy's ack")
    await stage.lanes.join()
    assert [e.client_order_id for e in outbox.sent["execution"] if e.kind == "ack"] == [intent.client_order_id]  # type: ignore[attr-defined]  # MemoryOutbox holds Executions here
    assert spy.opened == ["p"]
    await stage.lanes.close()
    await stage.router.outbox.close()
    await app.runtime.pool.close()
    journal.close()


class AssignedConsumer:
    def __init__(self, partitions: set[int]) -> None:
        self.partitions = partitions

    def assignment(self) -> set[TopicPartition]:
        return {TopicPartition("pre.orders.requests", p) for p in self.partitions}


def test_an_executor_warms_only_the_accounts_of_its_assigned_partitions(app: CopyTraderApp) -> None:
    stage = app.runtime.execution
    assert stage is not None
    assert served_accounts(stage) == sorted(FOLLOWERS)  # the Faust consumer: every follower
    mine = partition_for(FOLLOWERS[0], INTENT_PARTITIONS)
    stage.intent_consumer = AssignedConsumer({mine})  # type: ignore[assignment]  # duck-typed
    served = served_accounts(stage)
    assert FOLLOWERS[0] in served
    assert all(partition_for(account, INTENT_PARTITIONS) == mine for account in served)
    stage.intent_consumer = AssignedConsumer(set())  # type: ignore[assignment]
    assert served_accounts(stage) == []


def test_the_journal_warm_up_reads_each_group_size_and_writes_nothing(tmp_path: Path) -> None:
    from copytrader.agents.execution.attempt_journal import AttemptJournal

    journal = AttemptJournal(tmp_path / "a.sqlite")
    journal.warm(3)
    assert len(journal) == 0

    async def first_begin() -> object:
        return await journal.begin("cid-1", "f1", "place", signal_id="L:o1:new")

    assert asyncio.run(first_begin()) is None  # a fresh intent is still fresh after the warm-up
    journal.close()


def test_with_a_price_feed_the_planner_warms_the_priced_symbols() -> None:
    priced = {
        **CONFIG,
        "market_data": {
            "platform": "dxlink",
            "endpoint": "ws://127.0.0.1:1/dxlink-ws",
            "token_env": "WARM_TOKEN",
            "symbols": {"NQZ6": "/NQZ26:XCME", "ESZ6": "/ESZ26:XCME"},
        },
    }
    assert warm_symbols(parse_config(priced, env={"WARM_TOKEN": "t"})) == ["ESZ6", "NQZ6"]

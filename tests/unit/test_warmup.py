"""The warm-up before readiness (issue #16 item 3): what it touches, its bound, its failures."""

from __future__ import annotations

import asyncio
import logging
import uuid
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import faust
import pytest
from aiokafka.structs import TopicPartition

from copytrader.agents.execution.agent import connect_sessions
from copytrader.agents.execution.warmup import warm_positions
from copytrader.agents.shared.outbox import MemoryOutbox
from copytrader.agents.shared.warmup import (
    PRODUCED_BY_ROLE,
    Warmup,
    faust_producer,
    produced_topics,
    sample_records,
    warm_codecs,
    warm_producer,
)
from copytrader.app.factory import create_app
from copytrader.core.records import TradeSignal
from copytrader.core.settings import ALL_ROLES, Settings
from copytrader.core.topics import declare_topics
from copytrader.web.api import readiness


class FakeCluster:
    def __init__(self, leaders: dict[str, int]) -> None:
        self.leaders = leaders

    def leader_for_partition(self, tp: TopicPartition) -> int:
        return self.leaders[tp.topic]


class FakeClient:
    def __init__(self, leaders: dict[str, int], reachable: bool = True) -> None:
        self.cluster = FakeCluster(leaders)
        self.reachable = reachable
        self.readied: list[int] = []

    async def ready(self, node_id: int) -> bool:
        self.readied.append(node_id)
        return self.reachable


class FakeProducer:
    """Records which topics' metadata were asked for; sends nothing (it has no send)."""

    def __init__(self, leaders: dict[str, int], reachable: bool = True) -> None:
        self.client = FakeClient(leaders, reachable)
        self.asked: list[str] = []

    async def partitions_for(self, topic: str) -> set[int]:
        self.asked.append(topic)
        return {0, 1, 2}


def topics_of_a_worker() -> Any:
    return declare_topics(faust.App(f"warmup-{uuid.uuid4().hex[:6]}", autodiscover=False), "pre.")


def test_each_role_warms_every_topic_it_produces_to_and_the_heartbeat() -> None:
    topics = topics_of_a_worker()
    assert produced_topics(topics, ("fanout",)) == ["pre.system.heartbeat", "pre.orders.requests", "pre.order.errors"]
    assert produced_topics(topics, ("execute",)) == [
        "pre.system.heartbeat",
        "pre.trade.executions",
        "pre.order.errors",
        "pre.broker.health",
        "pre.account.status",
    ]
    assert produced_topics(topics, ("ingest",)) == ["pre.system.heartbeat", "pre.trade.signals", "pre.broker.health"]
    assert produced_topics(topics, ("web",)) == ["pre.system.heartbeat"]
    every = produced_topics(topics, ALL_ROLES)
    assert len(every) == len(set(every))  # each topic once, however many roles send to it
    assert set(PRODUCED_BY_ROLE) <= set(ALL_ROLES)


async def test_the_producer_step_asks_metadata_of_every_topic_and_connects_each_leader_once() -> None:
    producer = FakeProducer({"a": 1, "b": 2, "c": 1})
    await warm_producer(producer, ["a", "b", "c"])
    assert producer.asked == ["a", "b", "c"]
    assert producer.client.readied == [1, 2]


async def test_an_unreachable_leader_fails_the_producer_step() -> None:
    with pytest.raises(ConnectionError, match="broker 3"):
        await warm_producer(FakeProducer({"a": 3}, reachable=False), ["a"])


async def test_codecs_of_every_record_on_the_copy_path_are_run_in_memory() -> None:
    kinds = {type(record).__name__ for record in sample_records()}
    assert {"TradeSignal", "IntentBatch", "Execution", "OrderError", "Position", "AccountStatus", "Heartbeat"} <= kinds
    assert {"ExecutionBatch", "PositionBatch"} <= kinds  # what trade.executions and positions.updates carry
    assert any(isinstance(record, TradeSignal) for record in sample_records())
    await warm_codecs()  # raises if any record no longer round-trips


async def test_steps_run_in_order_and_the_warm_up_is_done_only_after_the_last() -> None:
    warmup = Warmup()
    ran: list[str] = []
    release = asyncio.Event()

    async def first() -> None:
        ran.append("first")

    async def second() -> None:
        await release.wait()
        ran.append("second")

    warmup.add("first", first)
    warmup.add("second", second)
    assert (warmup.done, warmup.status()["state"]) == (False, "pending")
    task = asyncio.ensure_future(warmup.run())
    while ran != ["first"]:
        await asyncio.sleep(0)
    assert (warmup.done, warmup.status()["state"]) == (False, "running")
    release.set()
    await asyncio.wait_for(task, 5)
    assert ran == ["first", "second"]
    assert warmup.status()["steps"] == ["first", "second"]
    assert warmup.done and warmup.status()["error"] is None and warmup.status()["took_s"] is not None


async def test_a_step_that_never_finishes_is_bounded_and_reported_with_its_name(
    caplog: pytest.LogCaptureFixture,
) -> None:
    warmup = Warmup(timeout_s=0.05)

    async def never() -> None:
        await asyncio.Event().wait()

    warmup.add("kafka metadata", never)
    with caplog.at_level(logging.ERROR):
        assert await warmup.run_once() is False
        assert await warmup.run_once() is False
    assert not warmup.done
    assert warmup.status()["state"] == "failed"
    assert "kafka metadata" in (warmup.error or "") and "0.05 s" in (warmup.error or "")
    assert len([r for r in caplog.records if "did not finish" in r.getMessage()]) == 1  # logged once


async def test_a_failed_warm_up_is_retried_until_it_succeeds() -> None:
    warmup = Warmup(retry_after_s=0.0)
    calls: list[int] = []

    async def flaky() -> None:
        calls.append(1)
        if len(calls) < 3:
            raise ConnectionError("broker away")

    warmup.add("flaky", flaky)
    await asyncio.wait_for(warmup.run(), 5)
    assert warmup.done and warmup.attempts == 3 and warmup.error is None


class FakeIntentConsumer:
    def __init__(self) -> None:
        self.assigned: set[TopicPartition] = set()
        self.positions: list[TopicPartition] = []
        self.consumer = self

    def assignment(self) -> set[TopicPartition]:
        return self.assigned

    async def position(self, tp: TopicPartition) -> int:
        self.positions.append(tp)
        return 0


async def test_the_executor_resolves_a_position_on_every_assigned_partition_once_assigned() -> None:
    consumer = FakeIntentConsumer()
    task = asyncio.ensure_future(warm_positions(consumer))  # type: ignore[arg-type]  # duck-typed consumer
    await asyncio.sleep(0.1)
    assert not task.done()  # nothing assigned yet: it waits
    consumer.assigned = {TopicPartition("pre.orders.requests", p) for p in (3, 1, 2)}
    assert await asyncio.wait_for(task, 5) == 3
    assert [tp.partition for tp in consumer.positions] == [1, 2, 3]


def test_the_worker_wires_its_warm_up_and_faust_keeps_its_producer_where_we_read_it(tmp_path: Path) -> None:
    settings = Settings(
        app_id=f"warmup-{uuid.uuid4().hex[:8]}",
        kafka_broker="kafka://127.0.0.1:1",
        data_dir=tmp_path,
        roles=("fanout", "execute"),
    )
    app = create_app(settings, outbox=MemoryOutbox())
    names = [name for name, _ in app.runtime.warmup.steps]
    assert names[0] == "codecs"
    assert "orders.requests" in names[1] and "trade.executions" in names[1]
    assert names[2].startswith("fanout: a throw-away plan")
    assert names[3:] == [
        "fanout: trade.signals positions",
        "execute: orders.requests positions",
        "execute: lanes, metric series, journal reads",
    ]
    with pytest.raises(RuntimeError, match="not started"):
        faust_producer(app)  # None until the worker starts it
    assert hasattr(app.producer, "_producer")  # a Faust upgrade that renames it fails here


async def test_readyz_stays_false_until_the_warm_up_is_done_and_says_why_it_failed() -> None:
    warmup = Warmup(timeout_s=0.05)
    release = asyncio.Event()

    async def step() -> None:
        await release.wait()

    warmup.add("producer", step)
    assert readiness(False, 10, warmup)["ready"] is False  # pending
    assert await warmup.run_once() is False  # bounded: the step never finished
    failed = readiness(False, 10, warmup)
    assert failed["ready"] is False and "producer" in failed["warmup"]["error"]
    release.set()
    assert await warmup.run_once() is True
    assert readiness(False, 10, warmup) == {
        "ready": True,
        "assigned_partitions": 10,
        "rebalancing": False,
        "warmup": warmup.status(),
    }
    assert readiness(True, 10, warmup)["ready"] is False  # a rebalance still says not ready
    assert readiness(False, 0, warmup)["ready"] is False  # and so do no partitions


async def test_readyz_waits_for_every_gate_and_names_the_ones_that_do_not_hold() -> None:
    warmup = Warmup()
    feed_positioned = asyncio.Event()
    started = {"up": False}

    async def codecs() -> None:
        return None

    warmup.add("codecs", codecs)
    warmup.add_gate("worker started", lambda: started["up"])
    warmup.add_gate("dashboard feed positioned", feed_positioned.is_set)
    assert await warmup.run_once() is True
    assert warmup.done and not warmup.ready  # the steps are over, the start-up is not
    body = readiness(False, 10, warmup)
    assert body["ready"] is False
    assert body["warmup"]["waiting_for"] == ["worker started", "dashboard feed positioned"]
    started["up"] = True
    assert readiness(False, 10, warmup)["warmup"]["waiting_for"] == ["dashboard feed positioned"]
    feed_positioned.set()
    body = readiness(False, 10, warmup)
    assert body["ready"] is True and body["warmup"]["waiting_for"] == []


@pytest.mark.parametrize(
    ("roles", "gates"),
    [
        (
            ("fanout", "execute"),
            ["worker started (start-up heap frozen)", "execute: follower sessions opened or refused"],
        ),
        (
            ("track", "store", "web"),
            ["worker started (start-up heap frozen)", "database ready", "dashboard feed positioned"],
        ),
    ],
)
def test_each_worker_gates_its_readiness_on_the_start_up_work_of_its_roles(
    tmp_path: Path, roles: tuple[str, ...], gates: list[str]
) -> None:
    settings = Settings(
        app_id=f"gates-{uuid.uuid4().hex[:8]}",
        kafka_broker="kafka://127.0.0.1:1",
        data_dir=tmp_path,
        roles=roles,
        database_url=f"sqlite:///{tmp_path / 'gates.db'}",
    )
    app = create_app(settings, outbox=MemoryOutbox())
    warmup = app.runtime.warmup
    assert [name for name, _ in warmup.gates] == gates
    assert warmup.waiting_for() == gates  # nothing has started: every gate waits
    app.started_up = True
    assert "worker started (start-up heap frozen)" not in warmup.waiting_for()


class FakePool:
    """``connect_all`` as the session pool's: one attempt per account, failures logged not raised."""

    def __init__(self, hang: bool = False) -> None:
        self.hang = hang
        self.release = asyncio.Event()
        self.connected: list[str] = []

    async def connect_all(self, account_ids: list[str]) -> None:
        if self.hang:
            await self.release.wait()
        self.connected += account_ids


async def test_the_executor_is_ready_once_every_session_s_first_attempt_ended() -> None:
    pool = FakePool()
    stage = SimpleNamespace(ctx=SimpleNamespace(pool=pool), sessions_tried=asyncio.Event())
    await connect_sessions(stage, ["f1", "f2"])  # type: ignore[arg-type]  # duck-typed stage
    assert stage.sessions_tried.is_set() and pool.connected == ["f1", "f2"]


async def test_a_session_that_never_answers_keeps_the_executor_out_of_service_only_for_a_bound(
    caplog: pytest.LogCaptureFixture,
) -> None:
    pool = FakePool(hang=True)
    stage = SimpleNamespace(ctx=SimpleNamespace(pool=pool), sessions_tried=asyncio.Event())
    with caplog.at_level(logging.WARNING):
        task = asyncio.ensure_future(connect_sessions(stage, ["f1"], bound_s=0.05))  # type: ignore[arg-type]
        await asyncio.wait_for(stage.sessions_tried.wait(), 5)
    assert not task.done() and pool.connected == []  # the attempt goes on: the pool keeps trying
    assert any("still connecting" in r.getMessage() for r in caplog.records)
    pool.release.set()
    await asyncio.wait_for(task, 5)
    assert pool.connected == ["f1"]

"""The production outbox appends a signal's intent batches (and the executor's outcome
batches) to Faust's producer in one loop turn.

Faust's ``Topic.send`` yields to the loop on every call, so with one send per partition
aiokafka's sender took the first batch alone and the signal's other partitions waited for that
request's answer (a measured 3.6–4.2 produce requests per signal, docs/benchmarks.md). These
tests use a real Faust app and topic with the driver's ``send`` replaced by a recorder (no
Kafka), so the old path — ``topic.send`` per batch — fails them.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from copytrader.agents.execution.router import new_execution
from copytrader.agents.shared.outbox import RECEIPTS, RESENDABLE, TopicOutbox, batch_executions, batch_intents
from copytrader.app.factory import create_app
from copytrader.core.config import parse_config
from copytrader.core.records import Execution, IntentBatch, OrderIntent, executions_of
from copytrader.core.settings import Settings

FOLLOWERS = [f"f{i}" for i in range(1, 21)]


def intents(signal_id: str) -> list[OrderIntent]:
    return [
        OrderIntent(
            client_order_id=f"CT{account}",
            signal_id=signal_id,
            account_id=account,
            platform="paper",
            leader_account="L",
            action="place",
            symbol="ESZ6",
            side="buy",
            quantity=1,
            stamps={"detected": 1.7e9, "fanned_out": 1.7e9},
        )
        for account in FOLLOWERS
    ]


class LoopTurns:
    """Counts the loop's turns: a callback that schedules itself again on every turn."""

    def __init__(self) -> None:
        self.turns = 0
        self._loop = asyncio.get_running_loop()
        self._handle = self._loop.call_soon(self._tick)

    def _tick(self) -> None:
        self.turns += 1
        self._handle = self._loop.call_soon(self._tick)

    def stop(self) -> None:
        self._handle.cancel()


@pytest.fixture
def app(tmp_path: Path) -> Any:
    config = parse_config(
        {
            "sessions": [{"id": "p", "platform": "paper"}],
            "accounts": [{"id": "L", "session": "p"}] + [{"id": a, "session": "p"} for a in FOLLOWERS],
            "copy_groups": [{"leader": "L", "followers": [{"account": a} for a in FOLLOWERS]}],
        },
        env={},
    )
    settings = Settings(
        app_id="intent-produce", kafka_broker="kafka://127.0.0.1:1", data_dir=tmp_path, roles=("fanout",)
    )
    made = create_app(settings, config)
    made.finalize()
    return made


async def started(app: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The app's producer, started as the worker's warm-up starts it (the first
    ``maybe_start_producer``), with ``Service.start`` reduced to what matters here: no Kafka."""
    producer = app.producer

    async def start() -> None:
        producer._started.set()

    monkeypatch.setattr(producer, "start", start)
    assert await app.maybe_start_producer() is producer
    assert producer.started
    return producer


async def test_a_signals_batches_are_appended_in_one_loop_turn(app: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    producer = await started(app, monkeypatch)
    turns = LoopTurns()
    appended: list[tuple[int, str, bytes, bytes, int, Any]] = []
    futures: list[asyncio.Future[Any]] = []

    async def send(topic: str, key: bytes, value: bytes, partition: int, timestamp: Any, headers: Any) -> Any:
        appended.append((turns.turns, topic, key, value, partition, headers))
        sent: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        futures.append(sent)
        return sent

    monkeypatch.setattr(producer, "send", send)
    told: list[tuple[str, int, int]] = []
    completed: list[Any] = []
    sensors = app.sensors
    monkeypatch.setattr(
        sensors, "on_send_initiated", lambda p, topic, message, keysize, valsize: told.append((topic, keysize, valsize))
    )
    monkeypatch.setattr(sensors, "on_send_completed", lambda p, state, metadata: completed.append(metadata))
    outbox = TopicOutbox(app.runtime.topics)
    planned = intents("L:1:new")
    receipts: list[asyncio.Future[Any]] = []
    token = RECEIPTS.set(receipts)  # as the fan-out's consumer collects a signal's deliveries
    try:
        await outbox.intents("L:1:new", planned)
    finally:
        RECEIPTS.reset(token)
        turns.stop()

    expected = batch_intents("L:1:new", planned)
    assert len(expected) > 2  # 20 accounts over 10 partitions: several batches
    assert len({turn for turn, *_ in appended}) == 1  # no loop turn between two appends
    topic = app.runtime.topics.intents
    name = topic.get_topic_name()
    assert [(t, p) for _, t, _, _, p, _ in appended] == [(name, p) for p in expected]
    for (_, _, key, value, _, headers), (_, batch) in zip(appended, expected.items(), strict=True):
        faust_key, _ = topic.prepare_key(batch.batch_id, None)
        assert key == faust_key  # the key Faust's topic.send wrote
        assert value == batch.dumps()  # the bytes Faust's topic.send wrote
        assert IntentBatch.loads(value).intents == batch.intents
        assert headers == []  # what Faust's driver hands aiokafka for no headers
    assert told == [(name, len(k), len(v)) for _, _, k, v, _, _ in appended]
    assert receipts == futures  # every batch's delivery is the consumer's to wait for
    for number, sent in enumerate(futures):
        sent.set_result(number)
    await asyncio.sleep(0)
    assert completed == list(range(len(futures)))  # the sensors hear of each delivery


async def test_a_failed_send_is_reported_to_the_sensors(app: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    await started(app, monkeypatch)
    futures: list[asyncio.Future[Any]] = []

    async def send(*args: Any) -> Any:
        sent: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        futures.append(sent)
        return sent

    monkeypatch.setattr(app.producer, "send", send)
    errors: list[BaseException] = []
    monkeypatch.setattr(app.sensors, "on_send_error", lambda p, exc, state: errors.append(exc))
    await TopicOutbox(app.runtime.topics).intents("L:2:new", intents("L:2:new")[:1])
    futures[0].set_exception(ConnectionError("broker gone"))
    await asyncio.sleep(0)
    assert [str(e) for e in errors] == ["broker gone"]


async def test_topic_send_takes_no_loop_turn_once_the_producer_started(
    app: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every other record (errors, executions, positions) still goes through ``topic.send``.
    ``CopyTraderApp.maybe_start_producer`` skips Faust's stampede wrapper (three
    ``asyncio.sleep(0)`` per send) once the producer runs; the first call — the worker's
    warm-up makes it — used to leave that wrapper in the app's ``__dict__``, where it shadowed
    the method for good."""
    producer = await started(app, monkeypatch)
    await app.maybe_start_producer()
    turns = LoopTurns()
    appended: list[int] = []

    async def send(*args: Any, **kwargs: Any) -> Any:
        appended.append(turns.turns)
        return asyncio.get_running_loop().create_future()

    monkeypatch.setattr(producer, "send", send)
    try:
        for partition in range(3):
            await app.runtime.topics.errors.send(key="f1", value=b"{}", partition=partition)
    finally:
        turns.stop()
    assert len(appended) == 3
    assert len(set(appended)) == 1


def outcomes() -> list[Execution]:
    """A publishing step's executions: each follower's ack and fill, two per account."""
    return [
        new_execution(
            execution_id=f"CT{account}|{kind}",
            account_id=account,
            platform="paper",
            kind=kind,
            client_order_id=f"CT{account}",
            broker_order_id=f"B{account}",
            signal_id="L:1:new",
            symbol="ESZ6",
            side="buy",
            quantity=1,
            price=Decimal("5000.25") if kind == "fill" else None,
            request_outcome=kind == "ack",
            stamps={"detected": 1.7e9, "sent": 1.7e9, "acked": 1.7e9},
            reference_price=Decimal("5000"),
        )
        for account in FOLLOWERS
        for kind in ("ack", "fill")
    ]


async def test_executions_go_to_the_producer_as_faust_would_write_them(
    app: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Same key, value bytes, partition and headers as ``Topic.send`` of each batch, on the
    producer Faust's and the executor's commits flush, in one loop turn; and not through
    ``Topic.send`` (its per-record PendingMessage and FutureMessage are what this saves)."""
    producer = await started(app, monkeypatch)
    topic = app.runtime.topics.executions
    turns = LoopTurns()
    appended: list[tuple[int, str, bytes, bytes, int, Any]] = []

    async def send(topic: str, key: bytes, value: bytes, partition: int, timestamp: Any, headers: Any) -> Any:
        appended.append((turns.turns, topic, key, value, partition, headers))
        sent: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        sent.set_result(len(appended))
        return sent

    async def no_topic_send(**kwargs: Any) -> Any:
        raise AssertionError("Topic.send used")

    monkeypatch.setattr(producer, "send", send)
    monkeypatch.setattr(topic, "send", no_topic_send)
    completed: list[Any] = []
    monkeypatch.setattr(app.sensors, "on_send_completed", lambda p, state, metadata: completed.append(metadata))
    published = outcomes()
    receipts: list[asyncio.Future[Any]] = []
    token = RECEIPTS.set(receipts)
    try:
        await TopicOutbox(app.runtime.topics).executions(published)
    finally:
        RECEIPTS.reset(token)
        turns.stop()

    expected = batch_executions(published)
    assert len(expected) > 2  # 20 accounts over 10 partitions: several batches
    assert len({turn for turn, *_ in appended}) == 1
    name = topic.get_topic_name()
    assert [(t, p) for _, t, _, _, p, _ in appended] == [(name, p) for p, _ in expected]
    for (_, _, key, value, _, headers), (_, batch) in zip(appended, expected, strict=True):
        faust_key, _ = topic.prepare_key(batch.executions[0].account_id, None)
        assert key == faust_key
        assert value == batch.dumps()
        assert executions_of(value) == batch.executions
        assert headers == []
    assert [receipt.result() for receipt in receipts] == list(range(1, len(appended) + 1))  # one per record
    await asyncio.sleep(0)
    assert completed == list(range(1, len(appended) + 1))


async def test_a_resending_collector_gets_each_record_with_a_send_of_the_same_bytes(
    app: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What the executor's deferred outbox needs to send a record Kafka did not take again,
    alone: each delivery future paired with a send of the same topic, key, bytes and
    partition; a send that raises hands the records not appended over as failed sends."""
    producer = await started(app, monkeypatch)
    appended: list[tuple[str, bytes, bytes, int]] = []
    raise_on: set[int] = set()

    async def send(topic: str, key: bytes, value: bytes, partition: int, timestamp: Any, headers: Any) -> Any:
        if len(appended) in raise_on:
            raise_on.discard(len(appended))
            raise ConnectionError("no metadata")
        appended.append((topic, key, value, partition))
        return asyncio.get_running_loop().create_future()

    monkeypatch.setattr(producer, "send", send)
    outbox = TopicOutbox(app.runtime.topics)
    published = outcomes()
    pairs: list[tuple[asyncio.Future[Any], Any]] = []
    token = RESENDABLE.set(pairs)
    try:
        raise_on.add(2)  # the third record's send raises: it and the rest are handed over unsent
        await outbox.executions(published)
        records = len(batch_executions(published))
        assert len(appended) == 2 and len(pairs) == records
        assert all(f.exception() is not None for f, _ in pairs[2:])
        for _, again in list(pairs):
            await again()
    finally:
        RESENDABLE.reset(token)
    topic = app.runtime.topics.executions
    expected = [
        (topic.get_topic_name(), topic.prepare_key(batch.executions[0].account_id, None)[0], batch.dumps(), p)
        for p, batch in batch_executions(published)
    ]
    assert appended == expected[:2] + expected  # every record again: same topic, key, bytes, partition
    assert len(pairs) == 2 * records  # the sends made again are collected too

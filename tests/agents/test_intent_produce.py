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
from aiokafka.errors import MessageSizeTooLargeError

from copytrader.agents.execution.router import new_execution
from copytrader.agents.shared.outbox import (
    EXECUTION_PARTITIONS,
    INTENT_PARTITIONS,
    MAX_RECORD_BYTES,
    RECEIPTS,
    RESENDABLE,
    TopicOutbox,
    batch_errors,
    batch_executions,
    batch_intents,
    encode_intents,
)
from copytrader.app.factory import create_app
from copytrader.common.bounds import MAX_REASON_LEN
from copytrader.core.config import parse_config
from copytrader.core.records import (
    MAX_ERRORS_PER_RECORD,
    Execution,
    IntentBatch,
    OrderError,
    OrderIntent,
    executions_of,
)
from copytrader.core.settings import Settings
from copytrader.core.topics import partition_for

FOLLOWERS = [f"f{i}" for i in range(1, 21)]


def intents(signal_id: str, accounts: list[str] = FOLLOWERS) -> list[OrderIntent]:
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
        for account in accounts
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


# --- records Kafka would refuse ----------------------------------------------------------

#: What aiokafka's producer refuses (``MessageSizeTooLargeError``) with Faust's default
#: ``producer_max_request_size``.
PRODUCER_LIMIT = 1_000_000


def accounts_on_partition(partition: int, count: int, partitions: int) -> list[str]:
    """``count`` account ids that all land on ``partition`` (a crowded partition)."""
    found: list[str] = []
    n = 0
    while len(found) < count:
        n += 1
        if partition_for(f"acct-{n}", partitions) == partition:
            found.append(f"acct-{n}")
    return found


def refusing_send(appended: list[tuple[bytes, bytes, int]]) -> Any:
    """The driver's ``send`` with aiokafka's size check: a record over the limit raises."""

    async def send(topic: str, key: bytes, value: bytes, partition: int, timestamp: Any, headers: Any) -> Any:
        if len(key) + len(value) > PRODUCER_LIMIT:
            raise MessageSizeTooLargeError(f"{len(value)} bytes")
        appended.append((key, value, partition))
        sent: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        sent.set_result(len(appended))
        return sent

    return send


async def test_rejects_with_long_broker_reasons_still_fit_kafkas_records(
    app: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """500 rejects on one partition whose broker reason is 4,000 characters of text that JSON
    escapes (the most a reason may be): one counted batch came to 12.8 MB, which the producer
    refuses every time, and the executor, sending it again forever, committed nothing after it.
    Every record now fits, and together they carry every reject in order."""
    producer = await started(app, monkeypatch)
    appended: list[tuple[bytes, bytes, int]] = []
    monkeypatch.setattr(producer, "send", refusing_send(appended))
    reason = "\u0001" * MAX_REASON_LEN
    published = [
        new_execution(
            execution_id=f"CT{account}|reject",
            account_id=account,
            platform="paper",
            kind="reject",
            client_order_id=f"CT{account}",
            signal_id="L:1:new",
            reason=reason,
            request_outcome=True,
        )
        for account in accounts_on_partition(3, 500, EXECUTION_PARTITIONS)
    ]
    pairs: list[tuple[asyncio.Future[Any], Any]] = []
    token = RESENDABLE.set(pairs)  # as the executor's deferred outbox collects them
    try:
        await TopicOutbox(app.runtime.topics).executions(published)
    finally:
        RESENDABLE.reset(token)
    assert all(sent.exception() is None for sent, _ in pairs)  # nothing for the resend loop
    assert len(appended) > 1 and all(len(value) <= MAX_RECORD_BYTES for _, value, _ in appended)
    assert {partition for *_, partition in appended} == {3}
    assert [e for _, value, _ in appended for e in executions_of(value)] == published


async def test_a_crowded_partition_s_intents_go_in_records_that_fit(app: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Thousands of followers on one ``orders.requests`` partition: the signal's batch for it
    is cut into records Kafka takes (the fan-out would otherwise rewind to this signal for
    ever), each with its own batch id, the intents in order; a partition that fits keeps its
    one record, byte for byte as before."""
    producer = await started(app, monkeypatch)
    appended: list[tuple[bytes, bytes, int]] = []
    monkeypatch.setattr(producer, "send", refusing_send(appended))
    signal_id = "L:" + "s" * 250
    crowded = intents(signal_id, accounts_on_partition(0, 3000, INTENT_PARTITIONS))
    lone = intents(signal_id)[:1]
    await TopicOutbox(app.runtime.topics).intents(signal_id, crowded + lone)

    crowded_records = [value for _, value, partition in appended if partition == 0]
    assert len(crowded_records) > 1 and all(len(value) <= MAX_RECORD_BYTES for value in crowded_records)
    batches = [IntentBatch.loads(value) for value in crowded_records]
    assert [i.client_order_id for b in batches for i in b.intents] == [i.client_order_id for i in crowded]
    assert [b.batch_id for b in batches] == [f"{signal_id}|p0.{n}" for n in range(len(batches))]
    lone_partition = partition_for(lone[0].account_id, INTENT_PARTITIONS)
    assert [value for _, value, p in appended if p == lone_partition] == [
        encode_intents(f"{signal_id}|p{lone_partition}", lone)
    ]


def test_errors_are_cut_to_fit_a_record() -> None:
    """A broker's words in an error (its reason, an answer nobody could read) are cut as an
    execution's reason is, and a partition's errors go in records that fit."""
    error = OrderError(
        error_id="x|execute", stage="execute", reason="\u0001" * 100_000, payload="\u0001" * 9_000, account_id="a"
    )
    assert len(error.reason) == len(error.payload or "") == MAX_REASON_LEN
    assert error.reason.endswith("…")
    batches = batch_errors([error] * MAX_ERRORS_PER_RECORD)
    assert len(batches) > 1 and all(len(batch.dumps()) <= MAX_RECORD_BYTES for _, batch in batches)
    assert sum(len(batch.errors) for _, batch in batches) == MAX_ERRORS_PER_RECORD

"""The direct intent consumer's bookkeeping: only finished offsets are ever committed."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from types import SimpleNamespace
from typing import Any, cast

import pytest
from aiokafka import TopicPartition
from aiokafka.structs import ConsumerRecord
from waiting import wait_until

from copytrader.agents.execution.agent import report_unreadable
from copytrader.agents.execution.intent_consumer import DirectIntentConsumer, PartitionProgress
from copytrader.agents.shared.deferred_outbox import DeferredOutbox
from copytrader.agents.shared.outbox import MemoryOutbox
from copytrader.core.records import IntentBatch, OrderError, OrderIntent
from copytrader.core.settings import Settings

TP0 = TopicPartition("orders.requests", 0)
TP1 = TopicPartition("orders.requests", 1)


def test_commit_point_stops_at_the_lowest_unfinished_offset() -> None:
    progress = PartitionProgress()
    for offset in (5, 6, 7):
        progress.started(TP0, offset)
    progress.finished(TP0, 6)
    progress.finished(TP0, 7)
    assert progress.commit_points() == {TP0: 5}  # 5 still runs: 6 and 7 wait behind it
    progress.finished(TP0, 5)
    assert progress.commit_points() == {TP0: 8}
    progress.committed({TP0: 8})
    assert progress.commit_points() == {}  # nothing moved since the last commit


def test_partitions_are_independent_and_forgotten_on_revocation() -> None:
    progress = PartitionProgress()
    progress.started(TP0, 0)
    progress.started(TP1, 10)
    progress.finished(TP1, 10)
    assert progress.commit_points() == {TP0: 0, TP1: 11}
    assert progress.in_flight() == 1 and progress.in_flight({TP1}) == 0
    progress.forget({TP0})
    assert progress.commit_points() == {TP1: 11}
    progress.finished(TP0, 0)  # a late finish of a revoked partition is harmless
    assert progress.in_flight() == 0


def intent(account: str) -> OrderIntent:
    return OrderIntent(
        client_order_id=f"s1|{account}",
        signal_id="s1",
        account_id=account,
        platform="paper",
        leader_account="L",
        action="place",
        symbol="ESZ6",
        side="buy",
        quantity=1,
    )


def record(offset: int, value: bytes) -> ConsumerRecord:
    return ConsumerRecord(
        topic=TP0.topic,
        partition=0,
        offset=offset,
        timestamp=0,
        timestamp_type=0,
        key=b"k",
        value=value,
        checksum=None,
        serialized_key_size=1,
        serialized_value_size=len(value),
        headers=(),
    )


async def test_dispatch_hands_batches_over_and_finishes_their_offsets_when_done() -> None:
    submitted: list[tuple[IntentBatch, Callable[[], Awaitable[object]]]] = []
    consumer = DirectIntentConsumer(TP0.topic, "127.0.0.1:1", "g", submit=lambda b, d, r: submitted.append((b, d)))
    batch = IntentBatch(batch_id="s1|p0", intents=[intent("f1"), intent("f2")])
    consumer._dispatch(TP0, record(3, batch.dumps()))
    consumer._dispatch(TP0, record(4, b"\xff not json"))  # poison: skipped, must not block the partition
    assert [b.batch_id for b, _ in submitted] == ["s1|p0"]
    assert consumer.progress.commit_points() == {TP0: 3}
    await submitted[0][1]()
    assert consumer.progress.commit_points() == {TP0: 5}


async def test_an_unreadable_record_is_reported_and_passed_only_once_the_report_is_out() -> None:
    """Its copies cannot be made: the executor says so on ``order.errors`` (not only in its
    log), and the offset waits for that report, as an intent's waits for its outcome."""
    reported: list[tuple[ConsumerRecord, Exception, Callable[[], Awaitable[object]]]] = []
    consumer = DirectIntentConsumer(
        TP0.topic,
        "127.0.0.1:1",
        "g",
        submit=lambda b, d, r: None,
        unreadable=lambda rec, exc, done: reported.append((rec, exc, done)),
    )
    consumer._dispatch(TP0, record(7, b"\xff not json"))
    assert [(rec.offset, rec.value) for rec, _, _ in reported] == [(7, b"\xff not json")]
    assert consumer.progress.commit_points() == {TP0: 7}  # not passed before the report is out
    await reported[0][2]()
    assert consumer.progress.commit_points() == {TP0: 8}


async def test_the_executor_reports_an_unreadable_intent_record_on_order_errors() -> None:
    outbox = MemoryOutbox()
    stage = SimpleNamespace(router=SimpleNamespace(outbox=DeferredOutbox(outbox)))
    passed: list[int] = []

    async def done() -> None:
        passed.append(9)

    report_unreadable(cast(Any, stage), record(9, b"\xff not json"), ValueError("not JSON"), done)
    await stage.router.outbox.delivered()
    await asyncio.sleep(0)
    (error,) = outbox.sent["error"]
    assert isinstance(error, OrderError)
    assert (error.stage, error.code) == ("execute", "BAD_RECORD")
    assert "orders.requests" in error.reason and "not JSON" in error.reason
    assert error.payload == "\ufffd not json"
    assert passed == [9]


async def test_a_batch_whose_intent_breaks_a_bound_is_skipped_not_raised() -> None:
    """Faust validates nested intents only when they are first read: the read happens inside
    the poison-record guard, so a hostile intent never reaches the lanes or stops the fetch."""
    submitted: list[IntentBatch] = []
    consumer = DirectIntentConsumer(TP0.topic, "127.0.0.1:1", "g", submit=lambda b, d, r: submitted.append(b))
    hostile = json.loads(IntentBatch(batch_id="bad", intents=[intent("f1")]).dumps())
    hostile["intents"][0]["quantity"] = -5
    consumer._dispatch(TP0, record(0, json.dumps(hostile).encode()))
    consumer._dispatch(TP0, record(1, IntentBatch(batch_id="good", intents=[intent("f2")]).dumps()))
    assert [b.batch_id for b in submitted] == ["good"]
    assert consumer.progress.commit_points() == {TP0: 1}  # the hostile one is finished (skipped)


async def test_fetching_pauses_while_too_many_batches_are_in_flight() -> None:
    done: list[Callable[[], Awaitable[object]]] = []
    consumer = DirectIntentConsumer(
        TP0.topic, "127.0.0.1:1", "g", submit=lambda b, d, r: done.append(d), max_in_flight=4
    )
    payload = IntentBatch(batch_id="b", intents=[intent("f1")]).dumps()
    for offset in range(4):
        consumer._dispatch(TP0, record(offset, payload))
    assert not consumer._room.is_set()
    await done[0]()
    assert not consumer._room.is_set()  # resumes at half the limit, not at the first finish
    await done[1]()
    await done[2]()
    assert consumer._room.is_set()
    await asyncio.sleep(0)


async def test_fetching_pauses_on_the_intents_in_flight_not_the_batches() -> None:
    """At 1,000 followers a batch holds a hundred intents: the limit is on what memory holds."""
    done: list[Callable[[], Awaitable[object]]] = []
    consumer = DirectIntentConsumer(
        TP0.topic, "127.0.0.1:1", "g", submit=lambda b, d, r: done.append(d), max_in_flight=10
    )
    wide = IntentBatch(batch_id="w", intents=[intent(f"f{n}") for n in range(6)]).dumps()
    consumer._dispatch(TP0, record(0, wide))
    assert consumer._room.is_set() and consumer.progress.intents_in_flight() == 6
    consumer._dispatch(TP0, record(1, wide))  # 12 intents in two batches: over the limit of 10
    assert not consumer._room.is_set()
    await done[0]()
    assert not consumer._room.is_set()  # 6 intents left: resumes only below half the limit
    await done[1]()
    assert consumer._room.is_set() and consumer.progress.intents_in_flight() == 0
    await asyncio.sleep(0)


def test_forgetting_a_partition_forgets_its_intents() -> None:
    progress = PartitionProgress()
    progress.started(TP0, 0, 5)
    progress.started(TP1, 0, 3)
    progress.forget({TP0})
    assert progress.intents_in_flight() == 3
    progress.finished(TP0, 0)  # a late finish of a revoked partition changes nothing
    progress.finished(TP1, 0)
    assert progress.intents_in_flight() == 0


def test_executor_consumer_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("COPYTRADER_EXECUTOR_CONSUMER", raising=False)
    assert Settings.from_env().executor_consumer == "direct"
    monkeypatch.setenv("COPYTRADER_EXECUTOR_CONSUMER", "faust")
    assert Settings.from_env().executor_consumer == "faust"
    monkeypatch.setenv("COPYTRADER_EXECUTOR_CONSUMER", "thread")
    with pytest.raises(ValueError, match="EXECUTOR_CONSUMER"):
        Settings.from_env()


def test_the_brokers_append_time_travels_with_the_batch() -> None:
    submitted: list[IntentBatch] = []
    consumer = DirectIntentConsumer(TP0.topic, "127.0.0.1:1", "g", submit=lambda b, d, r: submitted.append(b))
    payload = IntentBatch(batch_id="b", intents=[intent("f1")]).dumps()
    appended = ConsumerRecord(
        topic=TP0.topic,
        partition=0,
        offset=0,
        timestamp=1_795_000_000_123,
        timestamp_type=1,
        key=b"k",
        value=payload,
        checksum=None,
        serialized_key_size=1,
        serialized_value_size=len(payload),
        headers=(),
    )
    consumer._dispatch(TP0, appended)
    consumer._dispatch(TP0, record(1, payload))  # CreateTime: the producer's clock, not the broker's
    assert [b.appended for b in submitted] == [1_795_000_000.123, None]


class _Fetcher:
    def __init__(self) -> None:
        self._in_flight: set[int] = set()


class _Consumer:
    """Stands in for aiokafka: the next fetch request goes out two loop turns after a take."""

    def __init__(self, fetched: dict[TopicPartition, list[ConsumerRecord]]) -> None:
        self._fetcher = _Fetcher()
        self._fetched = fetched

    async def getmany(self, timeout_ms: int) -> dict[TopicPartition, list[ConsumerRecord]]:
        if not self._fetched:
            await asyncio.sleep(3600)
        fetched, self._fetched = self._fetched, {}
        asyncio.get_running_loop().call_soon(asyncio.get_running_loop().call_soon, self._fetcher._in_flight.add, 1)
        return fetched


async def test_batches_are_handed_to_the_lanes_only_after_the_next_fetch_went_out() -> None:
    seen_in_flight: list[bool] = []
    consumer = DirectIntentConsumer(
        TP0.topic, "127.0.0.1:1", "g", submit=lambda b, d, r: seen_in_flight.append(bool(fake._fetcher._in_flight))
    )
    payload = IntentBatch(batch_id="b", intents=[intent("f1")]).dumps()
    fake = _Consumer({TP0: [record(0, payload), record(1, payload)]})
    consumer._consumer = fake  # type: ignore[assignment]  # the fetch loop only calls getmany
    task = asyncio.ensure_future(consumer._fetch_loop())
    await wait_until(lambda: len(seen_in_flight) >= 2, timeout_s=5, what="both batches handed to the lanes")
    task.cancel()
    assert seen_in_flight == [True, True]


class _LagConsumer:
    def assignment(self) -> set[TopicPartition]:
        return {TP0, TP1}

    def highwater(self, tp: TopicPartition) -> int | None:
        return {TP0: 10, TP1: None}[tp]  # TP1: no fetch answered yet


def test_lag_is_what_the_broker_has_beyond_what_went_to_the_lanes() -> None:
    consumer = DirectIntentConsumer(TP0.topic, "127.0.0.1:1", "g", submit=lambda b, d, r: None)
    assert consumer.lags() == {}  # not started
    consumer._consumer = _LagConsumer()  # type: ignore[assignment]  # only assignment/highwater are read
    assert consumer.lags() == {}  # nothing handed out yet: no position to measure from
    payload = IntentBatch(batch_id="b", intents=[intent("f1")]).dumps()
    for offset in (6, 7):
        consumer._dispatch(TP0, record(offset, payload))
    assert consumer.lags() == {TP0: 2}  # offsets 8 and 9 are still on the broker


class _AssignConsumer:
    """aiokafka's end offsets at assignment, its high watermark, and commits (recorded)."""

    def __init__(self, ends: dict[TopicPartition, int] | Exception, calls: list[str]) -> None:
        self._ends = ends
        self.calls = calls

    async def end_offsets(self, tps: list[TopicPartition]) -> dict[TopicPartition, int]:
        if isinstance(self._ends, Exception):
            raise self._ends
        return {tp: self._ends[tp] for tp in tps}

    def highwater(self, tp: TopicPartition) -> int | None:
        return 9

    def assignment(self) -> set[TopicPartition]:
        return {TP0, TP1}

    async def commit(self, offsets: dict[TopicPartition, object]) -> None:
        self.calls.append("commit")


async def test_records_written_before_the_assignment_are_handed_on_as_redelivered() -> None:
    flags: list[tuple[int, bool]] = []
    consumer = DirectIntentConsumer(TP0.topic, "127.0.0.1:1", "g", submit=lambda b, d, r: flags.append((len(flags), r)))
    consumer._consumer = _AssignConsumer({TP0: 5, TP1: 0}, [])  # type: ignore[assignment]  # the listener's calls only
    payload = IntentBatch(batch_id="b", intents=[intent("f1")]).dumps()
    consumer._dispatch(TP1, record(0, payload))  # before the assignment is announced: assume the worst
    await consumer.on_partitions_assigned([TP0, TP1])
    for offset in (3, 4, 5, 6):
        consumer._dispatch(TP0, record(offset, payload))
    consumer._dispatch(TP1, record(0, payload))
    assert [r for _, r in flags] == [True, True, True, False, False, False]
    await consumer.on_partitions_revoked([TP0])
    consumer._dispatch(TP0, record(7, payload))  # no longer ours: a new assignment decides again
    assert flags[-1][1] is True


async def test_unknown_end_offsets_fall_back_to_the_high_watermark() -> None:
    from aiokafka.errors import KafkaTimeoutError

    flags: list[bool] = []
    consumer = DirectIntentConsumer(TP0.topic, "127.0.0.1:1", "g", submit=lambda b, d, r: flags.append(r))
    consumer._consumer = _AssignConsumer(KafkaTimeoutError(), [])  # type: ignore[assignment]  # as above
    await consumer.on_partitions_assigned([TP0])
    payload = IntentBatch(batch_id="b", intents=[intent("f1")]).dumps()
    for offset in (8, 9):
        consumer._dispatch(TP0, record(offset, payload))
    assert flags == [True, False]  # the high watermark (9) stands in: later, so never fewer lookups


async def test_the_producer_is_flushed_before_every_commit() -> None:
    calls: list[str] = []

    async def flush() -> None:
        calls.append("flush")

    consumer = DirectIntentConsumer(TP0.topic, "127.0.0.1:1", "g", submit=lambda b, d, r: None, before_commit=flush)
    consumer._consumer = _AssignConsumer({TP0: 0}, calls)  # type: ignore[assignment]  # as above
    payload = IntentBatch(batch_id="b", intents=[intent("f1")]).dumps()
    consumer._dispatch(TP0, record(0, payload))
    consumer._finished(TP0, 0)
    await consumer._commit(None)
    assert calls == ["flush", "commit"]

    async def broken() -> None:
        raise RuntimeError("producer stopped")

    consumer.before_commit = broken
    consumer._dispatch(TP0, record(1, payload))
    consumer._finished(TP0, 1)
    await consumer._commit(None)
    assert calls == ["flush", "commit"]  # no commit ahead of outcomes that may not be written


def test_adopt_offsets_from_is_a_list_of_consumer_group_ids(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("COPYTRADER_ADOPT_OFFSETS_FROM", raising=False)
    assert Settings.from_env().adopt_offsets_from == ()
    monkeypatch.setenv("COPYTRADER_ADOPT_OFFSETS_FROM", "copytrader.executor, copytrader")
    assert Settings.from_env().adopt_offsets_from == ("copytrader.executor", "copytrader")
    for bad in ("copy trader", "x" * 250, "a,b/c"):
        monkeypatch.setenv("COPYTRADER_ADOPT_OFFSETS_FROM", bad)
        with pytest.raises(ValueError, match="ADOPT_OFFSETS_FROM"):
            Settings.from_env()


async def test_background_work_waits_for_the_copies_in_flight_then_goes_ahead() -> None:
    """``copies_first`` returns at once while nothing is in flight, waits while a batch's
    copies run, and goes ahead after its bound under a steady stream of copies."""
    done: list[Callable[[], Awaitable[object]]] = []
    consumer = DirectIntentConsumer(TP0.topic, "127.0.0.1:1", "g", submit=lambda b, d, r: done.append(d))
    await asyncio.wait_for(consumer.copies_first(), 0.1)  # idle: no wait
    consumer._dispatch(TP0, record(0, IntentBatch(batch_id="b", intents=[intent("f1")]).dumps()))
    waiting = asyncio.ensure_future(consumer.copies_first(max_wait_s=5.0))
    await asyncio.sleep(0.05)
    assert not waiting.done()
    await done[0]()
    await asyncio.wait_for(waiting, 0.5)
    consumer._dispatch(TP0, record(1, IntentBatch(batch_id="c", intents=[intent("f2")]).dumps()))
    loop = asyncio.get_running_loop()
    began = loop.time()
    await consumer.copies_first(max_wait_s=0.1)  # still in flight: goes ahead after the bound
    assert 0.08 <= loop.time() - began < 1.0

"""The fan-out's direct ``trade.signals`` consumer without Kafka: a signal's offset is committed
only once every record it sent was acknowledged, and the wiring picks the consumer by setting."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

import pytest
from aiokafka import TopicPartition
from aiokafka.structs import ConsumerRecord

from copytrader.agents.fanout.agent import FanoutStage
from copytrader.agents.fanout.signal_consumer import DirectSignalConsumer, SignalProgress, _report_crash
from copytrader.agents.fanout.warmup import warm_positions
from copytrader.agents.shared.outbox import RECEIPTS, MemoryOutbox, note_receipt
from copytrader.app.factory import create_app
from copytrader.core import ids
from copytrader.core.config import parse_config
from copytrader.core.records import OrderIntent, TradeSignal
from copytrader.core.settings import Settings

TP0 = TopicPartition("trade.signals", 0)
TP1 = TopicPartition("trade.signals", 1)
CONFIG = {
    "sessions": [{"id": "p", "platform": "paper", "options": {"tick_ms": 0, "venue": "signal-consumer-test"}}],
    "accounts": [{"id": "L", "session": "p"}, {"id": "f1", "session": "p"}, {"id": "f2", "session": "p"}],
    "copy_groups": [{"leader": "L", "followers": [{"account": "f1"}, {"account": "f2", "rule": {"multiplier": 3}}]}],
}


def future() -> asyncio.Future[Any]:
    return asyncio.get_running_loop().create_future()


async def test_the_commit_point_waits_for_every_receipt_of_a_signal() -> None:
    progress = SignalProgress()
    first, second = progress.started(TP0, 5), progress.started(TP0, 6)
    intents, error = future(), future()
    first.receipts += [intents, error]
    first.handled = second.handled = True
    assert progress.settle() == ({TP0: 5}, {})  # 5's records are still out: 6 waits behind it
    intents.set_result(None)
    assert progress.settle() == ({TP0: 5}, {})  # one of two acknowledged is not enough
    error.set_result(None)
    assert progress.settle() == ({TP0: 7}, {})
    progress.committed({TP0: 7})
    assert progress.settle() == ({}, {})  # nothing moved since the last commit


async def test_a_signal_still_being_handled_holds_its_partition_only() -> None:
    progress = SignalProgress()
    progress.started(TP0, 0)  # not handled yet: its sends may still come
    progress.started(TP1, 3).handled = True
    assert progress.settle() == ({TP0: 0, TP1: 4}, {})
    assert progress.in_flight() == 1 and progress.in_flight({TP1}) == 0


async def test_a_failed_send_reports_its_signal_and_a_rewind_forgets_what_followed() -> None:
    progress = SignalProgress()
    failed = future()
    failed.set_exception(ConnectionError("broker away"))
    for offset in (0, 1, 2):
        progress.started(TP0, offset).handled = True
    progress._pending[TP0][1].receipts.append(failed)
    assert progress.settle() == ({TP0: 1}, {TP0: 1})  # 0 is done; 1 failed and holds the point
    progress.rewind(TP0, 1)
    assert progress.position(TP0) == 1 and progress.in_flight() == 0
    cancelled = future()
    cancelled.cancel()  # the producer stopped with the record queued: not written either
    progress.started(TP0, 1).receipts.append(cancelled)
    assert progress.settle()[1] == {TP0: 1}


def record(offset: int, value: bytes, partition: int = 0) -> ConsumerRecord:
    return ConsumerRecord(
        topic=TP0.topic,
        partition=partition,
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


async def test_what_the_handler_sends_is_collected_for_its_signal_only() -> None:
    receipts: dict[bytes, asyncio.Future[Any]] = {}

    async def handle(payload: bytes) -> None:
        receipts[payload] = future()
        note_receipt(receipts[payload])  # as TopicOutbox does for each send

    consumer = DirectSignalConsumer(TP0.topic, "127.0.0.1:1", "g", handle)
    await consumer._handle(TP0, record(0, b"a"))
    await consumer._handle(TP0, record(1, b"b"))
    note_receipt(future())  # a send outside any signal's handling belongs to none
    assert RECEIPTS.get() is None
    assert consumer.progress.settle()[0] == {TP0: 0}
    receipts[b"b"].set_result(None)
    assert consumer.progress.settle()[0] == {TP0: 0}  # b is acknowledged, a is not
    receipts[b"a"].set_result(None)
    assert consumer.progress.settle()[0] == {TP0: 2}


async def test_a_handler_that_raises_is_handled_again_from_its_offset() -> None:
    async def handle(payload: bytes) -> None:
        if payload == b"bad":
            raise RuntimeError("producer not started")

    consumer = DirectSignalConsumer(TP0.topic, "127.0.0.1:1", "g", handle)
    await consumer._handle(TP0, record(0, b"ok"))
    await consumer._handle(TP0, record(1, b"bad"))
    assert consumer._rewinds == {TP0: 1}
    assert consumer.progress.settle() == ({TP0: 1}, {TP0: 1})  # never past the one that raised


def signal_bytes(**kw: object) -> bytes:
    base: dict[str, object] = dict(
        signal_id=ids.signal_id("L", "1", "new", 1),
        leader_account="L",
        platform="paper",
        symbol="ESZ6",
        side="buy",
        quantity=2,
        kind="new",
        leader_order_id="1",
        stamps={"detected": 1.0},
    )
    return TradeSignal(**{**base, **kw}).dumps()


def build(tmp_path: Path, consumer: str, outbox: MemoryOutbox | None = None, app_id: str | None = None) -> Any:
    settings = Settings(
        app_id=app_id or f"fanout-{uuid.uuid4().hex[:8]}",
        kafka_broker="kafka://127.0.0.1:1",
        data_dir=tmp_path,
        roles=("fanout",),
        fanout_consumer=consumer,
        adopt_offsets_from=("old-front",),
    )
    return create_app(settings, parse_config(CONFIG, env={}), outbox=outbox or MemoryOutbox())


async def test_the_direct_consumer_hands_signals_to_the_same_fan_out(tmp_path: Path) -> None:
    """What the Faust agent's tests check (tests/agents/test_agents.py), through the direct path."""
    outbox = MemoryOutbox()
    app = build(tmp_path, "direct", outbox)
    stage: FanoutStage = app.runtime.fanout
    consumer = stage.signal_consumer
    assert consumer is not None
    await consumer._handle(TP0, record(0, signal_bytes()))
    await consumer._handle(TP0, record(1, b"\xff garbage"))
    intents: list[OrderIntent] = outbox.sent["intent"]  # type: ignore[assignment]  # MemoryOutbox keeps records
    assert {(i.account_id, i.quantity, i.action) for i in intents} == {("f1", 2, "place"), ("f2", 6, "place")}
    assert [e.code for e in outbox.sent["error"]] == ["MALFORMED"]  # type: ignore[attr-defined]
    assert consumer.progress.settle()[0] == {TP0: 2}  # nothing sent to Kafka: nothing to wait for


async def test_the_worker_collects_garbage_only_while_no_signal_is_handled(tmp_path: Path) -> None:
    app = build(tmp_path, "direct")
    consumer = app.runtime.fanout.signal_consumer
    assert app.runtime.busy == [consumer.busy]  # what the worker's IdleCollector asks
    seen: list[bool] = []

    async def handle(payload: bytes) -> None:
        seen.append(consumer.busy())

    consumer.handle = handle
    assert not consumer.busy()
    await consumer._handle(TP0, record(0, signal_bytes()))
    assert seen == [True] and not consumer.busy()


def test_the_fan_out_consumes_directly_by_default_in_a_group_of_its_own(tmp_path: Path) -> None:
    app = build(tmp_path, "direct", app_id="front")
    consumer = app.runtime.fanout.signal_consumer
    assert "fanout" not in app.agents
    assert consumer.group_id == "front.fanout"  # Faust's assignor would refuse it in "front"
    assert consumer.adopt_offsets_from == ("old-front", "front")  # then the Faust agent's group
    assert consumer.assignment in app.runtime.assignments and consumer.lags in app.runtime.lags
    assert app.runtime.shutdown_hooks[0] == consumer.stop  # while the producer still runs
    assert "fanout: trade.signals positions" in [name for name, _ in app.runtime.warmup.steps]


def test_the_faust_agent_stays_behind_the_setting(tmp_path: Path) -> None:
    app = build(tmp_path, "faust")
    assert "fanout" in app.agents and app.runtime.fanout.signal_consumer is None
    assert "fanout: trade.signals positions" not in [name for name, _ in app.runtime.warmup.steps]
    assert app.runtime.settings.faust_consumer_on_copy_path


def test_fanout_consumer_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("COPYTRADER_FANOUT_CONSUMER", raising=False)
    assert Settings.from_env().fanout_consumer == "direct"
    monkeypatch.setenv("COPYTRADER_FANOUT_CONSUMER", "faust")
    assert Settings.from_env().fanout_consumer == "faust"
    monkeypatch.setenv("COPYTRADER_FANOUT_CONSUMER", "thread")
    with pytest.raises(ValueError, match="FANOUT_CONSUMER"):
        Settings.from_env()


class FakeSignalConsumer:
    def __init__(self) -> None:
        self.assigned: set[TopicPartition] = set()
        self.positions: list[TopicPartition] = []
        self.consumer = self

    def assignment(self) -> set[TopicPartition]:
        return self.assigned

    async def position(self, tp: TopicPartition) -> int:
        self.positions.append(tp)
        return 0


async def test_the_fan_out_resolves_a_position_on_every_assigned_partition_once_assigned() -> None:
    consumer = FakeSignalConsumer()
    task = asyncio.ensure_future(warm_positions(consumer))  # type: ignore[arg-type]  # duck-typed consumer
    await asyncio.sleep(0.1)
    assert not task.done()  # nothing assigned yet: it waits
    consumer.assigned = {TopicPartition("pre.trade.signals", p) for p in (2, 0)}
    assert await asyncio.wait_for(task, 5) == 2
    assert [tp.partition for tp in consumer.positions] == [0, 2]


async def test_a_loop_that_dies_says_so_at_once(caplog: pytest.LogCaptureFixture) -> None:
    async def broken() -> None:
        raise RuntimeError("decoder state lost")

    task = asyncio.ensure_future(broken())
    task.add_done_callback(_report_crash)
    await asyncio.gather(task, return_exceptions=True)
    await asyncio.sleep(0)  # done callbacks run on the next loop turn
    assert any(r.levelname == "CRITICAL" and "decoder state lost" in r.getMessage() for r in caplog.records)


async def test_the_next_signal_is_planned_once_the_last_ones_records_left_the_producer() -> None:
    """A cancel and a flatten published together: the flatten is planned only once the
    cancel's intents are on their way (the producer's sender took them), not while they wait
    in the producer behind the planning (#16); at most a few loop turns."""
    held = [True, True, False]  # the producer holds the first signal's records for two checks
    handled: list[tuple[bytes, int]] = []

    def records_waiting() -> bool:
        return held.pop(0) if held else False

    async def handle(payload: bytes) -> None:
        handled.append((payload, len(held)))

    consumer = DirectSignalConsumer(TP0.topic, "127.0.0.1:1", "g", handle, records_waiting=records_waiting)
    await consumer._handle(TP0, record(0, b"cancel"))
    await consumer._handle(TP0, record(1, b"flatten"))
    assert handled == [(b"cancel", 3), (b"flatten", 0)]  # every check was made before the flatten

    always: list[int] = []

    def never_taken() -> bool:
        always.append(1)
        return True

    stuck = DirectSignalConsumer(TP0.topic, "127.0.0.1:1", "g", handle, records_waiting=never_taken)
    await asyncio.wait_for(stuck._handle(TP0, record(2, b"new")), 1.0)  # bounded: a stuck producer holds nothing up
    assert len(always) == 4

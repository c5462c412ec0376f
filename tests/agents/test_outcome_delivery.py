"""An ``orders.requests`` offset is committed only once Kafka acknowledged the intent's outcome.

The executor flushes the producer before it commits, but Faust's and aiokafka's ``flush`` return
normally when a send failed: the failure is only in that send's delivery future. These tests run
the real executor (direct consumer, lanes, paper broker, deferred outbox, ``TopicOutbox``) over
a Faust producer whose ``send`` hands back futures the test resolves and whose ``flush`` returns
at once, and a Kafka consumer that records commits. Before the fix the offset was committed
past an ack Kafka never took, and the ack was never sent again.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from aiokafka import TopicPartition
from aiokafka.errors import KafkaTimeoutError
from aiokafka.structs import ConsumerRecord
from waiting import wait_until

from copytrader.app.factory import CopyTraderApp, create_app
from copytrader.brokers.paper.adapter import reset_venues
from copytrader.core.config import parse_config
from copytrader.core.records import IntentBatch, OrderIntent, executions_of
from copytrader.core.settings import Settings

FOLLOWERS = ["f1", "f2"]
TOPIC = "outcome-delivery.orders.requests"
TP0 = TopicPartition(TOPIC, 0)


class Committing:
    """aiokafka's consumer as the intent consumer's commit path sees it: commits recorded."""

    def __init__(self) -> None:
        self.commits: list[int] = []

    def assignment(self) -> set[TopicPartition]:
        return {TP0}

    def highwater(self, tp: TopicPartition) -> int | None:
        return None

    async def commit(self, offsets: dict[TopicPartition, Any]) -> None:
        self.commits.append(offsets[TP0].offset)


class Producer:
    """Faust's producer with no Kafka: every send is recorded with its delivery future, which
    the test resolves; ``flush`` returns normally whatever became of the sends."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes, bytes, int, asyncio.Future[Any]]] = []
        self.flushes = 0

    async def send(self, topic: str, key: bytes, value: bytes, partition: int, timestamp: Any, headers: Any) -> Any:
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.sent.append((topic, key, value, partition, future))
        return future

    async def flush(self) -> None:
        self.flushes += 1

    def acks(self) -> list[tuple[str, bytes, bytes, int, asyncio.Future[Any]]]:
        """The ``trade.executions`` records holding a request outcome (an ack)."""
        return [s for s in self.sent if any(e.request_outcome for e in executions_of(s[2]))]


@pytest.fixture
def app(tmp_path: Path) -> Any:
    reset_venues()
    config = parse_config(
        {
            "sessions": [{"id": "p", "platform": "paper", "options": {"tick_ms": 0, "venue": "outcome-delivery"}}],
            "accounts": [{"id": "L", "session": "p"}] + [{"id": a, "session": "p"} for a in FOLLOWERS],
            "copy_groups": [{"leader": "L", "followers": [{"account": a} for a in FOLLOWERS]}],
        },
        env={},
    )
    settings = Settings(
        app_id="outcome-delivery",
        kafka_broker="kafka://127.0.0.1:1",
        data_dir=tmp_path,
        roles=("execute",),
        topic_prefix="outcome-delivery.",
    )
    made = create_app(settings, config)
    made.finalize()
    yield made
    reset_venues()


def intent(account: str, n: int) -> OrderIntent:
    return OrderIntent(
        client_order_id=f"CT{n}{account}",
        signal_id=f"L:{n}:new",
        account_id=account,
        platform="paper",
        leader_account="L",
        action="place",
        symbol="ESZ6",
        side="buy",
        quantity=1,
        order_type="limit",
        limit_price="4000",  # far below the market: no fill, the ack is the outcome
    )


def record(offset: int, batch: IntentBatch) -> ConsumerRecord:
    value = batch.dumps()
    return ConsumerRecord(
        topic=TOPIC,
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


async def running(app: CopyTraderApp, monkeypatch: pytest.MonkeyPatch) -> tuple[Any, Producer, Committing]:
    """The executor's stage with the fake producer and Kafka consumer in place."""
    producer = Producer()
    faust_producer = app.producer

    async def start() -> None:
        faust_producer._started.set()

    monkeypatch.setattr(faust_producer, "start", start)
    monkeypatch.setattr(faust_producer, "send", producer.send)
    monkeypatch.setattr(faust_producer, "flush", producer.flush)
    stage = app.runtime.execution  # type: ignore[attr-defined]  # the runtime the factory built
    stage.router.outbox.retry_s = 0.05
    consumer = stage.intent_consumer
    assert consumer is not None
    kafka = Committing()
    consumer._consumer = kafka
    consumer._assigned_end[TP0] = 0  # assigned empty: every intent is fresh
    return stage, producer, kafka


async def test_no_commit_past_an_ack_kafka_did_not_take_and_the_ack_is_sent_again(
    app: CopyTraderApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    stage, producer, kafka = await running(app, monkeypatch)
    consumer = stage.intent_consumer
    try:
        consumer._dispatch(TP0, record(0, IntentBatch(batch_id="b0", intents=[intent(a, 0) for a in FOLLOWERS])))
        await wait_until(
            lambda: sum(len(executions_of(s[2])) for s in producer.acks()) == len(FOLLOWERS),
            timeout_s=5,
            what="both followers' acks sent",
        )
        first = producer.acks()
        failed = first[0]
        failed[4].set_exception(KafkaTimeoutError("batch expired"))  # the producer gave up on it
        for other in first[1:]:
            other[4].set_result(None)
        await asyncio.sleep(0.01)
        await consumer._commit(None)
        assert producer.flushes >= 1  # the flush ran and returned normally
        assert all(c == 0 for c in kafka.commits)  # nothing committed past offset 0 (its ack is lost)

        # The lost ack goes out again: the same topic, key, bytes and partition; until Kafka takes
        # it, offset 0 stays uncommitted.
        again = await wait_until(
            lambda: [s for s in producer.acks() if s[4] is not failed[4] and s[:4] == failed[:4]],
            timeout_s=5,
            what="the failed ack sent again",
        )
        assert len(producer.acks()) == len(first) + 1  # only the failed record, not the acknowledged ones
        await consumer._commit(None)
        assert all(c == 0 for c in kafka.commits)
        again[0][4].set_result(None)
        await wait_until(lambda: consumer.progress.commit_points() == {TP0: 1}, timeout_s=5, what="offset 0 finished")
        await consumer._commit(None)
        assert kafka.commits[-1] == 1
    finally:
        await stage.router.outbox.close()
        await stage.lanes.close()
        await stage.ctx.pool.close()


async def test_a_later_intent_does_not_carry_the_commit_past_an_unacknowledged_earlier_one(
    app: CopyTraderApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Offset 1's ack acknowledged, offset 0's still failing: the commit point stays at 0."""
    stage, producer, kafka = await running(app, monkeypatch)
    consumer = stage.intent_consumer
    try:
        consumer._dispatch(TP0, record(0, IntentBatch(batch_id="b0", intents=[intent("f1", 0)])))
        [first] = await wait_until(lambda: producer.acks(), timeout_s=5, what="offset 0's ack")
        consumer._dispatch(TP0, record(1, IntentBatch(batch_id="b1", intents=[intent("f1", 1)])))
        await wait_until(lambda: len(producer.acks()) == 2, timeout_s=5, what="offset 1's ack")
        first[4].set_exception(KafkaTimeoutError("batch expired"))
        producer.acks()[1][4].set_result(None)
        await asyncio.sleep(0.01)
        await consumer._commit(None)
        assert all(c == 0 for c in kafka.commits)
        again = await wait_until(lambda: producer.acks()[2:], timeout_s=5, what="offset 0's ack sent again")
        assert again[0][:4] == first[:4]
        again[0][4].set_result(None)
        await wait_until(lambda: consumer.progress.commit_points() == {TP0: 2}, timeout_s=5, what="both finished")
        await consumer._commit(None)
        assert kafka.commits[-1] == 2
    finally:
        await stage.router.outbox.close()
        await stage.lanes.close()
        await stage.ctx.pool.close()

"""The fan-out's direct ``trade.signals`` consumer on a real broker: what is committed, what
comes back, in which order.

The contract: a signal's offset is committed only once Kafka acknowledged every record the
signal produced. The handler here stands in for ``handle_signal`` and hands the consumer one
delivery future per signal, as ``TopicOutbox`` does for each send; the test decides when (and
whether) Kafka "acknowledges" it. The last test runs the real fan-out and outbox end to end.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.structs import OffsetAndMetadata
from waiting import wait_until

from copytrader.agents.fanout.agent import FanoutStage
from copytrader.agents.fanout.signal_consumer import DirectSignalConsumer
from copytrader.agents.shared.outbox import note_receipt
from copytrader.app.factory import create_app
from copytrader.core import ids
from copytrader.core.config import parse_config
from copytrader.core.records import IntentBatch, TradeSignal
from copytrader.core.settings import Settings
from copytrader.core.topics import SPEC, ensure_topics

pytestmark = [pytest.mark.kafka]


class Acks:
    """Per signal payload: the delivery future its handling registered, in handling order."""

    def __init__(self) -> None:
        self.handled: list[bytes] = []
        self.receipts: dict[bytes, asyncio.Future[Any]] = {}

    async def handle(self, payload: bytes) -> None:
        self.handled.append(payload)
        receipt = asyncio.get_running_loop().create_future()
        self.receipts[payload] = receipt
        note_receipt(receipt)

    def ack(self, *payloads: bytes) -> None:
        for payload in payloads:
            self.receipts[payload].set_result(None)


@pytest.fixture
async def topic(kafka_bootstrap: str) -> AsyncIterator[str]:
    """A fresh two-partition topic holding s0..s2 on partition 0 and s3 on partition 1."""
    name = f"it-signals-{uuid.uuid4().hex[:8]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    await admin.create_topics([NewTopic(name, num_partitions=2, replication_factor=1)])
    for n, partition in ((0, 0), (1, 0), (2, 0), (3, 1)):
        await produce(kafka_bootstrap, name, n, partition)
    yield name
    await admin.delete_topics([name])
    await admin.close()


async def produce(bootstrap: str, topic: str, n: int, partition: int) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        await producer.send_and_wait(topic, f"s{n}".encode(), key=b"ESZ6", partition=partition)
    finally:
        await producer.stop()


async def until(predicate: Callable[[], object], what: str, timeout_s: float = 30.0) -> None:
    await wait_until(predicate, timeout_s=timeout_s, what=what)


def consumer(topic: str, bootstrap: str, group: str, acks: Acks, **kw: Any) -> DirectSignalConsumer:
    return DirectSignalConsumer(
        topic,
        bootstrap,
        group,
        acks.handle,
        commit_interval_s=0.05,
        session_timeout_ms=6000,
        heartbeat_interval_ms=500,
        **kw,
    )


async def committed(c: DirectSignalConsumer, partition: int) -> int | None:
    return await c.consumer.committed(TopicPartition(c.topic, partition))


def commit_rounds(c: DirectSignalConsumer) -> list[int]:
    """Counts the consumer's commit rounds, so a test can wait for some to pass."""
    rounds = [0]
    commit = c._commit

    async def counted(tps: Any) -> None:
        await commit(tps)
        rounds[0] += 1

    c._commit = counted  # type: ignore[method-assign]  # observe the rounds only
    return rounds


async def test_no_commit_before_the_ack_and_a_crash_before_it_redelivers(topic: str, kafka_bootstrap: str) -> None:
    group = f"g-{uuid.uuid4().hex[:6]}"
    acks = Acks()
    first = consumer(topic, kafka_bootstrap, group, acks, revoke_wait_s=0.2)
    rounds = commit_rounds(first)
    await first.start()
    await until(lambda: len(acks.handled) == 4, "s0..s3 handled")
    acks.ack(b"s0", b"s2", b"s3")  # s1's intents are still on their way to Kafka
    await until(lambda: first.progress.settle()[0] == {}, "the first consumer's commits")
    seen = rounds[0]
    await until(lambda: rounds[0] >= seen + 3, "three more commit rounds")
    assert await committed(first, 0) == 1 and await committed(first, 1) == 1  # s2 waits behind s1
    await first.stop()  # the worker dies before s1's ack: its offset must stay uncommitted

    again = Acks()
    second = consumer(topic, kafka_bootstrap, group, again)
    await second.start()
    await until(lambda: len(again.handled) == 2, "s1 and s2 redelivered")
    assert again.handled == [b"s1", b"s2"]  # in order; s2 with it (offsets are ordered)
    again.ack(b"s1", b"s2")
    await until(lambda: second.progress.settle()[0] == {}, "the second consumer's commits")
    assert await committed(second, 0) == 3
    await second.stop()


async def test_a_failed_send_handles_the_partition_again_in_order(topic: str, kafka_bootstrap: str) -> None:
    acks = Acks()
    c = consumer(topic, kafka_bootstrap, f"g-{uuid.uuid4().hex[:6]}", acks, retry_after_s=0.1)
    await c.start()
    await until(lambda: len(acks.handled) == 4, "s0..s3 handled")
    acks.ack(b"s0", b"s2", b"s3")
    failed = acks.receipts[b"s1"]
    failed.set_exception(ConnectionError("the producer gave up"))
    await until(lambda: acks.handled.count(b"s1") == 2 and acks.handled.count(b"s2") == 2, "s1 and s2 again")
    on_p0 = [p for p in acks.handled if p != b"s3"]
    assert on_p0 == [b"s0", b"s1", b"s2", b"s1", b"s2"]  # from the failed one on, in order
    acks.ack(b"s1", b"s2")  # the second round's receipts (the dict holds the newest)
    await until(lambda: c.progress.settle()[0] == {}, "the commits")
    assert await committed(c, 0) == 3
    await c.stop()


async def test_a_rebalance_waits_for_the_acks_of_revoked_signals_before_it_commits(
    topic: str, kafka_bootstrap: str
) -> None:
    group = f"g-{uuid.uuid4().hex[:6]}"
    acks = Acks()
    first = consumer(topic, kafka_bootstrap, group, acks, revoke_wait_s=10.0)
    revoking = asyncio.Event()
    revoke = first.on_partitions_revoked

    async def noted(revoked: list[TopicPartition]) -> None:  # aiokafka calls the listener's method
        if revoked:
            revoking.set()
        await revoke(revoked)

    first.on_partitions_revoked = noted  # type: ignore[method-assign]  # observe the revocation only
    await first.start()
    await until(lambda: len(acks.handled) == 4, "s0..s3 handled")
    acks.ack(b"s0", b"s2", b"s3")

    joined = Acks()
    second = consumer(topic, kafka_bootstrap, group, joined)
    await second.start()  # the group rebalances; ``first`` waits for s1's ack before giving up
    await asyncio.wait_for(revoking.wait(), 30)
    acks.ack(b"s1")
    await until(lambda: len(first.assignment()) == 1 and len(second.assignment()) == 1, "one partition each")
    # A marker behind everything handled on ``first``: a redelivery would reach ``second`` first.
    (tp,) = second.assignment()
    await produce(kafka_bootstrap, topic, 9, tp.partition)
    await until(lambda: b"s9" in joined.handled, "the marker signal on the second consumer")
    assert joined.handled == [b"s9"], "a signal acknowledged before the rebalance was handled again"
    joined.ack(b"s9")
    await second.stop()
    await first.stop()


async def test_one_partition_s_signals_are_handled_in_order(kafka_bootstrap: str) -> None:
    name = f"it-signals-{uuid.uuid4().hex[:8]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    await admin.create_topics([NewTopic(name, num_partitions=3, replication_factor=1)])
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
    await producer.start()
    for n in range(60):
        await producer.send(name, f"s{n}".encode(), partition=n % 3)
    await producer.flush()
    await producer.stop()
    acks = Acks()
    c = consumer(name, kafka_bootstrap, f"g-{uuid.uuid4().hex[:6]}", acks)
    await c.start()
    try:
        await until(lambda: len(acks.handled) == 60, "every signal handled")
        for partition in range(3):
            numbers = [int(p[1:]) for p in acks.handled if int(p[1:]) % 3 == partition]
            assert numbers == sorted(numbers), f"partition {partition} out of order: {numbers}"
        for receipt in reversed(list(acks.receipts.values())):  # acknowledged in reverse
            receipt.set_result(None)
        await until(lambda: c.progress.settle()[0] == {}, "the commits")
        assert [await committed(c, p) for p in range(3)] == [20, 20, 20]
    finally:
        await c.stop()
        await admin.delete_topics([name])
        await admin.close()


async def test_the_first_start_continues_where_the_faust_agent_group_stopped(topic: str, kafka_bootstrap: str) -> None:
    faust_group = f"faust-{uuid.uuid4().hex[:6]}"
    old = AIOKafkaConsumer(bootstrap_servers=kafka_bootstrap, group_id=faust_group, enable_auto_commit=False)
    await old.start()
    old.assign([TopicPartition(topic, 0), TopicPartition(topic, 1)])
    await old.commit(
        {TopicPartition(topic, 0): OffsetAndMetadata(2, ""), TopicPartition(topic, 1): OffsetAndMetadata(1, "")}
    )
    await old.stop()

    acks = Acks()
    direct = consumer(topic, kafka_bootstrap, f"{faust_group}.fanout", acks, adopt_offsets_from=faust_group)
    await direct.start()
    await produce(kafka_bootstrap, topic, 8, 0)  # markers behind what the old group had read
    await produce(kafka_bootstrap, topic, 9, 1)
    await until(lambda: {b"s8", b"s9"} <= set(acks.handled), "both marker signals")
    assert sorted(acks.handled) == [b"s2", b"s8", b"s9"]  # not the whole retention again
    await direct.stop()


async def test_the_real_fan_out_commits_a_signal_once_its_intents_are_in_kafka(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    """``handle_signal`` and ``TopicOutbox`` over Faust's producer: the offsets the consumer
    commits never run ahead of the intent batches and refusals on the output topics."""
    prefix = f"it-fan-{uuid.uuid4().hex[:6]}."
    await ensure_topics(kafka_bootstrap, prefix)
    config = {
        "sessions": [{"id": "p", "platform": "paper", "options": {"tick_ms": 0, "venue": "it-fan"}}],
        "accounts": [{"id": "L", "session": "p"}] + [{"id": f"f{n}", "session": "p"} for n in range(1, 6)],
        "copy_groups": [{"leader": "L", "followers": [{"account": f"f{n}"} for n in range(1, 6)]}],
    }
    settings = Settings(
        app_id=f"it-fan-{uuid.uuid4().hex[:6]}",
        kafka_broker=f"kafka://{kafka_bootstrap}",
        topic_prefix=prefix,
        data_dir=tmp_path,
        roles=("fanout",),
    )
    app = create_app(settings, parse_config(config, env={}))
    app.finalize()
    stage: FanoutStage = app.runtime.fanout  # type: ignore[assignment]  # the fanout role is installed
    direct = stage.signal_consumer
    assert direct is not None
    direct.commit_interval_s = 0.05
    await app.producer.start()
    signals = [
        TradeSignal(
            signal_id=ids.signal_id("L", str(n), "new"),
            leader_account="L",
            platform="paper",
            symbol="ESZ6",
            side="buy",
            quantity=1,
            leader_order_id=str(n),
            stamps={"detected": 1.0},
        ).dumps()
        for n in range(5)
    ] + [b"\xff not a signal"]
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
    await producer.start()
    for payload in signals:
        await producer.send_and_wait(f"{prefix}trade.signals", payload, key=b"ESZ6", partition=0)
    await producer.stop()
    await direct.start()
    try:
        tp = TopicPartition(direct.topic, 0)

        async def all_committed() -> bool:  # Kafka's own word: "nothing left to commit" is also
            return await direct.consumer.committed(tp) == 6  # true while the first signal waits

        await until(all_committed, "all six signals committed")
        written = await read_all(kafka_bootstrap, prefix, ["orders.requests", "order.errors"])
        intents = {i.client_order_id for v in written["orders.requests"] for i in IntentBatch.loads(v).intents}
        assert intents == {
            ids.client_order_id(ids.signal_id("L", str(n), "new"), f"f{f}") for n in range(5) for f in range(1, 6)
        }
        assert any(b"MALFORMED" in v for v in written["order.errors"])
    finally:
        await direct.stop()
        await app.producer.stop()


async def read_all(bootstrap: str, prefix: str, names: list[str]) -> dict[str, list[bytes]]:
    """Every record of the prefixed topics ``names`` up to their current ends."""
    reader = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await reader.start()
    try:
        tps = [TopicPartition(prefix + name, p) for name in names for p in range(SPEC[name].partitions)]
        reader.assign(tps)
        ends = await reader.end_offsets(tps)
        for tp in tps:
            reader.seek(tp, 0)
        out: dict[str, list[bytes]] = {name: [] for name in names}
        while [tp for tp in tps if await reader.position(tp) < ends[tp]]:
            for tp, records in (await reader.getmany(timeout_ms=500)).items():
                out[tp.topic.removeprefix(prefix)] += [r.value for r in records if r.value is not None]
        return out
    finally:
        await reader.stop()

"""The direct ``orders.requests`` consumer on a real broker: what is committed, what comes back.

At-least-once: an unfinished batch is never committed, so the next consumer of the group gets it
again (and the client order id dedupe absorbs it); a rebalance first lets in-flight batches
finish, so nothing is redelivered that already ran to completion here.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.structs import OffsetAndMetadata
from waiting import wait_until

from copytrader.agents.execution.intent_consumer import DirectIntentConsumer
from copytrader.core.records import IntentBatch, OrderIntent

pytestmark = [pytest.mark.kafka]

Done = Callable[[], Awaitable[object]]


def batch(n: int) -> IntentBatch:
    intent = OrderIntent(
        client_order_id=f"s{n}|f1",
        signal_id=f"s{n}",
        account_id="f1",
        platform="paper",
        leader_account="L",
        action="place",
        symbol="ESZ6",
        side="buy",
        quantity=1,
    )
    return IntentBatch(batch_id=f"b{n}", intents=[intent])


@pytest.fixture
async def topic(kafka_bootstrap: str) -> AsyncIterator[str]:
    """A fresh two-partition topic holding b0..b2 on partition 0 and b3 on partition 1."""
    name = f"it-intents-{uuid.uuid4().hex[:8]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    await admin.create_topics([NewTopic(name, num_partitions=2, replication_factor=1)])
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
    await producer.start()
    for n, partition in ((0, 0), (1, 0), (2, 0), (3, 1)):
        await producer.send_and_wait(name, batch(n).dumps(), key=f"b{n}".encode(), partition=partition)
    await producer.stop()
    yield name
    await admin.delete_topics([name])
    await admin.close()


async def until(predicate: Callable[[], object], what: str, timeout_s: float = 30.0) -> None:
    await wait_until(predicate, timeout_s=timeout_s, what=what)


async def produce(bootstrap: str, topic: str, n: int, partition: int) -> None:
    """One more batch ``b<n>``: a marker behind everything already in ``partition``."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        await producer.send_and_wait(topic, batch(n).dumps(), key=f"b{n}".encode(), partition=partition)
    finally:
        await producer.stop()


def consumer(topic: str, bootstrap: str, group: str, held: dict[str, Done], **kw: object) -> DirectIntentConsumer:
    return DirectIntentConsumer(
        topic,
        bootstrap,
        group,
        submit=lambda b, done, redelivered: held.__setitem__(b.batch_id, done),
        commit_interval_s=0.05,
        session_timeout_ms=6000,
        heartbeat_interval_ms=500,
        **kw,  # type: ignore[arg-type]  # test knobs
    )


async def committed(c: DirectIntentConsumer, partition: int) -> int | None:
    return await c.consumer.committed(TopicPartition(c.topic, partition))


async def test_unfinished_batches_are_not_committed_and_come_back(topic: str, kafka_bootstrap: str) -> None:
    group = f"g-{uuid.uuid4().hex[:6]}"
    held: dict[str, Done] = {}
    first = consumer(topic, kafka_bootstrap, group, held, revoke_wait_s=0.2)
    await first.start()
    await until(lambda: set(held) == {"b0", "b1", "b2", "b3"}, "b0..b3 handed to the lanes")
    for finished in ("b0", "b2", "b3"):  # b1 is still with its broker
        await held[finished]()
    await until(lambda: first.progress.commit_points() == {}, "the first consumer's commits")
    assert await committed(first, 0) == 1 and await committed(first, 1) == 1
    await first.stop()  # b1 does not finish in time: it must stay uncommitted

    again: dict[str, Done] = {}
    second = consumer(topic, kafka_bootstrap, group, again)
    await second.start()
    await until(
        lambda: set(again) == {"b1", "b2"}, "b1 and b2 redelivered"
    )  # b1 redelivered (b2 with it: offsets are ordered)
    for done in again.values():
        await done()
    await until(lambda: second.progress.commit_points() == {}, "the second consumer's commits")
    assert await committed(second, 0) == 3
    await second.stop()


async def test_a_rebalance_lets_in_flight_batches_finish_before_it_commits(topic: str, kafka_bootstrap: str) -> None:
    group = f"g-{uuid.uuid4().hex[:6]}"
    held: dict[str, Done] = {}
    first = consumer(topic, kafka_bootstrap, group, held, revoke_wait_s=10.0)
    revoking = asyncio.Event()
    revoke = first.on_partitions_revoked

    async def noted(revoked: list[TopicPartition]) -> None:  # aiokafka calls the listener's method
        if revoked:
            revoking.set()
        await revoke(revoked)

    first.on_partitions_revoked = noted  # type: ignore[method-assign]  # observe the revocation only
    await first.start()
    await until(lambda: set(held) == {"b0", "b1", "b2", "b3"}, "b0..b3 handed to the lanes")
    for finished in ("b0", "b2", "b3"):
        await held[finished]()

    joined: dict[str, Done] = {}
    second = consumer(topic, kafka_bootstrap, group, joined)
    await second.start()  # the group rebalances; ``first`` waits for b1 before giving it up
    await asyncio.wait_for(revoking.wait(), 30)
    await held["b1"]()
    await until(lambda: len(first.assignment()) == 1 and len(second.assignment()) == 1, "one partition each")
    # A marker behind everything that ran on ``first``: a redelivery would reach ``second`` before it.
    (tp,) = second.assignment()
    await produce(kafka_bootstrap, topic, 9, tp.partition)
    await until(lambda: "b9" in joined, "the marker batch on the second consumer")
    assert set(joined) == {"b9"}, "a batch that finished before the rebalance was delivered again"
    await second.stop()
    await first.stop()


async def test_a_new_group_continues_where_the_faust_agent_group_stopped(topic: str, kafka_bootstrap: str) -> None:
    faust_group = f"faust-{uuid.uuid4().hex[:6]}"
    old = AIOKafkaConsumer(bootstrap_servers=kafka_bootstrap, group_id=faust_group, enable_auto_commit=False)
    await old.start()
    old.assign([TopicPartition(topic, 0), TopicPartition(topic, 1)])
    await old.commit(
        {TopicPartition(topic, 0): OffsetAndMetadata(2, ""), TopicPartition(topic, 1): OffsetAndMetadata(1, "")}
    )
    await old.stop()

    held: dict[str, Done] = {}
    direct = consumer(topic, kafka_bootstrap, f"{faust_group}.executor", held, adopt_offsets_from=faust_group)
    await direct.start()
    await produce(kafka_bootstrap, topic, 8, 0)  # markers behind what the old group had read
    await produce(kafka_bootstrap, topic, 9, 1)
    await until(lambda: {"b8", "b9"} <= set(held), "both marker batches")
    assert set(held) == {"b2", "b8", "b9"}  # not the whole retention again
    await direct.stop()


async def test_an_executor_with_an_app_id_of_its_own_continues_where_the_old_workers_group_stopped(
    topic: str, kafka_bootstrap: str
) -> None:
    """The Helm chart's executor group has its own app id: it adopts the old single worker's
    direct group (``COPYTRADER_ADOPT_OFFSETS_FROM``) rather than replaying orders.requests."""
    base = f"ct-{uuid.uuid4().hex[:6]}"
    old = AIOKafkaConsumer(bootstrap_servers=kafka_bootstrap, group_id=f"{base}.executor", enable_auto_commit=False)
    await old.start()
    old.assign([TopicPartition(topic, 0), TopicPartition(topic, 1)])
    await old.commit(
        {TopicPartition(topic, 0): OffsetAndMetadata(3, ""), TopicPartition(topic, 1): OffsetAndMetadata(1, "")}
    )  # the old worker had read b0..b3
    await old.stop()

    held: dict[str, Done] = {}
    new_id = f"{base}-executor"  # no offsets under this id's own Faust group: skipped, in order
    direct = consumer(
        topic, kafka_bootstrap, f"{new_id}.executor", held, adopt_offsets_from=(f"{base}.executor", new_id)
    )
    await direct.start()
    await produce(kafka_bootstrap, topic, 8, 0)
    await produce(kafka_bootstrap, topic, 9, 1)
    await until(lambda: {"b8", "b9"} <= set(held), "both marker batches")
    assert set(held) == {"b8", "b9"}  # nothing the old worker had read came again
    await direct.stop()

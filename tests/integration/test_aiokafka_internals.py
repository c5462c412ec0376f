"""The private aiokafka attributes ``agents/shared/aiokafka_internals.py`` relies on, against the
installed aiokafka and a real broker: an upgrade that renames one fails here, loudly."""

from __future__ import annotations

import asyncio
import contextlib
import uuid

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from faust.transport.drivers import aiokafka as faust_aiokafka
from waiting import wait_until

from copytrader.agents.shared import aiokafka_internals

pytestmark = pytest.mark.kafka


def test_the_fetch_wait_patch_replaces_fausts_consumer_factory() -> None:
    aiokafka_internals.apply_fetch_wait(7)
    factory = faust_aiokafka.AIOKafkaConsumerThread._create_worker_consumer
    assert factory is aiokafka_internals._create_worker_consumer


async def test_a_changed_fetch_wait_reaches_the_fetcher(kafka_bootstrap: str) -> None:
    consumer = AIOKafkaConsumer(bootstrap_servers=kafka_bootstrap, group_id=None, fetch_max_wait_ms=1500)
    assert aiokafka_internals.fetch_wait_of(consumer) == 1500
    consumer._fetch_max_wait_ms = 9  # what the patched factory does to Faust's consumer
    await consumer.start()
    try:
        assert consumer._fetcher._fetch_max_wait_ms == 9
    finally:
        await _stop(consumer)


async def _stop(consumer: AIOKafkaConsumer) -> None:
    """aiokafka's stop of a consumer that never fetched can surface the cancellation of its
    own internal commit-reset task; that is aiokafka tidying up, not a failure of ours."""
    with contextlib.suppress(asyncio.CancelledError):
        await consumer.stop()


async def test_refresh_metadata_finds_a_topic_created_after_the_consumer_started(kafka_bootstrap: str) -> None:
    topic = f"internals-{uuid.uuid4().hex[:8]}"
    consumer = AIOKafkaConsumer(bootstrap_servers=kafka_bootstrap, group_id=None, enable_auto_commit=False)
    await consumer.start()
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        assert not consumer.partitions_for_topic(topic)
        await admin.create_topics([NewTopic(topic, num_partitions=3, replication_factor=1)])

        async def listed() -> object:  # the broker may take a moment to list a new topic
            await aiokafka_internals.refresh_metadata(consumer)
            return consumer.partitions_for_topic(topic)

        assert await wait_until(listed, timeout_s=10, what="the new topic in the consumer's metadata") == {0, 1, 2}
    finally:
        await admin.delete_topics([topic])
        await admin.close()
        await _stop(consumer)


async def test_fetch_in_flight_sees_the_long_poll_of_an_idle_consumer(kafka_bootstrap: str) -> None:
    topic = f"internals-{uuid.uuid4().hex[:8]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    await admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])
    consumer = AIOKafkaConsumer(
        bootstrap_servers=kafka_bootstrap, group_id=None, enable_auto_commit=False, fetch_max_wait_ms=5000
    )
    assert not aiokafka_internals.fetch_in_flight(consumer)  # not started: no fetcher at all
    await consumer.start()
    try:
        consumer.assign([TopicPartition(topic, 0)])
        await consumer.getmany(timeout_ms=100)  # the topic is empty: the fetcher long-polls it
        await wait_until(
            lambda: aiokafka_internals.fetch_in_flight(consumer),
            timeout_s=5,
            what="the idle consumer's long poll in flight",
        )
    finally:
        await _stop(consumer)
        await admin.delete_topics([topic])
        await admin.close()


async def test_producer_holds_records_until_its_sender_takes_them(kafka_bootstrap: str) -> None:
    """What the fan-out waits for between two signals: the records of the last one leave the
    producer's accumulator within a few loop turns, and the check says so."""
    topic = f"internals-{uuid.uuid4().hex[:8]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    await admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, linger_ms=0)

    class FaustProducer:  # Faust's aiokafka Producer keeps aiokafka's in ``_producer``
        _producer: AIOKafkaProducer | None = None

    faust_producer = FaustProducer()
    assert not aiokafka_internals.producer_holds_records(faust_producer)  # not started: holds nothing
    await producer.start()
    faust_producer._producer = producer
    try:
        await producer.partitions_for(topic)  # metadata first: the send itself is then immediate
        delivered = await producer.send(topic, b"intent batch")
        assert aiokafka_internals.producer_holds_records(faust_producer)
        turns = 0
        while aiokafka_internals.producer_holds_records(faust_producer) and turns < 10:
            await asyncio.sleep(0)
            turns += 1
        assert turns <= 4  # the fan-out waits at most four turns for it
        await delivered
    finally:
        await producer.stop()
        await admin.delete_topics([topic])
        await admin.close()

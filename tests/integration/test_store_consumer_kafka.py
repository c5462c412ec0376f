"""The database sink's direct consumer on a real broker: written, committed, redelivered as a no-op.

A fetch is written before its offsets are committed; a restarted consumer of the same group
starts after what was written; a record that does not decode is skipped, never blocking its
partition; and a first start continues where the Faust agents' group stopped.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.structs import OffsetAndMetadata
from sqlalchemy import func, select
from waiting import wait_until

from copytrader.agents.tracking.storage_sink import StorageSink
from copytrader.agents.tracking.store_consumer import StoreConsumer, StoredTopic
from copytrader.core.records import Execution
from copytrader.storage import mapping
from copytrader.storage.db import session_factory
from copytrader.storage.models import AuditEntry, ExecutionRow

pytestmark = [pytest.mark.kafka]

AT = datetime(2026, 12, 1, 14, 30, tzinfo=UTC)


def execution(n: int) -> bytes:
    record = Execution(
        execution_id=f"x{n}",
        account_id="F1",
        platform="paper",
        kind="fill",
        client_order_id=f"CT{n}",
        signal_id=f"L1:o{n}:new",
        symbol="ESZ6",
        side="buy",
        quantity=1,
        price=Decimal("5000.25"),
        occurred_at=AT,
    )
    return bytes(record.dumps())


@pytest.fixture
async def topic(kafka_bootstrap: str) -> AsyncIterator[str]:
    name = f"it-store-{uuid.uuid4().hex[:8]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    await admin.create_topics([NewTopic(name, num_partitions=2, replication_factor=1)])
    yield name
    await admin.delete_topics([name])
    await admin.close()


async def produce(bootstrap: str, topic: str, values: list[tuple[bytes, int]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        for value, partition in values:
            await producer.send_and_wait(topic, value, partition=partition)
    finally:
        await producer.stop()


async def started(topic: str, sink: StorageSink, bootstrap: str, group: str, **kw: Any) -> StoreConsumer:
    consumer = StoreConsumer(
        {topic: StoredTopic(Execution.loads, mapping.executions_batch)}, sink.store_groups, bootstrap, group, **kw
    )
    await consumer.start()
    return consumer


def stored(sink: StorageSink) -> tuple[int, int]:
    with session_factory(sink.engine)() as db:
        rows = db.scalar(select(func.count()).select_from(ExecutionRow)) or 0
        audit = db.scalar(select(func.count()).select_from(AuditEntry)) or 0
    return rows, audit


async def committed(bootstrap: str, group: str, topic: str) -> dict[int, int]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(group)
    finally:
        await admin.close()
    return {tp.partition: meta.offset for tp, meta in offsets.items() if tp.topic == topic}


async def test_written_then_committed_and_a_restart_writes_nothing_twice(
    topic: str, kafka_bootstrap: str, tmp_path: Path
) -> None:
    sink = StorageSink(f"sqlite:///{tmp_path}/ct.db")
    await sink.start()
    group = f"it-store-{uuid.uuid4().hex[:6]}"
    await produce(kafka_bootstrap, topic, [(execution(0), 0), (b"{not json", 0), (execution(1), 0), (execution(2), 1)])
    consumer = await started(topic, sink, kafka_bootstrap, group)
    try:
        await wait_until(lambda: stored(sink) == (3, 3), what="three executions stored", timeout_s=30)
        assert consumer.skipped == 1  # the poison record, and the one after it was still written
        offsets: dict[int, int] = {}

        async def all_committed() -> bool:
            offsets.update(await committed(kafka_bootstrap, group, topic))
            return offsets == {0: 3, 1: 1}

        await wait_until(all_committed, what="offsets committed after the write", timeout_s=30)
    finally:
        await consumer.stop()

    await produce(kafka_bootstrap, topic, [(execution(3), 1)])
    again = await started(topic, sink, kafka_bootstrap, group)
    try:
        await wait_until(lambda: stored(sink) == (4, 4), what="only the new execution stored", timeout_s=30)
        assert again.skipped == 0  # started after the poison record: it was committed past
    finally:
        await again.stop()
        await sink.close()


async def test_a_redelivered_batch_is_a_no_op(topic: str, kafka_bootstrap: str, tmp_path: Path) -> None:
    """A consumer that wrote but died before committing: the next one writes the batch again."""
    sink = StorageSink(f"sqlite:///{tmp_path}/ct.db")
    await sink.start()
    await produce(kafka_bootstrap, topic, [(execution(n), n % 2) for n in range(6)])
    first = await started(topic, sink, kafka_bootstrap, f"it-store-{uuid.uuid4().hex[:6]}")
    await wait_until(lambda: stored(sink) == (6, 6), what="six executions stored", timeout_s=30)
    await first.stop()
    second = await started(topic, sink, kafka_bootstrap, f"it-store-{uuid.uuid4().hex[:6]}")  # from earliest
    try:
        await wait_until(
            lambda: sum(second._positions.values()) == 6, what="the second group read all six", timeout_s=30
        )
        assert stored(sink) == (6, 6)
    finally:
        await second.stop()
        await sink.close()


async def test_a_first_start_continues_where_the_faust_group_stopped(
    topic: str, kafka_bootstrap: str, tmp_path: Path
) -> None:
    faust_group = f"faust-{uuid.uuid4().hex[:6]}"
    await produce(kafka_bootstrap, topic, [(execution(0), 0), (execution(1), 0), (execution(2), 1)])
    old = AIOKafkaConsumer(bootstrap_servers=kafka_bootstrap, group_id=faust_group, enable_auto_commit=False)
    await old.start()
    old.assign([TopicPartition(topic, 0), TopicPartition(topic, 1)])
    await old.commit(
        {TopicPartition(topic, 0): OffsetAndMetadata(2, ""), TopicPartition(topic, 1): OffsetAndMetadata(1, "")}
    )
    await old.stop()
    await produce(kafka_bootstrap, topic, [(execution(3), 1)])
    sink = StorageSink(f"sqlite:///{tmp_path}/ct.db")
    await sink.start()
    consumer = await started(topic, sink, kafka_bootstrap, f"{faust_group}.store", adopt_offsets_from=faust_group)
    try:
        await wait_until(
            lambda: stored(sink) == (1, 1), what="only the record after the Faust group's offsets", timeout_s=30
        )
        with session_factory(sink.engine)() as db:
            assert list(db.scalars(select(ExecutionRow.execution_id))) == ["x3"]
    finally:
        await consumer.stop()
        await sink.close()

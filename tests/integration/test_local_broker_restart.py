"""The local broker starts again over a data directory it wrote with larger segments.

Session 32 gave the local broker (demo, CI, development) 64 KiB index files. Kafka resizes the
active segment's index files to that bound when it loads them, so a broker whose data
directory still held a segment written before (1 GiB segments, 10 MiB indexes) refused to
start ("newPosition > limit"): a returning demo user's broker, after the upgrade. This runs a
private broker the old way, fills one segment past what a 64 KiB index holds, stops it, and
starts it again with today's settings: it must start and still hold every record.
"""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest
from ci_skips import require

from copytrader.app import kafka_local
from copytrader.app.kafka_local import LocalKafka, private_kafka

pytestmark = [pytest.mark.kafka]

RECORD = b"r" * 4500  # one record per batch, each more than index.interval.bytes: an index entry each
RECORDS = 9000  # 39 MiB: 9,000 offset-index entries, more than a 64 KiB index holds (8,192)


async def _produce(bootstrap: str, topic: str) -> None:
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks=1, linger_ms=0, max_batch_size=5000)
    await producer.start()
    try:
        sent = [await producer.send(topic, RECORD, partition=0) for _ in range(RECORDS)]
        await asyncio.gather(*sent)
    finally:
        await producer.stop()


async def _end_offset(bootstrap: str, topic: str) -> int:
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await consumer.start()
    try:
        partition = TopicPartition(topic, 0)
        return int((await consumer.end_offsets([partition]))[partition])
    finally:
        await consumer.stop()


def test_a_broker_from_before_the_small_index_starts_over_its_old_segments(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    jars = (LocalKafka().libs / ".complete").exists() or shutil.which("mvn")
    require("kafka", "a private broker runs Kafka's jars (Maven) on Java", available=shutil.which("java") and jars)
    kafka = private_kafka(tmp_path / "kafka")
    with monkeypatch.context() as before:  # Kafka's defaults, as the local broker had them
        before.setattr(kafka_local, "INDEX_BYTES", 10 * 1024 * 1024)
        before.setattr(kafka_local, "SEGMENT_BYTES", 1024 * 1024 * 1024, raising=False)
        kafka.start(timeout=180)
        try:
            asyncio.run(_produce(kafka.bootstrap, "old-segments"))
        finally:
            kafka.stop()
    (segment,) = (tmp_path / "kafka" / "data" / "old-segments-0").glob("*.log")
    assert segment.stat().st_size > kafka_local.SEGMENT_BYTES  # written under the old bound

    try:
        kafka.start(timeout=180)  # raised KafkaError ("Kafka exited with 1") before the fix
        assert asyncio.run(_end_offset(kafka.bootstrap, "old-segments")) == RECORDS
        asyncio.run(_produce(kafka.bootstrap, "old-segments"))  # the old segment rolls
        assert asyncio.run(_end_offset(kafka.bootstrap, "old-segments")) == 2 * RECORDS
    finally:
        kafka.stop()
    props = (tmp_path / "kafka" / "server.properties").read_text()
    assert f"log.segment.bytes={kafka_local.SEGMENT_BYTES}\n" in props

"""Warm a Kafka broker the demo has just started, before its first trade.

A freshly started broker's JVM runs its request path interpreted until the JIT has compiled
it: measured on the CI kind of machine (a private broker, 10 partitions, one send at a time),
the first 250 produce requests were acked at p50 10.6 / p99 64 ms against 2–3 / 20–30 ms
after the first thousand, and a topic created after that warm-up was as fast from its first
record (one send at a time; at the demo's pace each new partition's first index entry stalled
its produce too, which the local broker's small index files removed: ``app/kafka_local.py``,
docs/benchmarks.md, "A new partition's first index entry"). A deployment's brokers run for
weeks; only the demo (and a bench that started its own broker) trades seconds after a
broker's start, so only they run this.

The traffic goes to a scratch topic of the run (``<prefix>broker-warmup``), which no worker
reads and which the run deletes with its other topics. Nothing is written to a topic a worker
consumes. Bounded by time and by count; a failure is reported and the run goes on cold.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError

from ..core.topics import leaders_known

log = logging.getLogger(__name__)

TOPIC_SUFFIX = "broker-warmup"
PARTITIONS = 10  # as orders.requests and trade.executions: every partition's log is touched
#: Enough round trips for the broker's produce and fetch paths to be compiled (above).
ROUND_TRIPS = 1500
TIME_LIMIT_S = 15.0


@dataclass(frozen=True, slots=True)
class WarmupResult:
    """What the warm-up did: round trips completed and the ack time of its first and last 100."""

    round_trips: int
    seconds: float
    first_ack_p50_ms: float | None
    last_ack_p50_ms: float | None

    def describe(self) -> str:
        if self.round_trips == 0:
            return "broker warm-up: no round trip completed"
        return (
            f"broker warm-up: {self.round_trips} round trips in {self.seconds:.1f}s, "
            f"ack p50 {self.first_ack_p50_ms:.1f} ms at first, {self.last_ack_p50_ms:.1f} ms at the end"
        )


def warmup_topic(prefix: str) -> str:
    return f"{prefix}{TOPIC_SUFFIX}"


async def warm_broker(
    bootstrap: str, prefix: str, round_trips: int = ROUND_TRIPS, time_limit_s: float = TIME_LIMIT_S
) -> WarmupResult:
    """Produce ``round_trips`` records one at a time (as the copy path does, linger 0, waiting
    for each ack) while a consumer fetches them, all on the run's scratch topic."""
    topic = warmup_topic(prefix)
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        try:
            await admin.create_topics([NewTopic(topic, num_partitions=PARTITIONS, replication_factor=1)])
        except TopicAlreadyExistsError:
            pass
        await leaders_known(admin, [topic], time_limit_s)  # asked before that, clients log errors
    finally:
        await admin.close()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=0)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, fetch_max_wait_ms=100)
    await producer.start()
    acks: list[float] = []
    began = time.monotonic()
    reader: asyncio.Task[None] | None = None
    try:
        await producer.partitions_for(topic)
        await consumer.start()
        # Assigned, not subscribed: partitions the producer already knows, read from offset 0 (a
        # subscription to a topic created a moment ago logs "not found" until metadata agrees,
        # and finding its start with a ListOffsets request logs NOT_LEADER as an error).
        partitions = [TopicPartition(topic, p) for p in range(PARTITIONS)]
        consumer.assign(partitions)
        for partition in partitions:
            consumer.seek(partition, 0)
        reader = asyncio.create_task(_drain(consumer))
        deadline = began + time_limit_s
        for i in range(round_trips):
            if time.monotonic() >= deadline:
                break
            sent = time.perf_counter()
            await producer.send_and_wait(topic, b"w", partition=i % PARTITIONS)
            acks.append(time.perf_counter() - sent)
    finally:
        if reader is not None:
            reader.cancel()
            await asyncio.gather(reader, return_exceptions=True)
        await producer.stop()
        await consumer.stop()
    return WarmupResult(
        round_trips=len(acks),
        seconds=time.monotonic() - began,
        first_ack_p50_ms=_p50_ms(acks[:100]),
        last_ack_p50_ms=_p50_ms(acks[-100:]),
    )


async def _drain(consumer: AIOKafkaConsumer) -> None:
    """Fetch what the producer writes, so the broker's fetch path is exercised too."""
    while True:
        await consumer.getmany(timeout_ms=200)


def _p50_ms(samples: list[float]) -> float | None:
    if not samples:
        return None
    ordered = sorted(samples)
    return round(ordered[len(ordered) // 2] * 1000.0, 2)


async def warm_broker_quietly(bootstrap: str, prefix: str) -> str:
    """:func:`warm_broker`, reporting instead of raising: a cold broker is slower, not wrong."""
    try:
        return (await warm_broker(bootstrap, prefix)).describe()
    except (TimeoutError, KafkaError, OSError) as exc:
        log.warning("broker warm-up failed: %s", exc)
        return f"broker warm-up failed ({type(exc).__name__}: {exc}); trading on a cold broker"


__all__ = ["WarmupResult", "warm_broker", "warm_broker_quietly", "warmup_topic"]

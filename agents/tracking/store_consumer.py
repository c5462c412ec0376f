"""The database sink's consumer without Faust: one plain aiokafka consumer for every stored topic.

Why: the sink reads about five records per copy (the intent batch, the ack, the fill, the
position, the signal) and does nothing per record but decode and map it. Through Faust's
streams each record paid about 300 µs of CPU in stream machinery (thread hops, per-event
tasks, acks; docs/benchmarks.md, "What a record costs in Faust"), several times what the
mapping and the batched write cost. Here a fetch of up to :data:`BATCH_SIZE` records is
decoded, mapped and written per topic, then its offsets are committed: about 90 µs a record.

Delivery: at least once, as with the Faust agents' ``take`` batches. Offsets are committed only
after the batch is written, so a crash or a rebalance mid-write redelivers it, and the writer's
natural keys make that a no-op (``storage/writer.py``). A record that does not decode is
logged with its place and skipped: a poison record never blocks its partition.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError
from aiokafka.structs import ConsumerRecord, OffsetAndMetadata

from ...common.retrying import keep_running
from ..shared.adopt_offsets import adopt_offsets
from ..shared.aiokafka_internals import retry_backoff_ms
from ..shared.decoded_records import DecodedRecords

log = logging.getLogger(__name__)

BATCH_SIZE = 500
FETCH_WAIT_MS = 500
# A fetch waits for this much (up to FETCH_WAIT_MS): while copies flow, one round trip then
# carries a few hundred records instead of a handful, and a sink has no one waiting on it.
FETCH_MIN_BYTES = 64 * 1024


@dataclass(frozen=True, slots=True)
class StoredTopic:
    """How one topic's records become rows: ``decode`` one value, ``mapper`` a batch of them."""

    decode: Callable[[bytes], Any]
    mapper: Callable[[Sequence[Any]], Any]


Mapper = Callable[[Sequence[Any]], Any]
#: Writes one fetch: each stored topic's mapper with the values decoded from it, in one go.
Store = Callable[[Sequence[tuple[Mapper, Sequence[Any]]]], Awaitable[Any]]


class StoreConsumer:
    """Fetch, write, commit: the ``store`` role's loop (see the module docstring)."""

    def __init__(
        self,
        topics: Mapping[str, StoredTopic],
        store: Store,
        bootstrap_servers: str,
        group_id: str,
        *,
        adopt_offsets_from: str | Sequence[str] | None = None,
        batch_size: int = BATCH_SIZE,
        session_timeout_ms: int = 10_000,
        heartbeat_interval_ms: int = 2_000,
    ) -> None:
        self.topics = dict(topics)
        self.store = store
        self.group_id = group_id
        self.adopt_offsets_from = adopt_offsets_from
        self.batch_size = batch_size
        self.skipped = 0
        self._bootstrap_servers = bootstrap_servers
        self._options = dict(
            bootstrap_servers=bootstrap_servers,
            group_id=group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            fetch_max_wait_ms=FETCH_WAIT_MS,
            fetch_min_bytes=FETCH_MIN_BYTES,
            max_poll_records=batch_size,
            session_timeout_ms=session_timeout_ms,
            heartbeat_interval_ms=heartbeat_interval_ms,
        )
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task[None] | None = None
        self._positions: dict[TopicPartition, int] = {}  # next offset to write, per partition
        self._decoded: DecodedRecords | None = None

    def share_decoding(self, decoded: DecodedRecords) -> None:
        """Decode through the worker's :class:`DecodedRecords`: the tracker and the dashboard
        feed of the same worker read ``trade.executions`` too (``agents/shared/decoded_records.py``)."""
        self._decoded = decoded
        for topic in self.topics:
            decoded.add_reader(topic)

    async def start(self) -> None:
        if self.adopt_offsets_from:
            await adopt_offsets(self._bootstrap_servers, self.group_id, self.adopt_offsets_from, set(self.topics))
        self._consumer = AIOKafkaConsumer(**self._options, retry_backoff_ms=retry_backoff_ms())
        await self._consumer.start()
        self._consumer.subscribe(list(self.topics))
        self._task = asyncio.ensure_future(keep_running(self._run, "storage consumer"))

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self._consumer is not None:
            await self._consumer.stop()

    def lags(self) -> dict[TopicPartition, int]:
        """Records of each assigned partition not yet written (end − next), for the lag metric."""
        if self._consumer is None:
            return {}
        lags = {}
        for tp in self._consumer.assignment():
            end, position = self._consumer.highwater(tp), self._positions.get(tp)
            if end is not None and position is not None:
                lags[tp] = max(end - position, 0)
        return lags

    async def _run(self) -> None:
        consumer = self._consumer
        assert consumer is not None, "start() first"
        while True:
            fetched = await consumer.getmany(timeout_ms=FETCH_WAIT_MS, max_records=self.batch_size)
            if fetched:
                await self.write(fetched)
                await self._commit(consumer, fetched)

    async def write(self, fetched: Mapping[TopicPartition, Sequence[ConsumerRecord]]) -> None:
        """Decode each topic's records of one fetch and write them all in one go (``store``)."""
        by_topic: dict[str, list[Any]] = {}
        for tp, records in fetched.items():
            stored = self.topics[tp.topic]
            values = by_topic.setdefault(tp.topic, [])
            for record in records:
                if record.value is None:
                    continue
                try:
                    if self._decoded is None:
                        values.append(stored.decode(record.value))
                    else:
                        values.append(
                            self._decoded.decode(stored.decode, tp.topic, tp.partition, record.offset, record.value)
                        )
                except Exception as exc:  # noqa: BLE001 - a poison record must not block its partition
                    self.skipped += 1
                    log.error("storage: %s@%d undecodable, skipped (%s)", tp, record.offset, type(exc).__name__)
        groups = [(self.topics[topic].mapper, values) for topic, values in by_topic.items() if values]
        if groups:
            await self.store(groups)

    async def _commit(
        self, consumer: AIOKafkaConsumer, fetched: Mapping[TopicPartition, Sequence[ConsumerRecord]]
    ) -> None:
        points = {tp: records[-1].offset + 1 for tp, records in fetched.items() if records}
        self._positions.update(points)
        assigned = consumer.assignment()
        offsets = {tp: OffsetAndMetadata(p, "") for tp, p in points.items() if tp in assigned}
        if not offsets:
            return
        try:
            await consumer.commit(offsets)
        except KafkaError as exc:  # a rebalance or the broker away: the batch comes again, a no-op
            log.warning("storage: commit of %d partition(s) failed: %s", len(offsets), exc)


__all__ = ["BATCH_SIZE", "StoreConsumer", "StoredTopic"]

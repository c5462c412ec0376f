"""What the copy path's direct consumers share: the executor's ``orders.requests`` consumer
(``agents/execution/intent_consumer.py``) and the fan-out's ``trade.signals`` consumer
(``agents/fanout/signal_consumer.py``).

Each is a plain aiokafka consumer in the worker's own event loop (no Faust consumer thread):
one topic, one consumer group, offsets committed by hand once the work of a record is done.
They differ in what "done" means, so each keeps its own fetch loop, progress and commits; this
base holds the rest: building the consumer on start (aiokafka wants a running loop), adopting a
Faust group's offsets on a first start, the worker's retry backoff, the fetch hand-off, and the
lag and assignment that ``/readyz``, the heartbeat and ``copytrader_consumer_lag`` read.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any, Protocol

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition

from .adopt_offsets import adopt_offsets
from .aiokafka_internals import fetch_in_flight, retry_backoff_ms


class Positions(Protocol):
    """A consumer's progress: the next offset it hands out per partition (None: none yet)."""

    def position(self, tp: TopicPartition) -> int | None: ...


class DirectConsumer(ConsumerRebalanceListener):  # type: ignore[misc]  # aiokafka ships no types; subscribe() wants this base
    """One topic, one group, manual commits; subclasses run the fetch and commit loops."""

    progress: Positions

    def __init__(
        self,
        topic: str,
        bootstrap_servers: str,
        group_id: str,
        *,
        adopt_offsets_from: str | Sequence[str] | None,
        fetch_max_wait_ms: int,
        session_timeout_ms: int,
        heartbeat_interval_ms: int,
    ) -> None:
        self.topic = topic
        self.group_id = group_id
        self.adopt_offsets_from = adopt_offsets_from
        self._bootstrap_servers = bootstrap_servers
        self._consumer_options: dict[str, Any] = dict(
            bootstrap_servers=bootstrap_servers,
            group_id=group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            fetch_max_wait_ms=fetch_max_wait_ms,
            session_timeout_ms=session_timeout_ms,
            heartbeat_interval_ms=heartbeat_interval_ms,
        )
        self._consumer: AIOKafkaConsumer | None = None  # aiokafka wants a running loop to build it

    async def _open(self) -> None:
        """Adopt the Faust group's offsets on a first start, then build, start and subscribe."""
        if self.adopt_offsets_from:
            # First start of this group on a topic the Faust agent consumed: continue where it
            # stopped (``agents/shared/adopt_offsets.py``).
            await adopt_offsets(self._bootstrap_servers, self.group_id, self.adopt_offsets_from, {self.topic})
        # The worker's retry backoff: during a broker outage the consumer waits between
        # connection attempts instead of retrying every 100 ms (agents/shared/kafka_outage.py).
        self._consumer = AIOKafkaConsumer(**self._consumer_options, retry_backoff_ms=retry_backoff_ms())
        await self._consumer.start()
        self._consumer.subscribe([self.topic], listener=self)

    def lags(self) -> dict[TopicPartition, int]:
        """Records of each assigned partition not yet handed on (broker end − next offset), for
        ``copytrader_consumer_lag``; partitions not fetched yet are left out."""
        if self._consumer is None:
            return {}
        lags = {}
        for tp in self._consumer.assignment():
            end = self._consumer.highwater(tp)
            position = self.progress.position(tp)
            if end is not None and position is not None:
                lags[tp] = max(end - position, 0)
        return lags

    def assignment(self) -> set[TopicPartition]:
        return set(self._consumer.assignment()) if self._consumer is not None else set()

    @property
    def consumer(self) -> AIOKafkaConsumer:
        assert self._consumer is not None, "start() first"
        return self._consumer

    async def _let_next_fetch_go_out(self) -> None:
        """Yield until aiokafka has written its next fetch request, then hand out the records.

        Taking the records tells aiokafka's fetch task to send the next request, but that
        task needs two or three loop turns to write it, and the work woken by these records
        would otherwise run first: at 200 followers the rest of a signal's batches then waited
        in Kafka until every lane of the first fetch had placed its order (40–90 ms). With the
        request out, the broker answers it while the records in hand are worked on.
        """
        consumer = self._consumer
        for _ in range(4):
            if consumer is None or fetch_in_flight(consumer):
                return
            await asyncio.sleep(0)

"""Follows ``leader.snapshots`` in every executor worker: the latest state of every leader.

A plain aiokafka consumer with ``group_id=None`` from the beginning, like the ``copy.controls``
feed (``agents/shared/controls_feed.py``) and for the same reason: every executor needs every
leader's latest snapshot, not a share of them. The topic is compacted, one record per leader.
A record the schema refuses is logged and skipped: a reconciler never acts on it.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from aiokafka import AIOKafkaConsumer

from ...common.retrying import keep_running
from ...core.reconcile import BrokerState
from ...core.topics import topic_name

log = logging.getLogger(__name__)
TOPIC = "leader.snapshots"


class LeaderSnapshotFeed:
    def __init__(self, bootstrap: str, prefix: str, apply: Callable[[BrokerState], Awaitable[None]]) -> None:
        self.bootstrap = bootstrap
        self.topic = topic_name(prefix, TOPIC)
        self.apply = apply
        self.refused = 0

    async def run(self) -> None:
        await keep_running(self._consume, f"{self.topic} consumer")

    async def _consume(self) -> None:
        consumer = AIOKafkaConsumer(
            self.topic,
            bootstrap_servers=self.bootstrap,
            group_id=None,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            fetch_max_wait_ms=500,
        )
        await consumer.start()
        try:
            async for message in consumer:
                await self.handle(message.offset, message.value or b"")
        finally:
            await consumer.stop()

    async def handle(self, offset: int, raw: bytes) -> bool:
        try:
            state = BrokerState.decode(raw)
        except ValueError as exc:
            self.refused += 1
            log.warning("ignored leader snapshot at offset %s: %s", offset, exc)
            return False
        await self.apply(state)
        return True

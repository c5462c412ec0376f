"""Consumer tuning Faust does not expose: the fetch wait.

Faust passes a fixed ``fetch_max_wait_ms=1500`` to aiokafka. aiokafka keeps one fetch in
flight per broker and leaves out partitions that still hold buffered records, so a new record
on such a partition can wait for that long fetch to return: a 1.5 s stall on a copy whose
budget is one second. We lower the wait on the consumer Faust built, before it starts.
"""

from __future__ import annotations

import logging
from typing import Any

from faust.transport.drivers import aiokafka as faust_aiokafka

log = logging.getLogger(__name__)
_original = faust_aiokafka.AIOKafkaConsumerThread._create_worker_consumer
_fetch_wait_ms = 1500


def apply_fetch_wait(milliseconds: int) -> None:
    """Set the fetch wait used by every worker consumer created from now on (idempotent)."""
    global _fetch_wait_ms
    _fetch_wait_ms = int(milliseconds)
    faust_aiokafka.AIOKafkaConsumerThread._create_worker_consumer = _create_worker_consumer  # type: ignore[method-assign]  # documented workaround above


def _create_worker_consumer(self: Any, transport: Any) -> Any:
    consumer = _original(self, transport)
    consumer._fetch_max_wait_ms = _fetch_wait_ms  # read by aiokafka when the fetcher starts
    log.info("worker consumer fetch_max_wait_ms=%d", _fetch_wait_ms)
    return consumer

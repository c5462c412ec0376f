"""The one place that touches aiokafka's (and Faust's aiokafka driver's) private attributes.

aiokafka offers no public way to do the three things below, so they live here, next to each
other, and ``tests/unit/test_aiokafka_internals.py`` runs them against the installed aiokafka:
an upgrade that renames an attribute fails that test instead of silently doing nothing.

1. The fetch wait of Faust's worker consumer (:func:`apply_fetch_wait`). Faust passes a fixed ``fetch_max_wait_ms=1500`` to aiokafka. aiokafka keeps one fetch in
flight per broker and leaves out partitions that still hold buffered records, so a new record
on such a partition can wait for that long fetch to return: a 1.5 s stall on a copy whose
budget is one second. We lower the wait on the consumer Faust built, before it starts.
2. A metadata refresh for a consumer with no subscription (:func:`refresh_metadata`), so
   ``copytrader table`` sees a changelog topic created after the consumer started.
3. Whether a consumer has a fetch request out (:func:`fetch_in_flight`): the executor's
   direct consumer yields until the next fetch is on the wire before its lanes run.
"""

from __future__ import annotations

import logging
from typing import Any

from aiokafka import AIOKafkaConsumer
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


def fetch_wait_of(consumer: AIOKafkaConsumer) -> int:
    """The fetch wait an aiokafka consumer will use (for the test of :func:`apply_fetch_wait`)."""
    return int(consumer._fetch_max_wait_ms)


async def refresh_metadata(consumer: AIOKafkaConsumer) -> None:
    """Ask the cluster for fresh metadata now (aiokafka has no public refresh)."""
    await consumer._client.force_metadata_update()


def fetch_in_flight(consumer: AIOKafkaConsumer) -> bool:
    """True when the consumer's fetcher has a fetch request out to some broker."""
    fetcher = getattr(consumer, "_fetcher", None)
    return bool(getattr(fetcher, "_in_flight", None))

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
4. The retry backoff of Faust's worker consumer and producer (:func:`apply_retry_backoff`):
   Faust passes none, so aiokafka retries a failed request (a broker outage: every connect,
   metadata and fetch attempt) ten times a second, each attempt a log line.
"""

from __future__ import annotations

import logging
from typing import Any

from aiokafka import AIOKafkaConsumer
from faust.transport.drivers import aiokafka as faust_aiokafka

log = logging.getLogger(__name__)
_original = faust_aiokafka.AIOKafkaConsumerThread._create_worker_consumer
_fetch_wait_ms = 1500
_retry_backoff_ms = 100  # aiokafka's default until apply_retry_backoff
_original_producer_extra = faust_aiokafka.Producer._settings_extra


def apply_fetch_wait(milliseconds: int) -> None:
    """Set the fetch wait used by every worker consumer created from now on (idempotent)."""
    global _fetch_wait_ms
    _fetch_wait_ms = int(milliseconds)
    faust_aiokafka.AIOKafkaConsumerThread._create_worker_consumer = _create_worker_consumer  # type: ignore[method-assign]  # documented workaround above


def _create_worker_consumer(self: Any, transport: Any) -> Any:
    consumer = _original(self, transport)
    consumer._fetch_max_wait_ms = _fetch_wait_ms  # read by aiokafka when the fetcher starts
    consumer._retry_backoff_ms = _retry_backoff_ms  # given to the fetcher and coordinator at start
    consumer._client._retry_backoff = _retry_backoff_ms / 1000  # the client's metadata/connect retries
    log.info("worker consumer fetch_max_wait_ms=%d", _fetch_wait_ms)
    return consumer


def apply_retry_backoff(milliseconds: int) -> None:
    """Set the retry backoff of every Faust worker consumer and producer created from now on."""
    global _retry_backoff_ms
    _retry_backoff_ms = int(milliseconds)
    faust_aiokafka.AIOKafkaConsumerThread._create_worker_consumer = _create_worker_consumer  # type: ignore[method-assign]  # documented workaround above
    faust_aiokafka.Producer._settings_extra = _producer_settings_extra  # type: ignore[method-assign]  # Faust has no setting for it


def retry_backoff_ms() -> int:
    """The worker's retry backoff, for the consumers Faust does not build (the executor's
    intent consumer, the ``copy.controls`` feed): they pass it as aiokafka's public option."""
    return _retry_backoff_ms


def _producer_settings_extra(self: Any) -> Any:
    return {"retry_backoff_ms": _retry_backoff_ms, **_original_producer_extra(self)}


def retry_backoff_of(consumer: AIOKafkaConsumer) -> tuple[int, float]:
    """A consumer's retry backoff: its own (ms) and its client's (s), for the test."""
    return int(consumer._retry_backoff_ms), float(consumer._client._retry_backoff)


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

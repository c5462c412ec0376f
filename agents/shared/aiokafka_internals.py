"""The one place that touches aiokafka's (and Faust's aiokafka driver's) private attributes.

aiokafka offers no public way to do the things below, so they live here, next to each
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
5. The bytes a fetch of Faust's worker consumer waits for (:func:`apply_fetch_min_bytes`):
   Faust passes none (aiokafka's default, one byte, answers a fetch the moment any record
   lands). A worker nothing waits on lets records gather for up to its fetch wait, so one
   round trip (a request the broker's handler threads and this process both pay for)
   carries many records instead of a few.
6. One linger per broker, not per partition (:func:`apply_node_linger`): aiokafka sends a
   partition's batch when *that* batch's linger is over, so records produced a few
   milliseconds apart to different partitions (a position, its changelog entry, a status)
   leave in as many produce requests. Once one batch for a broker is due, the batches still
   lingering for the same broker go with it in the same request.
7. Table changelogs that Faust has paused are paused in aiokafka too
   (:func:`apply_changelog_pause`). Faust pauses a partition only in its own bookkeeping (it
   stops *handing out* its records), while aiokafka keeps *fetching* every assigned partition.
   After recovery Faust pauses its tables' own changelog partitions (it wrote every record in
   them), so aiokafka went on listing each of them in every fetch until a record landed, then
   held that record, unread, until the next rebalance: the watching worker's fetches carried
   about 9 of the 20 ``broker_health`` changelog partitions (docs/benchmarks.md, session 26).
   Partitions Faust resumes (recovery, standby replicas) are resumed in aiokafka as well.
8. Whether a Faust producer still holds records its sender has not taken
   (:func:`producer_holds_records`): the fan-out plans the next signal only once the last
   one's intents are on their way, not while they wait in the producer behind the planning.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import IllegalStateError
from aiokafka.producer.message_accumulator import MessageAccumulator
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP

log = logging.getLogger(__name__)
_original = faust_aiokafka.AIOKafkaConsumerThread._create_worker_consumer
_fetch_wait_ms = 1500
_fetch_min_bytes = 1  # aiokafka's default until apply_fetch_min_bytes
_retry_backoff_ms = 100  # aiokafka's default until apply_retry_backoff
_original_producer_extra = faust_aiokafka.Producer._settings_extra
_original_drain = MessageAccumulator.drain_by_nodes
_original_pause = faust_aiokafka.Consumer.pause_partitions
_original_resume = faust_aiokafka.Consumer.resume_partitions


def apply_fetch_wait(milliseconds: int) -> None:
    """Set the fetch wait used by every worker consumer created from now on (idempotent)."""
    global _fetch_wait_ms
    _fetch_wait_ms = int(milliseconds)
    faust_aiokafka.AIOKafkaConsumerThread._create_worker_consumer = _create_worker_consumer  # type: ignore[method-assign]  # documented workaround above


def _create_worker_consumer(self: Any, transport: Any) -> Any:
    consumer = _original(self, transport)
    consumer._fetch_max_wait_ms = _fetch_wait_ms  # read by aiokafka when the fetcher starts
    consumer._fetch_min_bytes = _fetch_min_bytes  # likewise
    consumer._retry_backoff_ms = _retry_backoff_ms  # given to the fetcher and coordinator at start
    consumer._client._retry_backoff = _retry_backoff_ms / 1000  # the client's metadata/connect retries
    log.info("worker consumer fetch_max_wait_ms=%d fetch_min_bytes=%d", _fetch_wait_ms, _fetch_min_bytes)
    return consumer


def apply_fetch_min_bytes(count: int) -> None:
    """Set the fetch minimum of every worker consumer created from now on (idempotent)."""
    global _fetch_min_bytes
    if count < 1:
        raise ValueError(f"fetch_min_bytes must be at least 1, got {count!r}")
    _fetch_min_bytes = int(count)
    faust_aiokafka.AIOKafkaConsumerThread._create_worker_consumer = _create_worker_consumer  # type: ignore[method-assign]  # documented workaround above


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


def fetch_min_bytes_of(consumer: AIOKafkaConsumer) -> int:
    """The fetch minimum an aiokafka consumer will use (for the test of :func:`apply_fetch_min_bytes`)."""
    return int(consumer._fetch_min_bytes)


async def refresh_metadata(consumer: AIOKafkaConsumer) -> None:
    """Ask the cluster for fresh metadata now (aiokafka has no public refresh)."""
    await consumer._client.force_metadata_update()


def fetch_in_flight(consumer: AIOKafkaConsumer) -> bool:
    """True when the consumer's fetcher has a fetch request out to some broker."""
    fetcher = getattr(consumer, "_fetcher", None)
    return bool(getattr(fetcher, "_in_flight", None))


def apply_watching(fetch_min_bytes: int, *, node_linger: bool) -> None:
    """A worker's fetch minimum (item 5) and whether its producers linger per broker (item 6):
    ``Settings.faust_fetch_min_bytes`` and ``Settings.watching_only``."""
    apply_fetch_min_bytes(fetch_min_bytes)
    apply_node_linger(node_linger)


def apply_node_linger(enabled: bool) -> None:
    """From now on, every producer of this process sends a broker's lingering batches along
    with its first due one (item 6 above), or, ``enabled=False``, aiokafka's own way again
    (idempotent). A batch may leave before its own linger is over, never after."""
    MessageAccumulator.drain_by_nodes = _drain_by_nodes if enabled else _original_drain  # documented workaround above


def _drain_by_nodes(self: Any, ignore_nodes: Any, muted_partitions: Any = frozenset()) -> Any:
    nodes, unknown_leaders_exist = _original_drain(self, ignore_nodes, muted_partitions)
    if nodes:
        for tp in list(self._batches):
            leader = self._cluster.leader_for_partition(tp)
            if leader in nodes and tp not in muted_partitions and tp not in nodes[leader]:
                batch = self._pop_batch(tp)
                if batch.is_empty():
                    batch.done_noack()  # as aiokafka does with an empty batch
                else:
                    nodes[leader][tp] = batch
    return nodes, unknown_leaders_exist


def apply_changelog_pause() -> None:
    """From now on, a table changelog partition that Faust's worker consumer pauses or resumes
    is paused or resumed in its aiokafka consumer as well (item 7 above; idempotent)."""
    faust_aiokafka.Consumer.pause_partitions = _pause_partitions  # type: ignore[method-assign]  # documented workaround above
    faust_aiokafka.Consumer.resume_partitions = _resume_partitions  # type: ignore[method-assign]  # documented workaround above


def _pause_partitions(self: Any, tps: Iterable[TP]) -> None:
    tps = set(tps)
    _original_pause(self, tps)
    _mirror(self, tps, paused=True)


def _resume_partitions(self: Any, tps: Iterable[TP]) -> None:
    tps = set(tps)
    _original_resume(self, tps)
    _mirror(self, tps, paused=False)


def _mirror(faust_consumer: Any, tps: set[TP], *, paused: bool) -> None:
    """Pause or resume ``tps``' changelog partitions in the aiokafka consumer, in the thread
    that runs it (aiokafka's pause makes a future on that thread's loop). Calls keep their
    order there, so the last word Faust said about a partition is the one that holds."""
    changelogs = [TopicPartition(tp.topic, tp.partition) for tp in tps if faust_consumer._is_changelog_tp(tp)]
    thread = getattr(faust_consumer, "_thread", None)
    consumer = getattr(thread, "_consumer", None)
    loop = getattr(thread, "thread_loop", None)
    if not changelogs or consumer is None or loop is None or loop.is_closed():
        return
    loop.call_soon_threadsafe(_set_paused, consumer, changelogs, paused)


def _set_paused(consumer: AIOKafkaConsumer, tps: list[TopicPartition], paused: bool) -> None:
    assigned = consumer.assignment()
    mine = [tp for tp in tps if tp in assigned]  # one revoked meanwhile has no state to pause
    try:
        if paused:
            consumer.pause(*mine)
        else:
            consumer.resume(*mine)
    except IllegalStateError:  # revoked between the two lines above: the next assignment starts unpaused
        log.debug("changelog partitions %s changed assignment before %s", mine, "pause" if paused else "resume")


def changelogs_paused_in(consumer: AIOKafkaConsumer) -> set[TopicPartition]:
    """The partitions an aiokafka consumer will leave out of its fetches (for the tests)."""
    return set(consumer.paused())


def producer_holds_records(producer: Any) -> bool:
    """True while a Faust producer's aiokafka producer holds batches its sender has not taken
    (item 8 above). False for a producer not started yet."""
    inner = getattr(producer, "_producer", None)
    accumulator = getattr(inner, "_message_accumulator", None)
    return bool(getattr(accumulator, "_batches", None))

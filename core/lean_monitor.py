"""Faust's Prometheus sensor without its per-record price.

Why: Faust calls its monitor four times for every record a stream takes (message in, event
in, event out, message out), and ``PrometheusMonitor`` answers each call with the base
monitor's bookkeeping plus two to four ``prometheus_client`` label lookups and locked
increments. Measured on this project's ``Execution`` records (docs/benchmarks.md, "What a
record costs in Faust"), one Faust agent took about 360 µs of CPU per record with a silent
monitor and about 480 µs with ``PrometheusMonitor``: a quarter of every Faust stage's cost,
on the copy path (fan-out) too.

This monitor keeps the same series and names, so the Grafana dashboard and the scrape do not
change, and pays per record only a dictionary increment:

- records received per topic, events per stream, and each partition's last read offset are
  counted in plain dictionaries and added to the Prometheus series after each offset commit
  (every ``broker_commit_interval`` while records flow) and at every scrape's flush;
- one event in :data:`RUNTIME_SAMPLE_EVERY` is timed for ``events_runtime_ms`` (a
  distribution, which a sample describes as well as every event, at a fraction of the cost);
- the "active" gauges (records and events in flight at one instant) are not kept: on a
  stream that does not await per record they were 0 or 1 at any scrape;
- sends are counted per topic the same way (one in :data:`RUNTIME_SAMPLE_EVERY` timed for
  ``producer_send_latency``), and table reads and writes per table and operation.

Everything else (commits, sends, rebalances, tables, end offsets for the consumer lag) is
Faust's own code, unchanged.
"""

from __future__ import annotations

import weakref
from collections import Counter
from typing import Any

from faust.sensors.prometheus import PrometheusMonitor

#: One event in this many is timed for the runtime histogram.
RUNTIME_SAMPLE_EVERY = 16
_monitors: weakref.WeakSet[LeanPrometheusMonitor] = weakref.WeakSet()


def flush_all() -> None:
    """Bring every lean monitor's series up to date (called before each scrape renders)."""
    for monitor in list(_monitors):
        monitor.flush()


class LeanPrometheusMonitor(PrometheusMonitor):
    """:class:`PrometheusMonitor` with per-record counting batched; see the module docstring."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._received: Counter[str] = Counter()
        self._events: Counter[Any] = Counter()  # stream → events since the last flush
        self._read_offsets: dict[Any, int] = {}  # tp → last offset handed to a stream
        self._sent: Counter[str] = Counter()  # topic → records handed to the producer
        self._sent_done = 0
        self._table_ops: Counter[tuple[str, str]] = Counter()  # (table, operation) → count
        self._until_sample = RUNTIME_SAMPLE_EVERY
        self._until_send_sample = RUNTIME_SAMPLE_EVERY
        _monitors.add(self)

    # -- per record: counting only ----------------------------------------------------------
    def on_message_in(self, tp: Any, offset: int, message: Any) -> None:
        self._received[tp.topic] += 1
        self._read_offsets[tp] = offset

    def on_stream_event_in(self, tp: Any, offset: int, stream: Any, event: Any) -> dict[str, Any] | None:
        self._events[stream] += 1
        self._until_sample -= 1
        if self._until_sample > 0:
            return None
        self._until_sample = RUNTIME_SAMPLE_EVERY
        return {"time_in": self.time()}

    def on_stream_event_out(
        self, tp: Any, offset: int, stream: Any, event: Any, state: dict[str, Any] | None = None
    ) -> None:
        if state is not None:
            self._metrics.events_runtime_latency.observe(self.secs_to_ms(self.time() - state["time_in"]))

    def on_message_out(self, tp: Any, offset: int, message: Any) -> None:
        return None

    def on_send_initiated(self, producer: Any, topic: str, message: Any, keysize: int, valsize: int) -> float | None:
        self._sent[topic] += 1
        self._until_send_sample -= 1
        if self._until_send_sample > 0:
            return None
        self._until_send_sample = RUNTIME_SAMPLE_EVERY
        return float(self.time())

    def on_send_completed(self, producer: Any, state: Any, metadata: Any) -> None:
        self._sent_done += 1
        if state is not None:
            self._metrics.producer_send_latency.observe(self.ms_since(state))

    def on_table_get(self, table: Any, key: Any) -> None:
        self._table_ops[(table.name, self.KEYS_RETRIEVED)] += 1

    def on_table_set(self, table: Any, key: Any, value: Any) -> None:
        self._table_ops[(table.name, self.KEYS_UPDATED)] += 1

    def on_table_del(self, table: Any, key: Any) -> None:
        self._table_ops[(table.name, self.KEYS_DELETED)] += 1

    # -- batched into the Prometheus series ---------------------------------------------------
    def on_commit_completed(self, consumer: Any, state: Any) -> None:
        super().on_commit_completed(consumer, state)
        self.flush()

    def flush(self) -> None:
        """Add what was counted since the last flush to the Prometheus series."""
        received, self._received = self._received, Counter()
        events, self._events = self._events, Counter()
        offsets, self._read_offsets = self._read_offsets, {}
        metrics = self._metrics
        total = sum(received.values())
        if total:
            self.messages_received_total += total
            metrics.messages_received.inc(total)
        for topic, count in received.items():
            self.messages_received_by_topic[topic] += count
            metrics.messages_received_per_topics.labels(topic=topic).inc(count)
        for tp, offset in offsets.items():
            self.tp_read_offsets[tp] = offset
            metrics.messages_received_per_topics_partition.labels(topic=tp.topic, partition=tp.partition).set(offset)
        count_events = sum(events.values())
        if count_events:
            self.events_total += count_events
            metrics.total_events.inc(count_events)
        for stream, count in events.items():
            metrics.total_events_per_stream.labels(stream=f"stream.{self._stream_label(stream)}.events").inc(count)
        sent, self._sent = self._sent, Counter()
        for topic, count in sent.items():
            self.messages_sent += count
            self.messages_sent_by_topic[topic] += count
            metrics.topic_messages_sent.labels(topic=f"topic.{topic}").inc(count)
        done, self._sent_done = self._sent_done, 0
        if done:
            metrics.total_sent_messages.inc(done)
        table_ops, self._table_ops = self._table_ops, Counter()
        for (table, operation), count in table_ops.items():
            metrics.table_operations.labels(table=f"table.{table}", operation=operation).inc(count)

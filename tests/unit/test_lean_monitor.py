"""The lean Faust sensor: the same Prometheus series as Faust's own, counted per record in
dictionaries and added to the series at a commit or a scrape."""

from __future__ import annotations

from typing import Any

from faust.sensors.prometheus import FaustMetrics
from faust.types import TP
from prometheus_client import CollectorRegistry

from copytrader.core.lean_monitor import RUNTIME_SAMPLE_EVERY, LeanPrometheusMonitor, flush_all

PREFIX = "lean_test"


def monitor() -> tuple[LeanPrometheusMonitor, CollectorRegistry]:
    registry = CollectorRegistry()
    return LeanPrometheusMonitor(metrics=FaustMetrics.create(registry, PREFIX)), registry


class FakeStream:
    """What the monitor reads of a Faust stream: hashable, with a label."""

    def __init__(self, label: str) -> None:
        self.shortlabel = f"Stream: {label}"


def stream(label: str) -> Any:
    return FakeStream(label)


def take(sensor: LeanPrometheusMonitor, tp: TP, offset: int, on: Any) -> None:
    """What Faust's conductor and stream call for one record."""
    sensor.on_message_in(tp, offset, object())
    state = sensor.on_stream_event_in(tp, offset, on, object())
    sensor.on_stream_event_out(tp, offset, on, object(), state)
    sensor.on_message_out(tp, offset, object())


def test_records_reach_the_series_at_a_commit_not_per_record() -> None:
    sensor, registry = monitor()
    executions, errors = TP("t.executions", 3), TP("t.errors", 0)
    tracker = stream("tracker")
    for offset in range(40):
        take(sensor, executions, offset, tracker)
    take(sensor, errors, 7, tracker)
    assert registry.get_sample_value(f"{PREFIX}_messages_received_total") == 0  # not yet
    sensor.on_commit_completed(object(), sensor.on_commit_initiated(object()))
    assert registry.get_sample_value(f"{PREFIX}_messages_received_total") == 41
    per_topic = f"{PREFIX}_messages_received_per_topic_total"
    assert registry.get_sample_value(per_topic, {"topic": "t.executions"}) == 40
    assert registry.get_sample_value(per_topic, {"topic": "t.errors"}) == 1
    offsets = f"{PREFIX}_messages_received_per_topics_partition"
    assert registry.get_sample_value(offsets, {"topic": "t.executions", "partition": "3"}) == 39
    assert registry.get_sample_value(f"{PREFIX}_total_events_total") == 41
    per_stream = f"{PREFIX}_total_events_per_stream_total"
    assert registry.get_sample_value(per_stream, {"stream": "stream.tracker.events"}) == 41
    assert sensor.messages_received_total == 41 and sensor.tp_read_offsets[executions] == 39
    # one event in RUNTIME_SAMPLE_EVERY is timed
    assert registry.get_sample_value(f"{PREFIX}_events_runtime_ms_count") == 41 // RUNTIME_SAMPLE_EVERY
    # a second flush adds only what came after the first
    take(sensor, errors, 8, tracker)
    flush_all()  # what a scrape does
    assert registry.get_sample_value(f"{PREFIX}_messages_received_total") == 42


class FakeTable:
    name = "positions"


def test_sends_and_table_operations_reach_the_series_at_a_flush() -> None:
    sensor, registry = monitor()
    for _ in range(2 * RUNTIME_SAMPLE_EVERY):
        state = sensor.on_send_initiated(object(), "t.positions", object(), 1, 10)
        sensor.on_send_completed(object(), state, object())
    table = FakeTable()
    sensor.on_table_get(table, "k")
    sensor.on_table_set(table, "k", 1)
    sensor.on_table_set(table, "k", 2)
    sent = f"{PREFIX}_topic_messages_sent_total"
    assert registry.get_sample_value(sent, {"topic": "topic.t.positions"}) is None  # not per record
    flush_all()
    assert registry.get_sample_value(sent, {"topic": "topic.t.positions"}) == 2 * RUNTIME_SAMPLE_EVERY
    assert registry.get_sample_value(f"{PREFIX}_total_sent_messages_total") == 2 * RUNTIME_SAMPLE_EVERY
    assert registry.get_sample_value(f"{PREFIX}_producer_send_latency_count") == 2  # one in 16 timed
    ops = f"{PREFIX}_table_operations_total"
    assert registry.get_sample_value(ops, {"table": "table.positions", "operation": "keys_retrieved"}) == 1
    assert registry.get_sample_value(ops, {"table": "table.positions", "operation": "keys_updated"}) == 2
    assert sensor.messages_sent == 2 * RUNTIME_SAMPLE_EVERY

"""core/metrics.py: every helper moves its series; Faust's sensor shares the scrape."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any, cast

import faust
import pytest
from aiohttp import web
from faust.types import TP
from prometheus_client import REGISTRY, CollectorRegistry

from copytrader.brokers.errors import BrokerUnavailable, OrderRejected, RateLimited
from copytrader.core import metrics


def value(name: str, **labels: str) -> float:
    """Current sample value in the default registry; 0.0 when the series does not exist yet."""
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_observe_stage_counts_and_sums() -> None:
    before_count = value("copytrader_stage_latency_seconds_count", stage="send")
    before_sum = value("copytrader_stage_latency_seconds_sum", stage="send")
    before_le = value("copytrader_stage_latency_seconds_bucket", stage="send", le="0.005")

    metrics.observe_stage("send", 0.004)

    assert value("copytrader_stage_latency_seconds_count", stage="send") == before_count + 1
    assert value("copytrader_stage_latency_seconds_sum", stage="send") == pytest.approx(before_sum + 0.004)
    assert value("copytrader_stage_latency_seconds_bucket", stage="send", le="0.005") == before_le + 1


def test_all_stages_exist_before_first_observation() -> None:
    for stage in metrics.STAGES:
        assert REGISTRY.get_sample_value("copytrader_stage_latency_seconds_count", {"stage": stage}) is not None


def test_buckets_span_half_a_millisecond_to_five_seconds() -> None:
    assert metrics.LATENCY_BUCKETS[0] == 0.0005
    assert metrics.LATENCY_BUCKETS[-1] == 5.0
    assert list(metrics.LATENCY_BUCKETS) == sorted(metrics.LATENCY_BUCKETS)


def test_observe_stage_between_clamps_clock_skew() -> None:
    t0 = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    before = value("copytrader_stage_latency_seconds_count", stage="e2e")
    before_sum = value("copytrader_stage_latency_seconds_sum", stage="e2e")

    assert metrics.observe_stage_between("e2e", t0, t0 + timedelta(milliseconds=12)) == pytest.approx(0.012)
    assert metrics.observe_stage_between("e2e", t0, t0 - timedelta(milliseconds=3)) == 0.0

    assert value("copytrader_stage_latency_seconds_count", stage="e2e") == before + 2
    assert value("copytrader_stage_latency_seconds_sum", stage="e2e") == pytest.approx(before_sum + 0.012)


@pytest.mark.parametrize(
    ("call", "args"),
    [
        (metrics.observe_stage, ("detcet", 0.1)),
        (metrics.observe_broker_call, ("paper", "submit", 0.1)),
        (metrics.count_order, ("paper", "ok")),
        (metrics.set_circuit_state, ("s1", "ajar")),
        (metrics.set_circuit_state, ("s1", 3)),
    ],
)
def test_typos_in_fixed_vocabularies_raise(call: object, args: tuple[object, ...]) -> None:
    with pytest.raises(ValueError):
        call(*args)  # type: ignore[operator]  # parametrised callables


def test_a_typo_is_refused_every_time_never_cached() -> None:
    for _ in range(2):
        with pytest.raises(ValueError):
            metrics.count_order("paper", "ok")
        with pytest.raises(ValueError):
            metrics.observe_stage("detcet", 0.1)


def test_cached_children_are_the_series_labels_returns() -> None:
    """The executor's per-copy calls reuse the child: the same series, counted each time."""
    placed = value("copytrader_orders_total", platform="cached", outcome="placed")
    e2e = value("copytrader_stage_latency_seconds_count", stage="e2e")
    for _ in range(3):
        metrics.count_order("cached", "placed")
        metrics.observe_stage("e2e", 0.001)
    assert value("copytrader_orders_total", platform="cached", outcome="placed") == placed + 3
    assert value("copytrader_stage_latency_seconds_count", stage="e2e") == e2e + 3
    assert metrics._orders_child("cached", "placed") is metrics.ORDERS_TOTAL.labels(platform="cached", outcome="placed")


def test_time_broker_call_records_failures_too() -> None:
    labels = {"platform": "paper", "operation": "cancel"}
    before = value("copytrader_broker_call_seconds_count", **labels)

    with metrics.time_broker_call("paper", "cancel"):
        pass
    with pytest.raises(BrokerUnavailable), metrics.time_broker_call("paper", "cancel"):
        raise BrokerUnavailable("down")

    assert value("copytrader_broker_call_seconds_count", **labels) == before + 2


def test_counters() -> None:
    orders = value("copytrader_orders_total", platform="paper", outcome="duplicate")
    fills = value("copytrader_fills_total", platform="paper")
    signals = value("copytrader_signals_total", kind="new", outcome="accepted")

    metrics.count_order("paper", "duplicate")
    metrics.count_fill("paper")
    metrics.count_fill("paper", 2)
    metrics.count_signal("new", "accepted")

    assert value("copytrader_orders_total", platform="paper", outcome="duplicate") == orders + 1
    assert value("copytrader_fills_total", platform="paper") == fills + 3
    assert value("copytrader_signals_total", kind="new", outcome="accepted") == signals + 1


def test_rejects_are_bucketed_into_reason_classes() -> None:
    rejected = value("copytrader_rejects_total", platform="paper", reason_class="rejected")
    other = value("copytrader_rejects_total", platform="paper", reason_class="other")

    metrics.count_reject("paper", metrics.reason_class_of(OrderRejected("margin")))
    metrics.count_reject("paper", "Insufficient margin for 3 lots on ESZ6")  # free text: bounded

    assert value("copytrader_rejects_total", platform="paper", reason_class="rejected") == rejected + 1
    assert value("copytrader_rejects_total", platform="paper", reason_class="other") == other + 1
    assert metrics.reason_class_of(RateLimited("slow down")) == "rate_limited"
    assert metrics.reason_class_of(KeyError("x")) == "internal"


def test_gauges() -> None:
    metrics.set_circuit_state("sess-a", "half_open")
    assert value("copytrader_circuit_state", session="sess-a") == 1
    metrics.on_circuit_change("sess-a", "half_open", "open")
    assert value("copytrader_circuit_state", session="sess-a") == 2
    metrics.set_circuit_state("sess-a", 0)
    assert value("copytrader_circuit_state", session="sess-a") == 0

    metrics.set_broker_connected("sess-a", "paper", True)
    assert value("copytrader_broker_connected", session="sess-a", platform="paper") == 1
    metrics.set_broker_connected("sess-a", "paper", False)
    assert value("copytrader_broker_connected", session="sess-a", platform="paper") == 0

    metrics.set_rate_headroom("sess-a", 0.25)
    assert value("copytrader_rate_headroom", session="sess-a") == 0.25
    metrics.set_rate_headroom("sess-a", 1.7)
    assert value("copytrader_rate_headroom", session="sess-a") == 1.0

    metrics.set_consumer_lag("trade.signals", 2, 41)
    assert value("copytrader_consumer_lag", topic="trade.signals", partition="2") == 41


def test_record_consumer_lag_from_faust_monitor_offsets() -> None:
    tp0, tp1, tp2 = (TP("orders.requests", n) for n in range(3))
    monitor = SimpleNamespace(tp_end_offsets={tp0: 120, tp1: 7, tp2: 50}, tp_committed_offsets={tp0: 100, tp1: 7})

    assert metrics.record_consumer_lag(monitor) == 2
    assert value("copytrader_consumer_lag", topic="orders.requests", partition="0") == 20
    assert value("copytrader_consumer_lag", topic="orders.requests", partition="1") == 0
    # not committed yet on this worker: no series rather than a false spike
    assert REGISTRY.get_sample_value("copytrader_consumer_lag", {"topic": "orders.requests", "partition": "2"}) is None


def test_forget_session_removes_its_gauges() -> None:
    metrics.set_circuit_state("gone", "open")
    metrics.set_broker_connected("gone", "paper", True)
    metrics.set_rate_headroom("gone", 0.5)

    metrics.forget_session("gone", "paper")
    metrics.forget_session("gone", "paper")  # twice is fine

    assert REGISTRY.get_sample_value("copytrader_circuit_state", {"session": "gone"}) is None
    assert REGISTRY.get_sample_value("copytrader_broker_connected", {"session": "gone", "platform": "paper"}) is None
    assert REGISTRY.get_sample_value("copytrader_rate_headroom", {"session": "gone"}) is None


def _app(name: str) -> faust.App:
    return faust.App(name, broker="kafka://127.0.0.1:1", store="memory://")


def _web_app(app: faust.App) -> web.Application:
    # ``web_app`` belongs to Faust's aiohttp driver, not to the abstract ``Web`` it is typed as.
    return cast(web.Application, cast(Any, app.web).web_app)


def _routes(app: faust.App) -> set[str]:
    return {route.resource.canonical for route in _web_app(app).router.routes() if route.resource is not None}


def test_setup_metrics_installs_faust_sensor_and_route() -> None:
    from faust.sensors.prometheus import PrometheusMonitor

    registry = CollectorRegistry()
    app = _app("metrics-test-a")

    metrics.setup_metrics(app, registry=registry)
    metrics.setup_metrics(app, registry=registry)  # idempotent for one app

    assert isinstance(app.monitor, PrometheusMonitor)
    assert "/metrics" in _routes(app)
    app.monitor.count("probe")
    assert registry.get_sample_value("copytrader_faust_metrics_by_name", {"metric": "probe"}) == 1
    assert registry.get_sample_value("copytrader_faust_messages_received_total") == 0


def test_second_app_on_same_registry_shares_the_faust_series() -> None:
    registry = CollectorRegistry()
    first, second = _app("metrics-test-b"), _app("metrics-test-c")

    metrics.setup_metrics(first, registry=registry)
    metrics.setup_metrics(second, registry=registry)  # would raise "Duplicated timeseries" naively

    assert "/metrics" in _routes(second)
    second.monitor.count("probe")
    assert registry.get_sample_value("copytrader_faust_metrics_by_name", {"metric": "probe"}) == 1


async def test_metrics_page_serves_faust_and_copytrader_series() -> None:
    """The default registry is what the worker serves: both families on one scrape."""
    from aiohttp.test_utils import TestClient, TestServer

    app = _app("metrics-test-d")
    metrics.setup_metrics(app)  # default REGISTRY, as in production
    metrics.count_order("paper", "placed")

    async with TestClient(TestServer(_web_app(app))) as client:
        response = await client.get("/metrics")
        body = await response.text()

    assert response.status == 200
    assert 'copytrader_orders_total{outcome="placed",platform="paper"}' in body
    assert "copytrader_faust_messages_received_total" in body
    assert "copytrader_stage_latency_seconds_bucket" in body

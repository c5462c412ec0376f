"""CopyTrader's Prometheus metrics: defined once here, observed from the agents.

Why the default registry: Faust's own Prometheus sensor serves ``generate_latest(registry)``
on ``/metrics``; with both on ``prometheus_client.REGISTRY`` one scrape returns Faust's
consumer/producer series and ours together, and the Grafana dashboard
(``grafana/copytrader-dashboard.json``) reads both.

Label values that come from a fixed vocabulary (stage, broker operation, order outcome) are
checked: a typo would otherwise create a series no panel shows, and the first test run of the
calling agent catches it. Reject reasons are bucketed into ``REASON_CLASSES`` so a broker's
free-text message can never explode the series count.

A hot path (the executor's lane) observes through tallies (``stage_tally`` and its siblings,
``core/metric_tally.py``): the same series, counted in plain Python and added to them by
:func:`flush`, which every page calls before it renders the registry.

Faust's sensor names its series ``<prefix>_<name>``; the prefix is fixed here
(``FAUST_METRICS_PREFIX``) rather than taken from the app id, so the dashboard does not depend
on ``COPYTRADER_APP_ID``. Faust observes its latencies in milliseconds, ours in seconds.
"""

from __future__ import annotations

import time
import weakref
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from datetime import datetime
from functools import cache
from typing import TYPE_CHECKING, Any, Final, Generic, TypeVar, cast

from aiohttp.web import Application, AppRunner, Request, Response, TCPSite
from faust import web
from faust.sensors.prometheus import FaustMetrics
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

from ..brokers.errors import (
    AuthenticationFailed,
    BrokerError,
    BrokerUnavailable,
    CircuitOpen,
    OrderRejected,
    RateLimited,
    TokenExpired,
    UnknownOrder,
    UnsupportedOperation,
)
from .lean_monitor import LeanPrometheusMonitor, flush_all
from .metric_tally import CounterTally, HistogramTally, flush_tallies

if TYPE_CHECKING:
    from faust.types import AppT

__all__ = [
    "BROKER_CALL_SECONDS",
    "BROKER_CONNECTED",
    "BROKER_OPERATIONS",
    "CIRCUIT_STATE",
    "CIRCUIT_STATES",
    "CONSUMER_LAG",
    "FAUST_METRICS_PREFIX",
    "broker_call_tally",
    "FILLS_TOTAL",
    "ORDERS_TOTAL",
    "ORDER_OUTCOMES",
    "RATE_HEADROOM",
    "REASON_CLASSES",
    "REJECTS_TOTAL",
    "SIGNALS_TOTAL",
    "STAGES",
    "STAGE_LATENCY_SECONDS",
    "count_fill",
    "count_order",
    "count_reject",
    "count_signal",
    "flush",
    "forget_session",
    "observe_broker_call",
    "observe_stage",
    "observe_stage_between",
    "orders_tally",
    "on_circuit_change",
    "reason_class_of",
    "record_consumer_lag",
    "set_broker_connected",
    "set_circuit_state",
    "set_consumer_lag",
    "set_rate_headroom",
    "setup_metrics",
    "stage_tally",
    "time_broker_call",
]

FAUST_METRICS_PREFIX: Final = "copytrader_faust"

STAGES: Final = ("detect", "publish", "fanout", "send", "ack", "fill", "internal", "e2e")
BROKER_OPERATIONS: Final = ("place", "modify", "cancel", "flatten", "snapshot")
ORDER_OUTCOMES: Final = ("placed", "duplicate", "rejected", "error", "skipped")
CIRCUIT_STATES: Final[Mapping[str, int]] = {"closed": 0, "half_open": 1, "open": 2}
REASON_CLASSES: Final = (
    "rejected",  # the broker said no (risk, price, market closed)
    "unknown_order",
    "auth",
    "unsupported",
    "rate_limited",
    "token_expired",
    "unavailable",
    "circuit_open",
    "broker_error",  # any other adapter error
    "invalid",  # the order cannot be sent as is (unknown contract, bad parameters)
    "guard",  # our own risk guard blocked the copy
    "malformed",  # bad input: a signal or intent that failed validation
    "internal",  # a bug or an unexpected exception on our side
    "other",
)

# 0.5 ms … 5 s: an in-process hop is sub-millisecond, a Kafka hop a few ms, a broker
# round trip tens to hundreds of ms; past 5 s a copy has failed in practice.
LATENCY_BUCKETS: Final = (
    0.0005, 0.001, 0.002, 0.005, 0.0075, 0.01, 0.015, 0.025, 0.05, 0.075,
    0.1, 0.15, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0,
)  # fmt: skip
# Broker calls include TLS, REST and token refresh: same low end, longer tail.
BROKER_CALL_BUCKETS: Final = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)  # fmt: skip

STAGE_LATENCY_SECONDS: Final = Histogram(
    "copytrader_stage_latency_seconds",
    "Latency of one copy stage (detect, publish, fanout, send, ack, fill, internal, e2e).",
    ["stage"],
    buckets=LATENCY_BUCKETS,
)
BROKER_CALL_SECONDS: Final = Histogram(
    "copytrader_broker_call_seconds",
    "Duration of one adapter call to a broker platform, failures included.",
    ["platform", "operation"],
    buckets=BROKER_CALL_BUCKETS,
)
ORDERS_TOTAL: Final = Counter(
    "copytrader_orders_total",
    "Follower order intents handled, by outcome.",
    ["platform", "outcome"],
)
FILLS_TOTAL: Final = Counter("copytrader_fills_total", "Fills (full or partial) received from brokers.", ["platform"])
FILL_CORRECTIONS_TOTAL: Final = Counter(
    "copytrader_fill_corrections_total", "Fills the broker busted or corrected afterwards.", ["platform", "kind"]
)
REJECTS_TOTAL: Final = Counter(
    "copytrader_rejects_total",
    "Orders that failed or were blocked, by coarse reason class.",
    ["platform", "reason_class"],
)
CIRCUIT_STATE: Final = Gauge(
    "copytrader_circuit_state",
    "Circuit breaker state per broker session: 0 closed, 1 half-open, 2 open.",
    ["session"],
)
CONSUMER_LAG: Final = Gauge(
    "copytrader_consumer_lag",
    "Records between the partition's end offset and this worker's committed offset.",
    ["topic", "partition"],
)
BROKER_CONNECTED: Final = Gauge(
    "copytrader_broker_connected",
    "1 while the broker session is connected and authenticated, else 0.",
    ["session", "platform"],
)
SIGNALS_TOTAL: Final = Counter(
    "copytrader_signals_total", "Leader trade signals handled, by outcome.", ["kind", "outcome"]
)
RATE_HEADROOM: Final = Gauge(
    "copytrader_rate_headroom",
    "Fraction of the session's broker request budget still available (0..1).",
    ["session"],
)

for _stage in STAGES:  # pre-create so panels show 0, not "no data", before the first copy
    STAGE_LATENCY_SECONDS.labels(stage=_stage)


def _check(value: str, allowed: tuple[str, ...], label: str) -> str:
    if value not in allowed:
        raise ValueError(f"{label}={value!r} is not one of {allowed}")
    return value


M = TypeVar("M", Counter, Gauge, Histogram)


class _Children(Generic[M]):
    """The labelled children of one metric, looked up once per label values.

    Why: ``labels()`` validates, builds and hashes its key under a lock on every call, which
    the executor paid four times per copy; a dictionary hit costs a fraction of that. The
    child is the very object ``labels()`` returns, so the series and values are unchanged.
    ``check`` runs before a value's first use: a bad value is refused every time, never
    cached. Only for metrics whose children are never removed (not the session gauges).
    """

    def __init__(self, metric: M, check: Callable[[tuple[str, ...]], object] | None = None) -> None:
        self._metric: M = metric
        self._check = check
        self._cache: dict[tuple[str, ...], M] = {}

    def __call__(self, *values: str) -> M:
        child = self._cache.get(values)
        if child is None:
            if self._check is not None:
                self._check(values)
            child = self._cache[values] = self._metric.labels(*values)
        return child


_stage_child = _Children(STAGE_LATENCY_SECONDS, lambda values: _check(values[0], STAGES, "stage"))
_broker_call_child = _Children(BROKER_CALL_SECONDS, lambda values: _check(values[1], BROKER_OPERATIONS, "operation"))
_orders_child = _Children(ORDERS_TOTAL, lambda values: _check(values[1], ORDER_OUTCOMES, "outcome"))
_fills_child = _Children(FILLS_TOTAL)
_rejects_child = _Children(REJECTS_TOTAL)
_signals_child = _Children(SIGNALS_TOTAL)


def observe_stage(stage: str, seconds: float) -> None:
    """Record one stage duration; negative values (clock skew across hosts) count as 0."""
    _stage_child(stage).observe(max(seconds, 0.0))


def observe_stage_between(stage: str, start: datetime, end: datetime) -> float:
    """Record the gap between two stage timestamps a record carries; returns the seconds."""
    seconds = max((end - start).total_seconds(), 0.0)
    observe_stage(stage, seconds)
    return seconds


def observe_broker_call(platform: str, operation: str, seconds: float) -> None:
    _broker_call_child(platform, operation).observe(max(seconds, 0.0))


@cache
def stage_tally(stage: str) -> HistogramTally:
    """``observe_stage(stage, ...)`` for a hot path: the same series, counted until the next
    scrape (``core/metric_tally.py``). A bad stage is refused every time, never cached."""
    return HistogramTally(_stage_child(stage))


@cache
def broker_call_tally(platform: str, operation: str) -> HistogramTally:
    """``observe_broker_call(platform, operation, ...)`` for a hot path (see :func:`stage_tally`)."""
    return HistogramTally(_broker_call_child(platform, operation))


@cache
def orders_tally(platform: str, outcome: str) -> CounterTally:
    """``count_order(platform, outcome)`` for a hot path (see :func:`stage_tally`)."""
    return CounterTally(_orders_child(platform, outcome))


def flush() -> None:
    """Bring every batched series up to date (the lean Faust monitors', the tallies'): what a
    page calls before it renders the registry."""
    flush_all()
    flush_tallies()


@contextmanager
def time_broker_call(platform: str, operation: str) -> Iterator[None]:
    """``with time_broker_call("tradovate", "place"): await adapter.place(...)``.

    Failed calls are timed too: a broker that times out after 5 s must show in the tail.
    """
    _check(operation, BROKER_OPERATIONS, "operation")
    start = time.perf_counter()
    try:
        yield
    finally:
        observe_broker_call(platform, operation, time.perf_counter() - start)


def count_order(platform: str, outcome: str) -> None:
    _orders_child(platform, outcome).inc()


def count_fill(platform: str, fills: int = 1) -> None:
    _fills_child(platform).inc(fills)


def count_fill_correction(platform: str, kind: str) -> None:
    """A bust or correction of an earlier fill: counted apart, never as another fill."""
    FILL_CORRECTIONS_TOTAL.labels(platform=platform, kind=kind).inc()


def reason_class_of(exc: BaseException) -> str:
    """Map an exception to a ``REASON_CLASSES`` entry (most specific class first)."""
    table: tuple[tuple[type[BaseException], str], ...] = (
        (OrderRejected, "rejected"),
        (UnknownOrder, "unknown_order"),
        (AuthenticationFailed, "auth"),
        (UnsupportedOperation, "unsupported"),
        (RateLimited, "rate_limited"),
        (TokenExpired, "token_expired"),
        (BrokerUnavailable, "unavailable"),
        (CircuitOpen, "circuit_open"),
        (BrokerError, "broker_error"),
    )
    for cls, name in table:
        if isinstance(exc, cls):
            return name
    return "internal"


def count_reject(platform: str, reason_class: str) -> None:
    """Count a reject; an unknown ``reason_class`` is recorded as ``other`` (bounded labels)."""
    reason = reason_class if reason_class in REASON_CLASSES else "other"
    _rejects_child(platform, reason).inc()


def count_signal(kind: str, outcome: str) -> None:
    _signals_child(kind, outcome).inc()


def set_circuit_state(session: str, state: str | int) -> None:
    """Accepts the breaker's own strings (``closed``/``half_open``/``open``) or 0/1/2."""
    if isinstance(state, str):
        key = state.replace("-", "_")
        if key not in CIRCUIT_STATES:
            raise ValueError(f"circuit state {state!r} is not one of {tuple(CIRCUIT_STATES)}")
        value = CIRCUIT_STATES[key]
    else:
        if state not in CIRCUIT_STATES.values():
            raise ValueError(f"circuit state {state!r} is not one of 0, 1, 2")
        value = state
    CIRCUIT_STATE.labels(session=session).set(value)


def on_circuit_change(name: str, old: str, new: str) -> None:
    """``CircuitBreaker(on_change=...)`` hook; the breaker's name is taken as the session."""
    del old
    set_circuit_state(name, new)


def set_consumer_lag(topic: str, partition: int, lag: int) -> None:
    CONSUMER_LAG.labels(topic=topic, partition=str(partition)).set(max(lag, 0))


def record_consumer_lag(monitor: Any) -> int:
    """Set ``copytrader_consumer_lag`` from a Faust ``Monitor``'s offset bookkeeping.

    ``monitor.tp_end_offsets`` (latest end offsets seen) minus ``tp_committed_offsets`` per
    partition; call it from a Faust timer. A partition this worker has not committed on yet
    (just assigned) is skipped rather than reported as wholly unread. Returns how many
    partitions were recorded.
    """
    end_offsets: Mapping[Any, int] = monitor.tp_end_offsets
    committed: Mapping[Any, int] = monitor.tp_committed_offsets
    recorded = 0
    for tp, end in end_offsets.items():
        if tp in committed:
            set_consumer_lag(tp.topic, tp.partition, end - committed[tp])
            recorded += 1
    return recorded


def set_broker_connected(session: str, platform: str, connected: bool) -> None:
    BROKER_CONNECTED.labels(session=session, platform=platform).set(1 if connected else 0)


def set_rate_headroom(session: str, headroom: float) -> None:
    RATE_HEADROOM.labels(session=session).set(min(max(headroom, 0.0), 1.0))


def forget_session(session: str, platform: str) -> None:
    """Drop a removed session's gauges, so a deleted account does not show as 'open' forever."""
    for gauge, labels in (
        (CIRCUIT_STATE, (session,)),
        (RATE_HEADROOM, (session,)),
        (BROKER_CONNECTED, (session, platform)),
    ):
        with suppress(KeyError):
            gauge.remove(*labels)


# One FaustMetrics per (registry, prefix): prometheus_client refuses a second registration of
# the same names, yet tests (and ``create_app`` factories) build more than one app per process.
_faust_metrics: weakref.WeakKeyDictionary[CollectorRegistry, dict[str, FaustMetrics]] = weakref.WeakKeyDictionary()
_configured_apps: weakref.WeakSet[Any] = weakref.WeakSet()


def setup_metrics(
    app: AppT,
    *,
    pattern: str = "/metrics",
    registry: CollectorRegistry = REGISTRY,
    name_prefix: str = FAUST_METRICS_PREFIX,
    serve: bool = True,
) -> None:
    """Install Faust's Prometheus sensor on ``app`` and, with ``serve``, serve ``pattern`` from
    its web server (without: ``serve_metrics`` serves them on a port of their own).

    Call before the worker starts. The same three steps as Faust's
    ``setup_prometheus_sensors`` (series, monitor, page), so the page can be left out; the
    page renders the whole ``registry``, so the ``copytrader_*`` series above appear on the
    same scrape. Calling it again for the same app does nothing; a further app on the same
    registry reuses the sensor's series.
    """
    if app in _configured_apps:
        return
    per_registry = _faust_metrics.setdefault(registry, {})
    existing = per_registry.get(name_prefix)
    if existing is None:
        existing = per_registry[name_prefix] = FaustMetrics.create(registry, name_prefix)
    app.monitor = LeanPrometheusMonitor(metrics=existing)
    if serve:

        @app.page(pattern)
        async def metrics_page(self: web.View, request: web.Request) -> web.Response:
            del self, request
            flush()
            body = generate_latest(registry)
            return cast(web.Response, Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST}))

    _configured_apps.add(app)


async def serve_metrics(host: str, port: int, registry: CollectorRegistry = REGISTRY) -> AppRunner:
    """``/metrics`` alone on its own port (``COPYTRADER_METRICS_PORT``), so the dashboard's
    public port does not publish the worker's internals; the caller cleans the runner up."""

    async def page(request: Request) -> Response:
        del request
        flush()
        return Response(body=generate_latest(registry), headers={"Content-Type": CONTENT_TYPE_LATEST})

    metrics_app = Application()
    metrics_app.router.add_get("/metrics", page)
    runner = AppRunner(metrics_app, access_log=None)
    await runner.setup()
    await TCPSite(runner, host, port).start()
    return runner

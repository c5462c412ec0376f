"""Tallies (core/metric_tally.py) move their series exactly as direct observations would, by
the time a scrape renders them; the executor's outcome series move as they always did."""

from __future__ import annotations

import math
import time
from typing import Any

import pytest
from aiohttp import ClientSession
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram

from copytrader.agents.execution.agent import observe_outcome
from copytrader.agents.execution.router import new_execution
from copytrader.core import metrics
from copytrader.core.metric_tally import CounterTally, HistogramTally
from copytrader.core.records import OrderError, OrderIntent

BOUNDS = metrics.LATENCY_BUCKETS
#: Values on every side of every bound, below zero (clock skew), past the last, and NaN.
values = st.one_of(
    st.sampled_from(BOUNDS),
    st.floats(min_value=-1.0, max_value=10.0),
    st.sampled_from([0.0, -0.0, 1e-12, 5.0000001, 1e9, math.nan]),
)


def samples(registry: CollectorRegistry) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in registry.collect()
        for sample in family.samples
        if not sample.name.endswith("_created")
    }


def same(left: float, right: float) -> bool:
    return (math.isnan(left) and math.isnan(right)) or left == pytest.approx(right, rel=1e-9, abs=1e-12)


@given(st.lists(st.lists(values, max_size=30), min_size=1, max_size=4))
def test_a_histogram_tally_moves_every_sample_as_observe_would(scrapes: list[list[float]]) -> None:
    """Each inner list is observed between two scrapes: buckets and count equal, sum equal
    to the rounding of the order of additions."""
    direct_registry, tallied_registry = CollectorRegistry(), CollectorRegistry()
    direct = Histogram("h", "h", ["stage"], buckets=BOUNDS, registry=direct_registry).labels("x")
    tally = HistogramTally(Histogram("h", "h", ["stage"], buckets=BOUNDS, registry=tallied_registry).labels("x"))
    for observed in scrapes:
        for value in observed:
            direct.observe(max(value, 0.0))
            tally.observe(value)
        tally.flush()
        expected, got = samples(direct_registry), samples(tallied_registry)
        assert expected.keys() == got.keys()
        for key, value in expected.items():
            assert same(got[key], value), key


def test_a_counter_tally_adds_its_count_at_the_flush() -> None:
    registry = CollectorRegistry()
    child = Counter("c", "c", ["outcome"], registry=registry).labels("placed")
    tally = CounterTally(child)
    for _ in range(3):
        tally.inc()
    assert registry.get_sample_value("c_total", {"outcome": "placed"}) == 0
    tally.flush()
    tally.flush()  # nothing counted since: nothing added
    assert registry.get_sample_value("c_total", {"outcome": "placed"}) == 3


@pytest.mark.parametrize(
    ("make", "args"),
    [
        (metrics.stage_tally, ("detcet",)),
        (metrics.broker_call_tally, ("paper", "submit")),
        (metrics.orders_tally, ("paper", "ok")),
    ],
)
def test_a_typo_in_a_tallys_labels_is_refused_every_time(make: Any, args: tuple[str, ...]) -> None:
    for _ in range(2):
        with pytest.raises(ValueError):
            make(*args)


def value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_the_metrics_page_renders_what_the_tallies_counted() -> None:
    """The worker's page flushes the tallies before it renders the registry."""
    runner = await metrics.serve_metrics("127.0.0.1", 0)
    try:
        metrics.flush()
        before = value("copytrader_stage_latency_seconds_count", stage="ack")
        metrics.stage_tally("ack").observe(0.003)
        assert value("copytrader_stage_latency_seconds_count", stage="ack") == before  # counted, not yet added
        host, port = runner.addresses[0][:2]
        async with ClientSession() as session, session.get(f"http://{host}:{port}/metrics") as response:
            body = await response.text()
    finally:
        await runner.cleanup()
    assert f'copytrader_stage_latency_seconds_count{{stage="ack"}} {before + 1}' in body


def intent(action: str = "place") -> OrderIntent:
    return OrderIntent(
        client_order_id="CT1",
        signal_id="L:1:new",
        account_id="f1",
        platform="paper",
        leader_account="L",
        action=action,
        symbol="ESZ6",
        side="buy",
        quantity=1,
        target_client_order_id="CT0" if action == "cancel" else None,
    )


def test_the_executors_outcome_series_move_as_before() -> None:
    """Per ack: the order counted (placed or duplicate), the broker call, internal and e2e."""
    metrics.flush()
    series = {
        "placed": ("copytrader_orders_total", {"platform": "paper", "outcome": "placed"}),
        "duplicate": ("copytrader_orders_total", {"platform": "paper", "outcome": "duplicate"}),
        "rejected": ("copytrader_orders_total", {"platform": "paper", "outcome": "rejected"}),
        "call": ("copytrader_broker_call_seconds_count", {"platform": "paper", "operation": "cancel"}),
        "call_sum": ("copytrader_broker_call_seconds_sum", {"platform": "paper", "operation": "cancel"}),
        "call_2ms": (
            "copytrader_broker_call_seconds_bucket",
            {"platform": "paper", "operation": "cancel", "le": "0.0025"},
        ),
        "internal": ("copytrader_stage_latency_seconds_count", {"stage": "internal"}),
        "e2e": ("copytrader_stage_latency_seconds_count", {"stage": "e2e"}),
        "e2e_sum": ("copytrader_stage_latency_seconds_sum", {"stage": "e2e"}),
        "refused": ("copytrader_rejects_total", {"platform": "paper", "reason_class": "other"}),
    }
    before = {key: value(name, **labels) for key, (name, labels) in series.items()}
    now = time.time()
    stamps = {"detected": now - 0.010, "sent": now - 0.002, "acked": now}
    for duplicate in (False, True):
        ack = new_execution(
            execution_id="CT1|cancelled", account_id="f1", platform="paper", kind="cancelled", duplicate=duplicate
        )
        ack.stamps = stamps
        observe_outcome(intent("cancel"), ack)
    observe_outcome(intent(), new_execution(execution_id="CT2|ack", account_id="f1", platform="paper", kind="ack"))
    error = OrderError(error_id="CT3|execute", stage="execute", reason="no", account_id="f1", code="WHATEVER")
    observe_outcome(intent(), error)
    metrics.flush()
    moved = {key: value(name, **labels) - before[key] for key, (name, labels) in series.items()}
    assert moved["placed"] == 2 and moved["duplicate"] == 1 and moved["rejected"] == 1
    assert moved["call"] == 2 and moved["call_2ms"] == 2  # an ack without stamps times nothing
    # Stamps are seconds since 1970; a sum the whole test session added to may be large, so
    # the difference is as exact as the sum's own spacing allows (it failed once at 3e-6).
    assert moved["call_sum"] == pytest.approx(0.004, abs=1e-6 + 4 * math.ulp(before["call_sum"]))
    assert moved["internal"] == 2 and moved["e2e"] == 2
    assert moved["e2e_sum"] == pytest.approx(0.020, abs=1e-6 + 4 * math.ulp(before["e2e_sum"]))
    assert moved["refused"] == 1

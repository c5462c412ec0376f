"""grafana/copytrader-dashboard.json: every series a panel queries is one the workers export.

A renamed metric otherwise fails silently: the panel just shows "No data". The known names
come from the live objects (core/metrics.py and Faust's sensor built on a scratch registry),
expanded the way Prometheus exposes them (``_bucket``/``_sum``/``_count``, ``_total``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from faust.sensors.prometheus import FaustMetrics
from prometheus_client import CollectorRegistry
from prometheus_client.metrics import MetricWrapperBase

from copytrader.core import metrics

DASHBOARD = Path(__file__).resolve().parents[2] / "grafana" / "copytrader-dashboard.json"

SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "summary": ("_sum", "_count", "_created"),
    "gauge": ("",),
}
PROMQL_WORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or", "unless", "offset"}


def exposed_names(families: Iterator[Any]) -> set[str]:
    names: set[str] = set()
    for family in families:
        names.update(family.name + suffix for suffix in SUFFIXES[family.type])
    return names


def copytrader_names() -> set[str]:
    wrappers = [obj for obj in vars(metrics).values() if isinstance(obj, MetricWrapperBase)]
    return exposed_names(family for wrapper in wrappers for family in wrapper.describe())


def faust_names() -> set[str]:
    registry = CollectorRegistry()
    FaustMetrics.create(registry, metrics.FAUST_METRICS_PREFIX)
    return exposed_names(iter(registry.collect()))


def metric_names(expr: str) -> set[str]:
    """Metric names in a PromQL expression: identifiers that are not functions, labels or keywords."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', "", expr)  # string literals (label values)
    text = re.sub(r"\{[^}]*\}", "", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", "", text)  # range selectors
    text = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", text)  # label lists
    text = re.sub(r"\$\w+", "", text)  # dashboard variables
    names = set()
    for match in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", text):
        word, rest = match.group(0), text[match.end() :]
        if word in PROMQL_WORDS or rest.lstrip().startswith("("):
            continue
        if re.fullmatch(r"\d*e\d+", word) or (match.start() > 0 and text[match.start() - 1].isdigit()):
            continue  # the exponent part of a number such as 1e-9
        names.add(word)
    return names


def load() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return data


def panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in dashboard["panels"]:
        yield panel
        yield from panel.get("panels", [])


def exprs(dashboard: dict[str, Any]) -> Iterator[tuple[str, str]]:
    for panel in panels(dashboard):
        for target in panel.get("targets", []):
            yield panel["title"], target["expr"]


def test_parser_finds_metrics_not_functions_or_labels() -> None:
    expr = (
        'histogram_quantile(0.99, sum by (le, stage) (rate(a_bucket{job=~"$job",stage!="e2e"}[$__rate_interval])))'
        " / clamp_min(sum(b_total), 1e-9) - c offset 5m"
    )
    assert metric_names(expr) == {"a_bucket", "b_total", "c"}


def test_every_panel_metric_is_exported() -> None:
    known = copytrader_names() | faust_names()
    dashboard = load()
    seen = [(title, name) for title, expr in exprs(dashboard) for name in metric_names(expr)]
    assert seen, "no metric found in any panel expression"
    unknown = sorted({(title, name) for title, name in seen if name not in known})
    assert not unknown, f"panels query series nobody exports: {unknown}"


def test_every_copytrader_metric_has_a_panel() -> None:
    queried = {name for _, expr in exprs(load()) for name in metric_names(expr)}
    families = {
        family.name for obj in vars(metrics).values() if isinstance(obj, MetricWrapperBase) for family in obj.describe()
    }
    missing = sorted(f for f in families if not any(name.startswith(f) for name in queried))
    assert not missing, f"metrics with no panel: {missing}"


def test_faust_sensor_series_are_shown() -> None:
    queried = {name for _, expr in exprs(load()) for name in metric_names(expr)}
    assert any(name.startswith(metrics.FAUST_METRICS_PREFIX + "_") for name in queried)


def test_dashboard_shape() -> None:
    dashboard = load()
    assert 36 <= dashboard["schemaVersion"] <= 41
    assert [i["name"] for i in dashboard["__inputs"]] == ["DS_PROMETHEUS"]
    ids = [panel["id"] for panel in panels(dashboard)]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    for panel in panels(dashboard):
        assert {"h", "w", "x", "y"} <= panel["gridPos"].keys()
        assert panel["gridPos"]["x"] + panel["gridPos"]["w"] <= 24
        if panel["type"] != "row":
            assert panel["datasource"]["uid"] == "${DS_PROMETHEUS}", panel["title"]
            for target in panel["targets"]:
                assert target["datasource"]["uid"] == "${DS_PROMETHEUS}", panel["title"]


@pytest.mark.parametrize("quantile", ["0.5", "0.95", "0.99"])
def test_stage_latency_quantiles_are_plotted(quantile: str) -> None:
    stage_exprs = [e for _, e in exprs(load()) if "copytrader_stage_latency_seconds_bucket" in e]
    assert any(e.startswith(f"histogram_quantile({quantile},") and "by (le, stage)" in e for e in stage_exprs)

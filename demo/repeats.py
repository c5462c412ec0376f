"""The median of repeated bench runs, with its spread.

A percentile target holds when the median of five runs meets it: one run on a shared 2-core VM
can lose tens of milliseconds to a neighbour. So ``copytrader bench --repeat 5`` prints every
run and then one line per configuration with the median of each headline figure and the lowest
and highest run beside it, so a reader sees both the figure and how much to trust it.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from typing import Any

#: The figures a repeated run is judged on: (label, path into a run's summary).
HEADLINE: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("internal_p50_ms", ("internal_ms", "p50")),
    ("internal_p95_ms", ("internal_ms", "p95")),
    ("internal_p99_ms", ("internal_ms", "p99")),
    ("e2e_p99_ms", ("e2e_ms", "p99")),
    ("cpu_ms_per_copy", ("cpu_ms_per_copy",)),
    ("kafka_bytes_per_copy", ("costs", "kafka_bytes_per_copy")),
    ("sleep_2ms_late_p99_ms", ("calibration", "sleep_2ms_late_ms", "p99")),
    ("cpu_workload_ms", ("calibration", "cpu_workload_ms")),
)


def _dig(run: dict[str, Any], path: tuple[str, ...]) -> float | None:
    value: Any = run
    for key in path:
        if not isinstance(value, dict) or key not in value:
            return None
        value = value[key]
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def spread(values: Sequence[float]) -> dict[str, float] | None:
    """Median, lowest and highest of the runs that have the figure."""
    if not values:
        return None
    return {"median": round(statistics.median(values), 3), "min": round(min(values), 3), "max": round(max(values), 3)}


def median_of(runs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """One configuration's runs → the median line (headline figures, per-process CPU and RSS)."""
    first = runs[0]
    line: dict[str, Any] = {
        "median_of": len(runs),
        "followers": first.get("followers"),
        "platform": first.get("platform"),
        "broker_latency_ms": first.get("broker_latency_ms"),
        "missing": sum(int(r.get("missing") or 0) for r in runs),
        "duplicates": sum(int(r.get("duplicates") or 0) for r in runs),
    }
    for label, path in HEADLINE:
        line[label] = spread([v for r in runs if (v := _dig(r, path)) is not None])
    processes = sorted({name for r in runs for name in (r.get("costs") or {}).get("processes", {})})
    line["processes"] = {
        name: {
            figure: spread([v for r in runs if (v := _dig(r, ("costs", "processes", name, figure))) is not None])
            for figure in ("cpu_ms_per_copy", "rss_mib_end", "rss_mib_peak", "rss_growth_mib_per_min")
        }
        for name in processes
    }
    return line


def readable(line: dict[str, Any]) -> str:
    """The median line as one sentence a person reads in a terminal."""

    def fig(label: str) -> str:
        value = line.get(label)
        return "n/a" if not value else f"{value['median']:g} [{value['min']:g}–{value['max']:g}]"

    return (
        f"median of {line['median_of']} runs at {line['followers']} followers: internal p50 {fig('internal_p50_ms')} ms, "
        f"p99 {fig('internal_p99_ms')} ms; cpu per copy {fig('cpu_ms_per_copy')} ms; "
        f"missing {line['missing']}, duplicates {line['duplicates']}"
    )


__all__ = ["HEADLINE", "median_of", "readable", "spread"]

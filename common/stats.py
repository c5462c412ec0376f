"""The one percentile formula: the dashboard, the reports and the bench agree on the same data.

Linear interpolation between the closest ranks, which is PostgreSQL's ``percentile_cont`` —
the reports compute it in SQL there, and with this function on SQLite, which has none.
Latencies are rounded to the microsecond (3 decimals of a millisecond) once, here, so no
report prints ``15.096499999999999``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

__all__ = ["latency_summary", "percentile", "round_ms"]

DECIMALS = 3


def round_ms(value: float | None) -> float | None:
    return None if value is None else round(value, DECIMALS)


def percentile(sorted_values: Sequence[float], q: float) -> float | None:
    """The ``q``-quantile (0 ≤ q ≤ 1) of already sorted values; ``None`` for no values."""
    if not 0.0 <= q <= 1.0:
        raise ValueError(f"quantile must be within [0, 1], got {q}")
    if not sorted_values:
        return None
    rank = (len(sorted_values) - 1) * q
    low = int(rank)
    high = min(low + 1, len(sorted_values) - 1)
    return round_ms(sorted_values[low] + (sorted_values[high] - sorted_values[low]) * (rank - low))


def latency_summary(values: Iterable[float]) -> dict[str, float | None]:
    """p50 / p95 / p99 / max and the count: the shape every latency figure is printed in."""
    ordered = sorted(values)
    return {
        "p50": percentile(ordered, 0.50),
        "p95": percentile(ordered, 0.95),
        "p99": percentile(ordered, 0.99),
        "max": round_ms(ordered[-1]) if ordered else None,
        "n": len(ordered),
    }

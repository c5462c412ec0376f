"""Reports for the dashboard: P&L by account and day, copies and latency, rejects with reasons.

Two sources behind one interface: :class:`SqlReports` (``storage.reports`` over the database,
used when ``COPYTRADER_DATABASE_URL`` is set and the ``store`` role writes history) and
:class:`LiveReports` (the web worker's in-memory view of the topics: today and whatever the
topics still hold). The view picks one at start and says which in every answer (``source``).
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import asdict
from datetime import date
from decimal import Decimal
from typing import Any, Protocol

from ..common.stats import percentile
from ..core.slippage import summarize
from .live import BASE_DAY, LiveState

log = logging.getLogger(__name__)

REPORTS = ("pnl", "latency", "rejects", "slippage")


class ReportSource(Protocol):
    name: str

    async def rows(self, report: str, start: date | None, end: date | None) -> list[dict[str, Any]]: ...


def _in_range(day: str, start: date | None, end: date | None) -> bool:
    d = date.fromisoformat(day)
    return (start is None or d >= start) and (end is None or d < end)


class LiveReports:
    name = "live"

    def __init__(self, live: LiveState) -> None:
        self.live = live

    async def rows(self, report: str, start: date | None, end: date | None) -> list[dict[str, Any]]:
        if report == "pnl":
            return self._pnl(start, end)
        if report == "latency":
            return self._latency(start, end)
        if report == "slippage":
            return [asdict(r) for r in summarize(self.live.slippage.copies_between(self.live.config, start, end))]
        return [
            {
                **r,
                "occurred_at": r["occurred_at"].isoformat()
                if hasattr(r["occurred_at"], "isoformat")
                else r["occurred_at"],
            }
            for r in self.live.rejects
            if _in_range(str(r["occurred_at"])[:10], start, end)
        ]

    def _pnl(self, start: date | None, end: date | None) -> list[dict[str, Any]]:
        per_day: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
        for (account, _symbol), closes in self.live.pnl_closes.items():
            previous = Decimal(0)
            for day in sorted(closes):  # BASE_DAY (the days dropped) first: a start, not a day
                if day != BASE_DAY and _in_range(day, start, end):
                    per_day[(day, account)] += closes[day] - previous
                previous = closes[day]
        return [{"day": d, "account_id": a, "realized_pnl": str(v)} for (d, a), v in sorted(per_day.items())]

    def _latency(self, start: date | None, end: date | None) -> list[dict[str, Any]]:
        out = []
        for day, samples in sorted(self.live.latency.items()):
            if not _in_range(day, start, end):
                continue
            by_account: dict[str, list[float]] = defaultdict(list)
            for account, _platform, value in samples:
                by_account[account].append(value)
            for account, values in sorted(by_account.items()):
                values.sort()
                out.append(
                    {
                        "day": day,
                        "account_id": account,
                        "copies": self.live.copies.get((day, account), len(values)),
                        "e2e_p50_ms": percentile(values, 0.5),
                        "e2e_p99_ms": percentile(values, 0.99),
                        "e2e_max_ms": values[-1],
                    }
                )
        return out


class SqlReports:
    """Reports from the database; falls back to ``fallback`` (live data) while it has no tables."""

    name = "database"

    def __init__(self, session_factory: Any, fallback: LiveReports) -> None:
        self._factory = session_factory
        self._fallback = fallback

    def _query(self, report: str, start: date | None, end: date | None) -> list[dict[str, Any]]:
        from ..storage import reports, slippage

        funcs: dict[str, Callable[..., Iterable[Any]]] = {
            "pnl": reports.pnl_by_day,
            "latency": reports.latency_by_day,
            "rejects": reports.rejects,
            "slippage": slippage.slippage_report,
        }
        with self._factory() as db:
            return [asdict(r) for r in funcs[report](db, start, end)]  # storage's report rows are dataclasses

    async def rows(self, report: str, start: date | None, end: date | None) -> list[dict[str, Any]]:
        try:
            return await asyncio.to_thread(self._query, report, start, end)
        except Exception as exc:  # noqa: BLE001 - an unmigrated database must not break the page
            log.warning("database reports unavailable (%s); answering from live data", type(exc).__name__)
            return await self._fallback.rows(report, start, end)

"""Reports over the stored history, each as typed rows and as CSV text (for the web API).

* :func:`pnl_by_day` — realised P&L per account per UTC day, from ``pnl_series``.
* :func:`latency_by_day` — copy latency percentiles per follower account per UTC day, from the
  executor's answers in ``executions`` (e2e = acked − detected, internal = sent − detected).
* :func:`rejects` — broker rejects and everything that reached ``order.errors``, with reasons.
* :func:`drift` — followers whose latest position differs from the leader's scaled by the rule.
* :func:`slippage_report` — average and worst slippage per account and copy group
  (``storage.slippage``).

Days are UTC days and ranges are half-open (``start`` ≤ day < ``end``); ``None`` leaves a side
open. Percentiles are ``percentile_cont`` (linear interpolation): computed by PostgreSQL there,
by the same formula in Python on SQLite, which has no percentile function.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import Select, and_, func, select
from sqlalchemy.orm import Session

from ..common.clock import today_utc
from ..common.stats import percentile, round_ms
from ..core.scaling import CopyRule as RuleSpec
from ..core.scaling import ScaledToZero, ScalingMode, follower_symbol, scaled_quantity
from ..core.slippage import SlippageSummary
from .csv_export import to_csv
from .db import utc_day
from .models import (
    Account,
    AuditEntry,
    CopyGroup,
    CopyRule,
    ExecutionRow,
    PnlPoint,
    PositionSnapshot,
)
from .slippage import slippage_report

PERCENTILES = (50, 90, 99)


def _day(value: Any) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value))


def _start(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=UTC)


def _between(stmt: Select[Any], column: Any, start: date | None, end: date | None) -> Select[Any]:
    if start is not None:
        stmt = stmt.where(column >= _start(start))
    if end is not None:
        stmt = stmt.where(column < _start(end))
    return stmt


# ------------------------------------------------------------------------------------- P&L


@dataclass(frozen=True, slots=True)
class PnlDay:
    day: date
    account_id: str
    realized_pnl: Decimal
    cumulative_realized_pnl: Decimal
    symbols: int


def _closes(db: Session, start: date | None, end: date | None, before: bool = False) -> list[Any]:
    """The last pnl point per (account, symbol, day) — or, with ``before``, the last before ``start``."""
    dialect = db.get_bind().dialect.name
    day = utc_day(dialect, PnlPoint.ts)
    partition = [PnlPoint.account_id, PnlPoint.symbol] if before else [PnlPoint.account_id, PnlPoint.symbol, day]
    ranked = select(
        PnlPoint.account_id,
        PnlPoint.symbol,
        day.label("day"),
        PnlPoint.realized_pnl,
        func.row_number().over(partition_by=partition, order_by=PnlPoint.ts.desc()).label("rn"),
    )
    if before:
        assert start is not None
        ranked = ranked.where(PnlPoint.ts < _start(start))
    else:
        ranked = _between(ranked, PnlPoint.ts, start, end)
    sub = ranked.subquery()
    return list(db.execute(select(sub.c.account_id, sub.c.symbol, sub.c.day, sub.c.realized_pnl).where(sub.c.rn == 1)))


def pnl_by_day(db: Session, start: date | None = None, end: date | None = None) -> list[PnlDay]:
    """Daily realised P&L = that day's closing cumulative P&L minus the previous close.

    Relies on ``Position.realized_pnl`` being cumulative (the tracker's table never resets);
    a reset would show as one negative day.
    """
    previous: dict[tuple[str, str], Decimal] = {}
    if start is not None:
        previous = {(r.account_id, r.symbol): Decimal(r.realized_pnl) for r in _closes(db, start, end, before=True)}
    closes = sorted(_closes(db, start, end), key=lambda r: (r.account_id, r.symbol, _day(r.day)))
    per_day: dict[tuple[date, str], list[Decimal]] = defaultdict(list)
    cumulative: dict[tuple[date, str], Decimal] = defaultdict(Decimal)
    for row in closes:
        close = Decimal(row.realized_pnl)
        key = (_day(row.day), row.account_id)
        per_day[key].append(close - previous.get((row.account_id, row.symbol), Decimal(0)))
        cumulative[key] += close
        previous[(row.account_id, row.symbol)] = close
    return [
        PnlDay(day, account, sum(deltas, Decimal(0)), cumulative[(day, account)], len(deltas))
        for (day, account), deltas in sorted(per_day.items())
    ]


# --------------------------------------------------------------------------------- latency


@dataclass(frozen=True, slots=True)
class LatencyDay:
    day: date
    account_id: str
    platform: str
    copies: int
    e2e_p50_ms: float | None
    e2e_p90_ms: float | None
    e2e_p99_ms: float | None
    e2e_max_ms: float | None
    internal_p50_ms: float | None
    internal_p90_ms: float | None
    internal_p99_ms: float | None


def _answers(stmt: Select[Any], start: date | None, end: date | None) -> Select[Any]:
    """The executor's one answer per follower order (ack or reject), leader events excluded."""
    stmt = stmt.where(ExecutionRow.request_outcome.is_(True), ExecutionRow.is_leader.is_(False))
    return _between(stmt, ExecutionRow.occurred_at, start, end)


def latency_by_day(db: Session, start: date | None = None, end: date | None = None) -> list[LatencyDay]:
    dialect = db.get_bind().dialect.name
    day = utc_day(dialect, ExecutionRow.occurred_at).label("day")
    if dialect == "postgresql":
        cols = [
            func.percentile_cont(p / 100.0).within_group(col)
            for col in (ExecutionRow.e2e_ms, ExecutionRow.internal_ms)
            for p in PERCENTILES
        ]
        keys = (day, ExecutionRow.account_id, ExecutionRow.platform)
        stmt = select(*keys, func.count(), func.max(ExecutionRow.e2e_ms), *cols)
        stmt = _answers(stmt, start, end).group_by(*keys).order_by(*keys)
        return [
            LatencyDay(
                _day(r[0]), r[1], r[2], r[3], *(round_ms(v) for v in (r[5], r[6], r[7], r[4], r[8], r[9], r[10]))
            )
            for r in db.execute(stmt)
        ]
    stmt = _answers(
        select(day, ExecutionRow.account_id, ExecutionRow.platform, ExecutionRow.e2e_ms, ExecutionRow.internal_ms),
        start,
        end,
    )
    groups: dict[tuple[date, str, str], tuple[list[float], list[float], list[int]]] = defaultdict(lambda: ([], [], [0]))
    for row in db.execute(stmt):
        e2e, internal, count = groups[(_day(row.day), row.account_id, row.platform)]
        count[0] += 1
        if row.e2e_ms is not None:
            e2e.append(row.e2e_ms)
        if row.internal_ms is not None:
            internal.append(row.internal_ms)
    result = []
    for (d, account_id, platform), (e2e, internal, count) in sorted(groups.items()):
        e2e.sort()
        internal.sort()
        p50, p90, p99 = (percentile(e2e, p / 100.0) for p in PERCENTILES)
        i50, i90, i99 = (percentile(internal, p / 100.0) for p in PERCENTILES)
        result.append(
            LatencyDay(
                d, account_id, platform, count[0], p50, p90, p99, round_ms(e2e[-1]) if e2e else None, i50, i90, i99
            )
        )
    return result


# --------------------------------------------------------------------------------- rejects


@dataclass(frozen=True, slots=True)
class Reject:
    occurred_at: datetime
    source: str  # "broker" for an execution reject, else the stage that refused (ingest, fanout, ...)
    account_id: str | None
    platform: str | None
    signal_id: str | None
    client_order_id: str | None
    code: str | None
    reason: str


def rejects(db: Session, start: date | None = None, end: date | None = None) -> list[Reject]:
    """Broker rejects (``executions``) and ``order.errors`` entries (audit log), oldest first."""
    broker = _between(select(ExecutionRow).where(ExecutionRow.kind == "reject"), ExecutionRow.occurred_at, start, end)
    found = [
        Reject(r.occurred_at, "broker", r.account_id, r.platform, r.signal_id, r.client_order_id, None, r.reason or "")
        for r in db.scalars(broker)
    ]
    errors = _between(select(AuditEntry).where(AuditEntry.kind == "error"), AuditEntry.occurred_at, start, end)
    for entry in db.scalars(errors):
        payload = entry.payload or {}
        found.append(
            Reject(
                entry.occurred_at,
                str(payload.get("stage", "unknown")),
                entry.account_id,
                None,
                entry.signal_id,
                entry.client_order_id,
                payload.get("code"),
                str(payload.get("reason", "")),
            )
        )
    return sorted(found, key=lambda r: (r.occurred_at, r.source, r.account_id or ""))


@dataclass(frozen=True, slots=True)
class RejectCount:
    day: date
    source: str
    reason: str
    count: int


def reject_summary(items: Iterable[Reject]) -> list[RejectCount]:
    counts: dict[tuple[date, str, str], int] = defaultdict(int)
    for item in items:
        counts[(item.occurred_at.date(), item.source, item.reason)] += 1
    return [RejectCount(d, s, r, n) for (d, s, r), n in sorted(counts.items())]


# ----------------------------------------------------------------------------------- drift


@dataclass(frozen=True, slots=True)
class PositionNow:
    account_id: str
    symbol: str
    net_qty: int
    ts: datetime


def latest_positions(db: Session, as_of: datetime | None = None) -> dict[tuple[str, str], PositionNow]:
    """Each (account, symbol)'s last snapshot at or before ``as_of`` (one window query)."""
    ranked = select(
        PositionSnapshot.account_id,
        PositionSnapshot.symbol,
        PositionSnapshot.net_qty,
        PositionSnapshot.ts,
        func.row_number()
        .over(partition_by=[PositionSnapshot.account_id, PositionSnapshot.symbol], order_by=PositionSnapshot.ts.desc())
        .label("rn"),
    )
    if as_of is not None:
        ranked = ranked.where(PositionSnapshot.ts <= as_of)
    sub = ranked.subquery()
    rows = db.execute(select(sub.c.account_id, sub.c.symbol, sub.c.net_qty, sub.c.ts).where(sub.c.rn == 1))
    return {(r.account_id, r.symbol): PositionNow(r.account_id, r.symbol, r.net_qty, r.ts) for r in rows}


@dataclass(frozen=True, slots=True)
class Drift:
    group_id: str
    leader_account: str
    follower_account: str
    leader_symbol: str | None
    follower_symbol: str
    leader_net: int
    expected_net: int
    actual_net: int
    difference: int
    as_of: datetime | None


def expected_net(rule: RuleSpec, leader_net: int, leader_size: Decimal, follower_size: Decimal) -> int:
    """The follower position the leader's position implies; signed, inverse flips the sign.

    Approximate by nature: a rule applied to each order (as fan-out does) can round differently
    than the same rule applied to the net position, so small differences are candidates.
    """
    if leader_net == 0:
        return 0
    try:
        quantity = scaled_quantity(rule, abs(leader_net), leader_size, follower_size)
    except ScaledToZero:
        return 0
    sign = 1 if leader_net > 0 else -1
    return -sign * quantity if rule.inverse else sign * quantity


def drift(db: Session, as_of: datetime | None = None, tolerance: int = 0) -> list[Drift]:
    """Followers whose latest net position differs from the expected one by more than ``tolerance``."""
    positions = latest_positions(db, as_of)
    by_account: dict[str, list[PositionNow]] = defaultdict(list)
    for pos in positions.values():
        by_account[pos.account_id].append(pos)
    sizes = {a.id: a.size for a in db.scalars(select(Account))}
    pairs = db.execute(
        select(CopyGroup, CopyRule)
        .join(CopyRule, CopyRule.group_id == CopyGroup.id)
        .where(and_(CopyGroup.enabled.is_(True), CopyRule.enabled.is_(True)))
        .order_by(CopyGroup.id, CopyRule.follower_account_id)
    )
    found: list[Drift] = []
    for group, row in pairs:
        rule = RuleSpec(
            mode=ScalingMode(row.mode),
            quantity=row.quantity,
            multiplier=row.multiplier,
            max_quantity=row.max_quantity,
            symbol_map=dict(row.symbol_map or {}),
            inverse=row.inverse,
            min_quantity=row.min_quantity,
        )
        leader, follower = group.leader_account_id, row.follower_account_id
        seen: set[str] = set()
        for lead in by_account.get(leader, []):
            symbol = follower_symbol(rule, lead.symbol)
            seen.add(symbol)
            want = expected_net(rule, lead.net_qty, sizes.get(leader, Decimal(1)), sizes.get(follower, Decimal(1)))
            have = positions.get((follower, symbol))
            actual = have.net_qty if have else 0
            if abs(actual - want) > tolerance:
                stamp = max(lead.ts, have.ts) if have else lead.ts
                found.append(
                    Drift(
                        group.id,
                        leader,
                        follower,
                        lead.symbol,
                        symbol,
                        lead.net_qty,
                        want,
                        actual,
                        actual - want,
                        stamp,
                    )
                )
        for pos in by_account.get(follower, []):
            if pos.symbol not in seen and abs(pos.net_qty) > tolerance:
                found.append(
                    Drift(group.id, leader, follower, None, pos.symbol, 0, 0, pos.net_qty, pos.net_qty, pos.ts)
                )
    return found


# ------------------------------------------------------------------------------------- CSV


def pnl_csv(db: Session, start: date | None = None, end: date | None = None) -> str:
    return to_csv(pnl_by_day(db, start, end), PnlDay)


def latency_csv(db: Session, start: date | None = None, end: date | None = None) -> str:
    return to_csv(latency_by_day(db, start, end), LatencyDay)


def rejects_csv(db: Session, start: date | None = None, end: date | None = None) -> str:
    return to_csv(rejects(db, start, end), Reject)


def slippage_csv(db: Session, start: date | None = None, end: date | None = None) -> str:
    return to_csv(slippage_report(db, start, end), SlippageSummary)


def drift_csv(db: Session, as_of: datetime | None = None, tolerance: int = 0) -> str:
    return to_csv(drift(db, as_of, tolerance), Drift)


def default_range(days: int = 7, today: date | None = None) -> tuple[date, date]:
    """The last ``days`` UTC days including today, as a half-open range."""
    end = (today or today_utc()) + timedelta(days=1)
    return end - timedelta(days=days), end

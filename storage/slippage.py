"""Slippage per copy in the ``executions`` table, and its report per account and copy group.

The leader's fill and the follower's fill of one copy arrive on ``trade.executions`` in either
order, in different partitions and often in different sink batches. So after each batch is
inserted, :func:`settle` recomputes the slippage columns of every copy the batch touched — the
follower's own fills, acks (which carry the reference price when a fill came without it), and
every copy of a leader order whose fills just arrived — from what the table holds then. The
arithmetic is ``core.slippage``'s; here is only which rows belong together:

* a follower fill belongs to its copy by ``client_order_id`` (the ack of the same id carries the
  signal id and reference price when the fill arrived after an executor restart without them);
* a copy belongs to a leader order by its signal id (``leader:order:new`` or ``:flatten:v``,
  ``core.ids``), and the leader's fills are its executions with ``is_leader`` and that account
  and broker order id; partial leader fills are averaged by quantity.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, date, datetime, time
from decimal import Decimal
from typing import Any, TypeVar, cast

from sqlalchemy import Select, Table, bindparam, select, update
from sqlalchemy.orm import Session

from ..core import ids
from ..core.records import CORRECTION_KINDS
from ..core.slippage import (
    FILL_KINDS,
    CopySlippage,
    FillSlippage,
    Slippage,
    SlippageSummary,
    average_price,
    fill_slippage,
    key_splits,
    leader_fill_key,
    leader_order_key,
    summarize,
)
from .models import CopyGroup, CopyRule, ExecutionRow

__all__ = ["copy_slippage", "settle", "slippage_report"]

E = ExecutionRow
C = ExecutionRow.__table__.c  # plain Core columns on the write path: no ORM loading per row
SLIPPAGE_COLUMNS = (
    "leader_price",
    "slippage_leader_ticks",
    "slippage_leader_amount",
    "slippage_ref_ticks",
    "slippage_ref_amount",
)
# The settle's statements, built once (a statement built per call costs its coercions).
_COPIES_OF_SIGNALS = select(C.client_order_id).where(
    C.signal_id.in_(bindparam("signal_ids", expanding=True)), C.is_leader.is_(False), C.client_order_id.is_not(None)
)
_LEADER_FILLS = select(C.account_id, C.broker_order_id, C.quantity, C.price).where(
    C.is_leader.is_(True), C.kind.in_(FILL_KINDS), C.broker_order_id.in_(bindparam("order_ids", expanding=True))
)
_COPY_ROWS = select(
    C.id,
    C.execution_id,
    C.client_order_id,
    C.kind,
    C.corrects,
    C.signal_id,
    C.reference_price,
    C.symbol,
    C.side,
    C.quantity,
    C.price,
    *(C[name] for name in SLIPPAGE_COLUMNS),  # last: the figures a settle compares with
).where(C.client_order_id.in_(bindparam("copies", expanding=True)), C.is_leader.is_(False))
# One Core executemany by primary key (the ORM's bulk update plans every row on its own).
_UPDATE = (
    update(cast(Table, ExecutionRow.__table__))
    .where(C.id == bindparam("row_id"))
    .values({name: bindparam(name) for name in SLIPPAGE_COLUMNS})
)
Q = TypeVar("Q", bound="Select[*tuple[Any, ...]]")


def _copies_touched(db: Session, rows: Sequence[Mapping[str, Any]]) -> set[str]:
    copies = {r["client_order_id"] for r in rows if not r["is_leader"] and r.get("client_order_id")}
    leader_orders = {
        (r["account_id"], r["broker_order_id"])
        for r in rows
        if r["is_leader"] and r["kind"] in FILL_KINDS and r.get("broker_order_id")
    }
    if leader_orders:
        signal_ids = [ids.signal_id(a, o, "new") for a, o in leader_orders]
        signal_ids += [ids.signal_id(a, o, "flatten", 0) for a, o in leader_orders]
        copies.update(c for c in db.scalars(_COPIES_OF_SIGNALS, {"signal_ids": signal_ids}).all() if c)
    return copies


def _leader_prices(db: Session, keys: set[str]) -> dict[str, Decimal | None]:
    """Average fill price of each leader order key (``leader:order``)."""
    order_ids = {order for key in keys for _, order in key_splits(key)}
    fills: dict[str, list[tuple[int, Decimal | None]]] = defaultdict(list)
    if order_ids:
        for account, order, quantity, price in db.execute(_LEADER_FILLS, {"order_ids": sorted(order_ids)}).all():
            key = leader_fill_key(account, order or "")
            if key in keys:
                fills[key].append((quantity, price))
    return {key: average_price(fills.get(key, ())) for key in keys}


def _first(values: Iterable[Any]) -> Any:
    return next((v for v in values if v is not None), None)


def _corrections(rows: Iterable[Any]) -> dict[str, Any]:
    """The latest bust or correction of each fill (by the fill's execution id)."""
    latest: dict[str, Any] = {}
    for row in sorted(rows, key=lambda r: r.id):
        if row.kind in CORRECTION_KINDS and row.corrects:
            latest[row.corrects] = row
    return latest


def _effective(fill: Any, fixes: Mapping[str, Any]) -> tuple[int, Decimal | None]:
    """A fill's quantity and price after its latest correction (a bust: quantity 0)."""
    fix = fixes.get(fill.execution_id)
    return (fix.quantity, fix.price) if fix is not None else (fill.quantity, fill.price)


def settle(db: Session, rows: Sequence[Mapping[str, Any]]) -> int:
    """Recompute the slippage of every copy ``rows`` (a batch just inserted) touched; returns
    the number of follower fill rows written (those whose figures changed)."""
    copies = _copies_touched(db, rows)
    if not copies:
        return 0
    by_copy: dict[str, list[Any]] = defaultdict(list)
    for row in db.execute(_COPY_ROWS, {"copies": sorted(copies)}).all():  # one fetchall, not fetchone per row
        by_copy[row.client_order_id].append(row)
    # Only a copy with a fill has figures; most a batch touches have only their ack so far (#16).
    fills_of = {cid: fills for cid, rows in by_copy.items() if (fills := [r for r in rows if r.kind in FILL_KINDS])}
    keys = {cid: leader_order_key(_first(r.signal_id for r in by_copy[cid])) for cid in fills_of}
    leader = _leader_prices(db, {k for k in keys.values() if k is not None})
    stored = slice(-len(SLIPPAGE_COLUMNS), None)  # the row's present figures, selected last
    updates = []
    for cid, fills in fills_of.items():
        copy_rows = by_copy[cid]
        key = keys[cid]
        leader_price = leader.get(key) if key is not None else None
        reference = _first(r.reference_price for r in copy_rows)
        fixes = _corrections(copy_rows) if any(r.kind in CORRECTION_KINDS for r in copy_rows) else {}
        for row in fills:
            quantity, price = _effective(row, fixes)
            if quantity <= 0 or price is None:  # busted: no fill, nothing to measure
                measured = FillSlippage(None, None, None)
            else:
                measured = fill_slippage(row.side, price, quantity, row.symbol, leader_price, reference)
            columns = measured.columns()
            if [columns[name] for name in SLIPPAGE_COLUMNS] != list(row[stored]):
                updates.append({"row_id": row.id, **columns})
    if updates:  # only rows whose figures changed: most batches re-settle copies already settled
        db.execute(_UPDATE, updates)
    return len(updates)


# ------------------------------------------------------------------------------------ reports


def _in_range(stmt: Q, start: date | None, end: date | None) -> Q:
    """Half-open UTC days, as every report (``storage.reports``)."""
    for bound, keep in ((start, E.occurred_at.__ge__), (end, E.occurred_at.__lt__)):
        if bound is not None:
            stmt = stmt.where(keep(datetime.combine(bound, time(0), tzinfo=UTC)))
    return stmt


def _groups(db: Session) -> dict[tuple[str, str], str]:
    """(leader, follower) → copy group id, from the mirrored config."""
    pairs = db.execute(
        select(CopyGroup.leader_account_id, CopyRule.follower_account_id, CopyGroup.id)
        .join(CopyRule, CopyRule.group_id == CopyGroup.id)
        .order_by(CopyGroup.id)
    )
    found: dict[tuple[str, str], str] = {}
    for leader, follower, group in pairs:
        found.setdefault((leader, follower), group)
    return found


def _leader_of(key: str | None, groups: Mapping[tuple[str, str], str], follower: str) -> str | None:
    if key is None:
        return None
    for account, _ in key_splits(key):
        if (account, follower) in groups:
            return groups[(account, follower)]
    return None


def copy_slippage(db: Session, start: date | None = None, end: date | None = None) -> list[CopySlippage]:
    """Every follower copy with fills in the range, its fills averaged (``CopySlippage.of_fills``)."""
    stmt = _in_range(
        select(
            E.client_order_id,
            E.account_id,
            E.signal_id,
            E.quantity,
            E.leader_price,
            E.slippage_leader_ticks,
            E.slippage_leader_amount,
            E.slippage_ref_ticks,
            E.slippage_ref_amount,
            E.kind,
            E.execution_id,
            E.price,
        ).where(
            E.is_leader.is_(False),
            E.kind.in_(FILL_KINDS) | E.request_outcome.is_(True),
            E.client_order_id.is_not(None),
        ),
        start,
        end,
    ).order_by(E.id)
    groups = _groups(db)
    found = list(db.execute(stmt))
    fixes = _corrections_of(db, {r.client_order_id for r in found if r.kind in FILL_KINDS})
    fills: dict[str, list[Any]] = defaultdict(list)
    signals: dict[str, str | None] = {}
    for row in found:
        if row.kind in FILL_KINDS and _effective(row, fixes)[0] > 0:  # a busted fill is no fill
            fills[row.client_order_id].append(row)
        signals[row.client_order_id] = signals.get(row.client_order_id) or row.signal_id
    out = []
    for cid, rows in fills.items():
        signal = signals.get(cid)
        measured = [
            (
                _effective(r, fixes)[0],
                FillSlippage(
                    r.leader_price,
                    _part(r.slippage_leader_ticks, r.slippage_leader_amount),
                    _part(r.slippage_ref_ticks, r.slippage_ref_amount),
                ),
            )
            for r in rows
        ]
        group = _leader_of(leader_order_key(signal), groups, rows[0].account_id)
        out.append(CopySlippage.of_fills(cid, rows[0].account_id, group, measured))
    return out


def _corrections_of(db: Session, copies: set[str], chunk: int = 500) -> dict[str, Any]:
    """The latest bust or correction of each fill of these copies (a correction may come
    after the report's range, so it is looked up by copy, not by time)."""
    ordered = sorted(copies)
    rows: list[Any] = []
    for i in range(0, len(ordered), chunk):
        stmt = select(E.id, E.kind, E.corrects, E.quantity, E.price).where(
            E.kind.in_(CORRECTION_KINDS), E.client_order_id.in_(ordered[i : i + chunk])
        )
        rows.extend(db.execute(stmt))
    return _corrections(rows)


def _part(ticks: Decimal | None, amount: Decimal | None) -> Slippage | None:
    return Slippage(Decimal(ticks), Decimal(amount)) if ticks is not None and amount is not None else None


def slippage_report(db: Session, start: date | None = None, end: date | None = None) -> list[SlippageSummary]:
    """Average and worst slippage per account and per copy group (``core.slippage.summarize``)."""
    return summarize(copy_slippage(db, start, end))

"""Records → rows: the pure half of the storage sink.

Every function here is a plain mapping from the records on the topics (``app.records``) to
what :class:`~copytrader.storage.writer.BatchWriter` writes, with no Kafka and no database, so
the batching logic is tested directly. Natural keys come from the records themselves
(signal id, client order id, execution id, error id, position time): that is what makes a
redelivered batch a no-op downstream.

Audit kinds: ``signal`` (trade.signals), ``intent`` (orders.requests, one per follower order),
``response`` (the executor's one answer to an intent: an Execution with ``request_outcome``),
``execution`` (every other Execution: fills, modifies, cancels, leader fills), ``error``
(order.errors). ``request`` is reserved for the broker-level request, which no topic carries yet.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from ..common.clock import utcnow
from ..core import records as core_records
from .audit import AuditRecord

log = logging.getLogger(__name__)


class _Record(Protocol):
    def as_dict(self) -> dict[str, Any]: ...


@dataclass(slots=True)
class RowBatch:
    """What one transaction writes: audit entries and the rows of the other tables."""

    audit: list[AuditRecord] = field(default_factory=list)
    executions: list[dict[str, Any]] = field(default_factory=list)
    snapshots: list[dict[str, Any]] = field(default_factory=list)
    pnl: list[dict[str, Any]] = field(default_factory=list)
    skipped: int = 0

    def __len__(self) -> int:
        return len(self.audit) + len(self.executions) + len(self.snapshots) + len(self.pnl)

    def extend(self, other: RowBatch) -> None:
        self.audit.extend(other.audit)
        self.executions.extend(other.executions)
        self.snapshots.extend(other.snapshots)
        self.pnl.extend(other.pnl)
        self.skipped += other.skipped


def aware(value: datetime | None, fallback: datetime | None = None) -> datetime:
    """Records carry aware UTC times; a naive one (from a foreign producer) is taken as UTC."""
    if value is None:
        value = fallback or utcnow()
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def stage_ms(stamps: Mapping[str, float], end: str, start: str) -> float | None:
    """Milliseconds between two stage stamps, or None when either is missing."""
    if end not in stamps or start not in stamps:
        return None
    return round((float(stamps[end]) - float(stamps[start])) * 1000.0, 3)


def _stamp_time(stamps: Mapping[str, float], stage: str) -> datetime | None:
    return datetime.fromtimestamp(float(stamps[stage]), UTC) if stage in stamps else None


#: ``as_dict`` of the records in ``core.records``: Faust's generated ``asdict`` without keys
#: that start with ``__`` (metadata).
_STANDARD_AS_DICT = core_records.Execution.as_dict
_PLAIN_ASDICT: dict[type, bool] = {}


def _asdict_is_as_dict(cls: type) -> bool:
    """Whether ``asdict()`` already is ``as_dict()`` for this class: the standard ``as_dict``
    and no field whose output name starts with ``__`` (decided once per class)."""
    found = _PLAIN_ASDICT.get(cls)
    if found is None:
        options = getattr(cls, "_options", None)
        names = [d.output_name for d in options.descriptors.values()] if options is not None else ["__"]
        found = getattr(cls, "as_dict", None) is _STANDARD_AS_DICT and not any(n.startswith("__") for n in names)
        _PLAIN_ASDICT[cls] = found
    return found


def _payload(record: _Record) -> dict[str, Any]:
    """``record.as_dict()``; for the records of ``core.records`` Faust's ``asdict()`` gives the
    same dict without filtering every key (half the cost). :class:`AuditRecord` encodes it."""
    if _asdict_is_as_dict(type(record)):
        plain: dict[str, Any] = record.asdict()  # type: ignore[attr-defined]
        return plain
    return record.as_dict()


# ------------------------------------------------------------------------------- per record


def signal_audit(signal: Any) -> AuditRecord:
    return AuditRecord(
        kind="signal",
        natural_id=signal.signal_id,
        occurred_at=aware(signal.occurred_at),
        payload=_payload(signal),
        signal_id=signal.signal_id,
        account_id=signal.leader_account,
        latency_ms=stage_ms(signal.stamps, "published", "detected"),
    )


def intent_audit(intent: Any) -> AuditRecord:
    stamps = intent.stamps
    return AuditRecord(
        kind="intent",
        natural_id=intent.client_order_id,
        occurred_at=aware(_stamp_time(stamps, "fanned_out") or _stamp_time(stamps, "detected")),
        payload=_payload(intent),
        signal_id=intent.signal_id,
        client_order_id=intent.client_order_id,
        account_id=intent.account_id,
        latency_ms=stage_ms(stamps, "fanned_out", "detected"),
    )


def execution_kind(execution: Any) -> str:
    return "response" if execution.request_outcome else "execution"


def execution_row(execution: Any) -> dict[str, Any]:
    """The ``executions`` row, latencies derived once here: e2e = acked − detected, etc."""
    stamps = {str(k): float(v) for k, v in (execution.stamps or {}).items()}
    return {
        "execution_id": execution.execution_id,
        "account_id": execution.account_id,
        "platform": execution.platform,
        "kind": execution.kind,
        "client_order_id": execution.client_order_id,
        "broker_order_id": execution.broker_order_id,
        "signal_id": execution.signal_id,
        "symbol": execution.symbol or "",
        "side": execution.side or "",
        "quantity": int(execution.quantity or 0),
        "price": execution.price,
        "cumulative_quantity": int(execution.cumulative_quantity or 0),
        "leaves_quantity": int(execution.leaves_quantity or 0),
        "is_leader": bool(execution.is_leader),
        "duplicate": bool(execution.duplicate),
        "request_outcome": bool(execution.request_outcome),
        "reason": execution.reason,
        "occurred_at": aware(execution.occurred_at),
        "stamps": stamps,
        "e2e_ms": stage_ms(stamps, "acked", "detected"),
        "internal_ms": stage_ms(stamps, "sent", "detected"),
        "fill_ms": stage_ms(stamps, "filled", "detected"),
        "corrects": execution.corrects,
        "original_quantity": execution.original_quantity,
        "original_price": execution.original_price,
        "reference_price": getattr(execution, "reference_price", None),
        "band_ticks": getattr(execution, "band_ticks", None),
        "band_touch": getattr(execution, "band_touch", None),
    }


#: The keys of every :func:`execution_row` (the writer compiles its INSERT for them once).
EXECUTION_KEYS = (
    "execution_id",
    "account_id",
    "platform",
    "kind",
    "client_order_id",
    "broker_order_id",
    "signal_id",
    "symbol",
    "side",
    "quantity",
    "price",
    "cumulative_quantity",
    "leaves_quantity",
    "is_leader",
    "duplicate",
    "request_outcome",
    "reason",
    "occurred_at",
    "stamps",
    "e2e_ms",
    "internal_ms",
    "fill_ms",
    "corrects",
    "original_quantity",
    "original_price",
    "reference_price",
    "band_ticks",
    "band_touch",
)


def execution_audit(execution: Any, row: Mapping[str, Any] | None = None) -> AuditRecord:
    row = row or execution_row(execution)
    latency = row["e2e_ms"] if execution.request_outcome else (row["fill_ms"] or row["e2e_ms"])
    return AuditRecord(
        kind=execution_kind(execution),
        natural_id=execution.execution_id,
        occurred_at=row["occurred_at"],
        payload=_payload(execution),
        signal_id=execution.signal_id,
        client_order_id=execution.client_order_id,
        account_id=execution.account_id,
        latency_ms=latency,
    )


def error_audit(error: Any) -> AuditRecord:
    return AuditRecord(
        kind="error",
        natural_id=error.error_id,
        occurred_at=aware(error.occurred_at),
        payload=_payload(error),
        signal_id=error.signal_id,
        client_order_id=error.client_order_id,
        account_id=error.account_id,
    )


def minute(ts: datetime) -> datetime:
    return ts.replace(second=0, microsecond=0)


def position_rows(position: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """A ``position_snapshots`` row and the ``pnl_series`` point of its minute."""
    ts = aware(position.updated_at)
    snapshot = {
        "account_id": position.account_id,
        "symbol": position.symbol,
        "ts": ts,
        "net_qty": int(position.net_quantity),
        "avg_price": position.average_price,
        "realized_pnl": position.realized_pnl,
        "fills": int(position.fills),
    }
    point = {
        "account_id": position.account_id,
        "symbol": position.symbol,
        "ts": minute(ts),
        "last_update_at": ts,
        "net_qty": snapshot["net_qty"],
        "avg_price": snapshot["avg_price"],
        "realized_pnl": snapshot["realized_pnl"],
    }
    return snapshot, point


# ------------------------------------------------------------------------------- batches


def signals_batch(payloads: Iterable[bytes | str | dict[str, object]]) -> RowBatch:
    """Decode raw ``trade.signals`` values; malformed ones are skipped (ingestion already put
    them on ``order.errors`` with a reason, which is how they reach the audit log)."""
    from ..core.signals import decode_signal

    batch = RowBatch()
    for payload in payloads:
        try:
            batch.audit.append(signal_audit(decode_signal(payload)))
        except (ValueError, TypeError):
            batch.skipped += 1
    if batch.skipped:
        log.debug("skipped %d malformed signal(s)", batch.skipped)
    return batch


def intents_batch(batches: Iterable[Any]) -> RowBatch:
    """``orders.requests`` carries IntentBatch records: one audit entry per follower intent."""
    return RowBatch(audit=[intent_audit(i) for b in batches for i in b.intents])


def executions_batch(executions: Iterable[Any]) -> RowBatch:
    batch = RowBatch()
    seen: set[str] = set()
    for execution in executions:
        if execution.execution_id in seen:
            continue
        seen.add(execution.execution_id)
        row = execution_row(execution)
        batch.executions.append(row)
        batch.audit.append(execution_audit(execution, row))
    return batch


def errors_batch(errors: Iterable[Any]) -> RowBatch:
    return RowBatch(audit=[error_audit(e) for e in errors])


def positions_batch(positions: Iterable[Any]) -> RowBatch:
    """Snapshots deduplicated on their key; one pnl point per minute (the latest update wins,
    reduced here because PostgreSQL refuses to upsert one row twice in one statement)."""
    snapshots: dict[tuple[str, str, datetime], dict[str, Any]] = {}
    points: dict[tuple[str, str, datetime], dict[str, Any]] = {}
    for position in positions:
        snapshot, point = position_rows(position)
        snapshots.setdefault((snapshot["account_id"], snapshot["symbol"], snapshot["ts"]), snapshot)
        key = (point["account_id"], point["symbol"], point["ts"])
        if key not in points or points[key]["last_update_at"] < point["last_update_at"]:
            points[key] = point
    return RowBatch(snapshots=list(snapshots.values()), pnl=list(points.values()))

"""The audit log as a hash chain: append in order, verify by walking it.

Each entry's ``hash`` is ``sha256(prev_hash + canonical_json(content))`` where ``content`` is
everything the entry says (seq, time, kind, ids, payload, latency) and ``prev_hash`` is the
previous entry's hash (64 zeros for the first). Changing, inserting or deleting any entry
therefore breaks every link after it, and :func:`verify` names the first broken ``seq``.
What a chain cannot show is the removal of its newest entries; publish the head hash
(``VerifyResult.head_hash``) somewhere else if that matters.

Appends are serialised by :class:`AuditWriter` (a lock held until commit, plus a PostgreSQL
advisory lock so a second process cannot fork the chain either). ``(kind, natural_id)`` is
unique, and entries already present are skipped before a ``seq`` is assigned, so a Kafka
redelivery neither writes twice nor leaves a gap.
"""

from __future__ import annotations

import base64
import enum
import hashlib
import json
import math
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, cast

from sqlalchemy import Table, insert, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from ..common.retrying import again_now
from .models import AUDIT_KINDS, AuditEntry

GENESIS_HASH = "0" * 64
ADVISORY_LOCK_KEY = 0x4354_4155_4449_54  # "CTAUDIT": one chain per database
VERIFY_PAGE = 1000
APPEND_ATTEMPTS = 3


def format_time(value: datetime) -> str:
    """One spelling per instant: UTC, microseconds, ``Z`` (aware times only)."""
    if value.tzinfo is None:
        raise ValueError("naive datetime in audit content: use timezone-aware UTC")
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def to_jsonable(value: Any) -> Any:
    """Plain JSON values; Decimal and times become strings so no precision depends on a parser."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError("NaN/infinity cannot be stored in the audit log")
        return value
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        return format_time(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, enum.Enum):
        return to_jsonable(value.value)
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        items = [to_jsonable(v) for v in value]
        return sorted(items, key=canonical_json) if isinstance(value, (set, frozenset)) else items
    raise TypeError(f"cannot put {type(value).__name__} in the audit log")


def canonical_json(value: Any) -> str:
    """Sorted keys, no whitespace, UTF-8 kept: the same content always gives the same text."""
    return json.dumps(to_jsonable(value), sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def chain_hash(prev_hash: str, content: dict[str, Any]) -> str:
    return hashlib.sha256((prev_hash + canonical_json(content)).encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """An entry to append; ``seq`` and the hashes are assigned by the chain."""

    kind: str
    natural_id: str
    occurred_at: datetime
    payload: dict[str, Any]
    signal_id: str | None = None
    client_order_id: str | None = None
    account_id: str | None = None
    latency_ms: float | None = None

    def __post_init__(self) -> None:
        if self.kind not in AUDIT_KINDS:
            raise ValueError(f"audit kind must be one of {', '.join(AUDIT_KINDS)}; got {self.kind!r}")
        if not self.natural_id:
            raise ValueError("audit natural_id must not be empty")

    @property
    def key(self) -> tuple[str, str]:
        return self.kind, self.natural_id


@dataclass(frozen=True, slots=True)
class Appended:
    """An entry as the chain appended it: its place and its links."""

    seq: int
    kind: str
    natural_id: str
    prev_hash: str
    hash: str


def entry_content(
    seq: int,
    occurred_at: datetime,
    kind: str,
    natural_id: str,
    signal_id: str | None,
    client_order_id: str | None,
    account_id: str | None,
    payload: Any,
    latency_ms: float | None,
) -> dict[str, Any]:
    """What an entry's hash covers (``recorded_at`` is bookkeeping and is left out)."""
    return {
        "seq": seq,
        "occurred_at": format_time(occurred_at),
        "kind": kind,
        "natural_id": natural_id,
        "signal_id": signal_id,
        "client_order_id": client_order_id,
        "account_id": account_id,
        "payload": payload,
        "latency_ms": latency_ms,
    }


def _row_content(row: Any) -> dict[str, Any]:
    return entry_content(
        row.seq,
        row.occurred_at,
        row.kind,
        row.natural_id,
        row.signal_id,
        row.client_order_id,
        row.account_id,
        row.payload,
        row.latency_ms,
    )


def append_entries(db: Session, records: Sequence[AuditRecord]) -> list[Appended]:
    """Append the records not yet in the log, chained after the current head.

    The caller must hold the chain's lock until it commits (:class:`AuditWriter` does): two
    appenders reading the same head would otherwise collide on ``seq``.
    """
    if db.get_bind().dialect.name == "postgresql":
        db.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": ADVISORY_LOCK_KEY})
    fresh: dict[tuple[str, str], AuditRecord] = {}
    for record in records:
        fresh.setdefault(record.key, record)
    if not fresh:
        return []
    ids = sorted({natural_id for _, natural_id in fresh})
    for start in range(0, len(ids), 500):
        present = db.execute(
            select(AuditEntry.kind, AuditEntry.natural_id).where(AuditEntry.natural_id.in_(ids[start : start + 500]))
        )
        for kind, natural_id in present:
            fresh.pop((kind, natural_id), None)
    head = db.execute(select(AuditEntry.seq, AuditEntry.hash).order_by(AuditEntry.seq.desc()).limit(1)).first()
    seq, prev_hash = (head[0], head[1]) if head else (0, GENESIS_HASH)
    rows: list[dict[str, Any]] = []
    recorded_at = datetime.now(UTC)
    for record in fresh.values():
        seq += 1
        payload = to_jsonable(record.payload)
        latency = None if record.latency_ms is None else round(float(record.latency_ms), 3)
        occurred = record.occurred_at.astimezone(UTC)
        content = entry_content(
            seq,
            occurred,
            record.kind,
            record.natural_id,
            record.signal_id,
            record.client_order_id,
            record.account_id,
            payload,
            latency,
        )
        digest = chain_hash(prev_hash, content)
        rows.append(
            {
                "seq": seq,
                "occurred_at": occurred,
                "kind": record.kind,
                "natural_id": record.natural_id,
                "signal_id": record.signal_id,
                "client_order_id": record.client_order_id,
                "account_id": record.account_id,
                "payload": payload,
                "latency_ms": latency,
                "prev_hash": prev_hash,
                "hash": digest,
                "recorded_at": recorded_at,
            }
        )
        prev_hash = digest
    # One executemany through SQLAlchemy Core: the ORM's unit of work (an identity-mapped
    # object, its state and a flush plan per entry) was most of the store worker's CPU.
    if rows:
        db.execute(insert(cast(Table, AuditEntry.__table__)), rows)
    return [Appended(r["seq"], r["kind"], r["natural_id"], r["prev_hash"], r["hash"]) for r in rows]


class AuditWriter:
    """The one appender of a process: serialises transactions that append to the chain."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions
        self._lock = threading.Lock()

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A session whose commit happens before the lock is released (other tables may join)."""
        with self._lock, self._sessions.begin() as db:
            yield db

    def run(self, work: Any, attempts: int = APPEND_ATTEMPTS) -> Any:
        """Run ``work(db)`` in :meth:`transaction`, retrying when another process won a race."""
        for attempt in again_now(lambda exc: isinstance(exc, IntegrityError), what="audit append", attempts=attempts):
            with attempt, self.transaction() as db:
                return work(db)
        raise AssertionError("unreachable: tenacity returns or re-raises")  # pragma: no cover

    def append(self, records: Sequence[AuditRecord]) -> list[Appended]:
        result: list[Appended] = self.run(lambda db: append_entries(db, records))
        return result


@dataclass(frozen=True, slots=True)
class VerifyResult:
    entries: int
    broken_seq: int | None = None
    reason: str | None = None
    head_hash: str = GENESIS_HASH

    @property
    def ok(self) -> bool:
        return self.broken_seq is None


def verify(db: Session, page: int = VERIFY_PAGE) -> VerifyResult:
    """Walk the chain in ``seq`` order (in pages, so memory stays flat); stop at the first break.

    Reads plain rows, not ORM objects, so a long chain does not fill the session's identity map.
    """
    table = AuditEntry.__table__
    expected_seq, prev_hash, count, last = 1, GENESIS_HASH, 0, -1
    while True:
        rows = db.execute(select(*table.c).where(table.c.seq > last).order_by(table.c.seq).limit(page)).all()
        if not rows:
            return VerifyResult(entries=count, head_hash=prev_hash)
        for row in rows:
            if row.seq != expected_seq:
                return VerifyResult(
                    count, expected_seq, f"seq {expected_seq} is missing (next is {row.seq})", prev_hash
                )
            if row.prev_hash != prev_hash:
                return VerifyResult(count, row.seq, "prev_hash does not match the previous entry's hash", prev_hash)
            if chain_hash(prev_hash, _row_content(row)) != row.hash:
                return VerifyResult(count, row.seq, "hash does not match the entry's content", prev_hash)
            prev_hash, expected_seq, count, last = row.hash, row.seq + 1, count + 1, row.seq

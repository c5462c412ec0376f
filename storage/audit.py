"""The audit log as a hash chain: append in order, verify by walking it.

Each entry's ``hash`` is ``sha256(prev_hash + canonical_json(content))`` where ``content`` is
everything the entry says (seq, time, kind, ids, payload, latency) and ``prev_hash`` is the
previous entry's hash (64 zeros for the first). Changing, inserting or deleting any entry
therefore breaks every link after it, and :func:`verify` names the first broken ``seq``.
The payload is encoded once (:attr:`AuditRecord.payload_json`): that text is both what the
hash covers and what the JSON column stores; :func:`verify` recomputes every hash from the
stored values the original way, so entries written before and after that change verify alike.
What a chain cannot show is the removal of its newest entries; publish the head hash
(``VerifyResult.head_hash``) somewhere else if that matters.

Appends are serialised by :class:`AuditWriter` (a lock held until commit, plus a PostgreSQL
advisory lock so a second process cannot fork the chain either). ``(kind, natural_id)`` is
unique, and entries already present are skipped before a ``seq`` is assigned, so a Kafka
redelivery neither writes twice nor leaves a gap.
"""

from __future__ import annotations

import hashlib
import json
import math
import threading
import weakref
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from json.encoder import encode_basestring
from typing import Any, cast

from sqlalchemy import Dialect, Table, bindparam, insert, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from ..common.retrying import again_now
from .canonical import _ENCODE, canonical_json, format_time, payload_json, to_jsonable
from .db import JsonText, stores_json_text
from .driver_insert import DriverInsert, bulk_insert
from .models import AUDIT_KINDS, AuditEntry

GENESIS_HASH = "0" * 64
ADVISORY_LOCK_KEY = 0x4354_4155_4449_54  # "CTAUDIT": one chain per database
VERIFY_PAGE = 1000
APPEND_ATTEMPTS = 3
_C = AuditEntry.__table__.c  # Core columns: the append path needs no ORM loading
# The append path's statements, built once (a statement built per call costs its coercions).
_PRESENT = select(_C.kind, _C.natural_id).where(
    _C.kind.in_(bindparam("kinds", expanding=True)), _C.natural_id.in_(bindparam("ids", expanding=True))
)
_HEAD = select(_C.seq, _C.hash).order_by(_C.seq.desc()).limit(1)
_INSERT = insert(cast(Table, AuditEntry.__table__))
_ROW_KEYS = (
    "seq",
    "occurred_at",
    "kind",
    "natural_id",
    "signal_id",
    "client_order_id",
    "account_id",
    "payload",
    "latency_ms",
    "prev_hash",
    "hash",
    "recorded_at",
)
_DRIVER_INSERTS: weakref.WeakKeyDictionary[Dialect, DriverInsert] = weakref.WeakKeyDictionary()


def _driver_insert(dialect: Dialect) -> DriverInsert | None:
    """The append's INSERT compiled for this SQLite engine (None elsewhere: Core's path)."""
    if dialect.name != "sqlite":
        return None
    found = _DRIVER_INSERTS.get(dialect)
    if found is None:
        found = _DRIVER_INSERTS[dialect] = DriverInsert(_INSERT, _ROW_KEYS, dialect)
    return found


def chain_hash(prev_hash: str, content: dict[str, Any]) -> str:
    return hashlib.sha256((prev_hash + canonical_json(content)).encode("utf-8")).hexdigest()


def _scalar_json(value: Any) -> str:
    if value is None:
        return "null"
    kind = type(value)
    if kind is str:
        return encode_basestring(value)  # what the encoder writes for a string inside an object
    if kind is int:
        return int.__repr__(value)  # the encoder's spelling of an int
    if kind is float and math.isfinite(value):
        return float.__repr__(value)  # the encoder's spelling of a finite float
    return _ENCODE(to_jsonable(value))  # anything else (and NaN's refusal) the long way


def _text_json(value: str | None) -> str:
    """:func:`_scalar_json` of an id: a string or None, the common cases without a call more."""
    if type(value) is str:
        return encode_basestring(value)
    return "null" if value is None else _scalar_json(value)


def entry_json(
    seq: int,
    occurred_text: str,
    kind: str,
    natural_id: str,
    signal_id: str | None,
    client_order_id: str | None,
    account_id: str | None,
    payload_json: str,
    latency_ms: float | None,
) -> str:
    """``canonical_json(entry_content(...))`` assembled from its parts, so the payload, already
    canonical text (:attr:`AuditRecord.payload_json`), is not walked and encoded again.

    The keys are written in sorted order and each value as the encoder writes it inside an
    object, which is what ``json.dumps(sort_keys=True)`` produces; tests compare the two over
    generated entries, and :func:`verify` still recomputes every hash the original way.
    """
    return "".join(
        (
            '{"account_id":',
            _text_json(account_id),
            ',"client_order_id":',
            _text_json(client_order_id),
            ',"kind":',
            _text_json(kind),
            ',"latency_ms":',
            _scalar_json(latency_ms),
            ',"natural_id":',
            _text_json(natural_id),
            ',"occurred_at":',
            encode_basestring(occurred_text),
            ',"payload":',
            payload_json,
            ',"seq":',
            int.__repr__(seq) if type(seq) is int else _scalar_json(seq),
            ',"signal_id":',
            _text_json(signal_id),
            "}",
        )
    )


_set = object.__setattr__  # how the immutable AuditRecord sets its own slots


class AuditRecord:
    """An entry to append; ``seq`` and the hashes are assigned by the chain.

    The payload is encoded canonically once, here, where the record is built
    (:func:`~copytrader.storage.canonical.payload_json`): the hash and the stored column both
    use that one text. :attr:`payload` is the payload as plain JSON, made when asked for (the
    write path needs only the text). Immutable, like the frozen dataclass it was.
    """

    __slots__ = (
        "_plain",
        "account_id",
        "client_order_id",
        "kind",
        "latency_ms",
        "natural_id",
        "occurred_at",
        "payload_json",
        "signal_id",
    )
    kind: str
    natural_id: str
    occurred_at: datetime
    signal_id: str | None
    client_order_id: str | None
    account_id: str | None
    latency_ms: float | None
    payload_json: str
    _plain: Any

    def __init__(
        self,
        kind: str,
        natural_id: str,
        occurred_at: datetime,
        payload: dict[str, Any],
        signal_id: str | None = None,
        client_order_id: str | None = None,
        account_id: str | None = None,
        latency_ms: float | None = None,
    ) -> None:
        if kind not in AUDIT_KINDS:
            raise ValueError(f"audit kind must be one of {', '.join(AUDIT_KINDS)}; got {kind!r}")
        if not natural_id:
            raise ValueError("audit natural_id must not be empty")
        text_, plain = payload_json(payload)
        # One call per slot, not a loop over a tuple of pairs: a record per audit entry (#16).
        _set(self, "kind", kind)
        _set(self, "natural_id", natural_id)
        _set(self, "occurred_at", occurred_at)
        _set(self, "signal_id", signal_id)
        _set(self, "client_order_id", client_order_id)
        _set(self, "account_id", account_id)
        _set(self, "latency_ms", latency_ms)
        _set(self, "payload_json", text_)
        _set(self, "_plain", plain)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"AuditRecord is immutable: cannot set {name}")

    @property
    def payload(self) -> Any:
        """The payload as plain JSON (what ``to_jsonable`` makes of it; parsing the canonical
        text gives exactly that)."""
        if self._plain is None:
            object.__setattr__(self, "_plain", json.loads(self.payload_json))
        return self._plain

    def _fields(self) -> tuple[Any, ...]:
        return (
            self.kind,
            self.natural_id,
            self.occurred_at,
            self.payload_json,
            self.signal_id,
            self.client_order_id,
            self.account_id,
            self.latency_ms,
        )

    def __eq__(self, other: object) -> bool:
        return isinstance(other, AuditRecord) and self._fields() == other._fields()

    __hash__ = None  # type: ignore[assignment]  # like the dataclass: the payload is a dict

    def __repr__(self) -> str:
        return (
            f"AuditRecord(kind={self.kind!r}, natural_id={self.natural_id!r}, occurred_at={self.occurred_at!r},"
            f" signal_id={self.signal_id!r}, client_order_id={self.client_order_id!r},"
            f" account_id={self.account_id!r}, latency_ms={self.latency_ms!r})"
        )

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
    kinds = sorted({kind for kind, _ in fresh})
    for start in range(0, len(ids), 500):
        # ``kind`` too: (kind, natural_id) is the unique index, so this is an index search; on
        # natural_id alone both databases scanned the whole index, once per batch (#16).
        present = db.execute(_PRESENT, {"kinds": kinds, "ids": ids[start : start + 500]}).all()
        for kind, natural_id in present:
            fresh.pop((kind, natural_id), None)
    head = db.execute(_HEAD).first()
    seq, prev_hash = (head[0], head[1]) if head else (0, GENESIS_HASH)
    dialect = db.get_bind().dialect
    pre_encoded = stores_json_text(db)
    driver = _driver_insert(dialect)
    # Prepared rows hold the payload as its canonical text: only where serialize_json stores it.
    prepared = driver if pre_encoded and driver is not None and driver.order == _ROW_KEYS else None
    recorded_at = datetime.now(UTC)
    recorded = recorded_at if prepared is None else prepared.convert("recorded_at", recorded_at)
    rows: list[tuple[Any, ...]] = []
    for record in fresh.values():
        seq += 1
        latency = None if record.latency_ms is None else round(float(record.latency_ms), 3)
        occurred = record.occurred_at.astimezone(UTC)
        occurred_text = format_time(occurred)
        content_json = entry_json(
            seq,
            occurred_text,
            record.kind,
            record.natural_id,
            record.signal_id,
            record.client_order_id,
            record.account_id,
            record.payload_json,
            latency,
        )
        digest = hashlib.sha256((prev_hash + content_json).encode("utf-8")).hexdigest()
        if prepared is not None:  # the driver's values in _ROW_KEYS order: no dict, no conversion
            occurred_value: Any = _sqlite_time(occurred, occurred_text, prepared)
            payload: Any = record.payload_json
        else:
            occurred_value = occurred
            payload = JsonText(record.payload_json) if pre_encoded else record.payload
        rows.append(
            (
                seq,
                occurred_value,
                record.kind,
                record.natural_id,
                record.signal_id,
                record.client_order_id,
                record.account_id,
                payload,
                latency,
                prev_hash,
                digest,
                recorded,
            )
        )
        prev_hash = digest
    # One executemany: the ORM's unit of work (an identity-mapped object, its state and a
    # flush plan per entry) was most of the store worker's CPU; on SQLite the rows go to the
    # driver as they are built (#16), elsewhere through Core (PostgreSQL's multi-row INSERTs).
    if rows and prepared is not None:
        prepared.execute_prepared(db.connection(), rows)
    elif rows:
        bulk_insert(db, _INSERT, driver, [dict(zip(_ROW_KEYS, row, strict=True)) for row in rows])
    return [Appended(row[0], row[2], row[3], row[9], row[10]) for row in rows]


def _sqlite_time(value: datetime, text: str, driver: DriverInsert) -> Any:
    """The SQLite text of an aware UTC time, cut from its audit spelling (``format_time``:
    ``YYYY-MM-DDTHH:MM:SS.ffffffZ``) instead of formatting the instant a second time; what
    the spelling may not cover (a subclass, a year before 1000) the driver converts."""
    if type(value) is datetime and value.tzinfo is UTC and len(text) == 27:
        return text[:10] + " " + text[11:26]
    return driver.convert("occurred_at", value)


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

"""The executor's attempt journal: each intent's client order id, written down before the broker
call, and how the call ended.

Why: the real platforms do not refuse a repeated client order id, so after a crash the
executor must know which redelivered intents it may already have sent. An intent found here
as ``attempting`` (or ``unknown``) was possibly sent: the executor looks it up at the broker
before it places again. One found ``done`` was answered: its recorded outcome is reported
again, with no broker call at all.

SQLite in WAL mode with ``synchronous=NORMAL``: a commit is a ``write()`` into the WAL file,
with no fsync, so it costs tens of microseconds and survives the process being killed (the
OS holds the page); only a power loss can take the last commits, and the other rule covers
that and every host change: an intent redelivered from before this consumer's assignment is
treated as uncertain whatever the journal says (``agents/execution/intent_consumer.py``). The file
lives in the data dir; rows older than ``keep_s`` are pruned, and at most ``max_rows`` kept.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TypeAlias

log = logging.getLogger(__name__)

ATTEMPTING = "attempting"
DONE = "done"
UNKNOWN = "unknown"

# Rows in the order they were begun (``seq``), found by (signal id, client id) through a
# unique index. Why not a table keyed by the client id (the layout before #16's round 26):
# client ids are hashes, so a group's 200 rows landed on 200 random pages, and both of a
# copy's transactions (begin, then finish) wrote every one of them to the WAL again. Why not
# an index on the client id alone (round 26 to 27): the same 200 random leaf pages, in the
# index, written by every begin. Keyed by the signal first, a group's rows sit side by side in
# the table and in the index: a begin writes a few pages of each, a finish a few of the table;
# half the journal's CPU per copy (docs/benchmarks.md). Rows with no signal (``signal_id``
# NULL: rows moved from a file before the signal key, and intents whose signal may differ
# between attempts, a netting order) are found by client id in the same index, under its NULL
# prefix (NULLs never conflict there, so their writes look before they insert); the moved
# ones age out like the others.
_SCHEMA = """
CREATE TABLE IF NOT EXISTS attempts (
    seq INTEGER PRIMARY KEY,
    signal_id TEXT,
    client_order_id TEXT NOT NULL,
    account_id TEXT NOT NULL,
    action TEXT NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 1,
    kind TEXT,
    broker_order_id TEXT,
    reason TEXT,
    updated REAL NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS attempts_key ON attempts (signal_id, client_order_id);
CREATE INDEX IF NOT EXISTS attempts_updated ON attempts (updated);
"""
_FIELDS = "client_order_id, state, attempts, kind, broker_order_id, reason"
_COLUMNS = "client_order_id, account_id, action, state, attempts, kind, broker_order_id, reason, updated"


class _Unread:
    """Marks a begun intent whose row (if any) the next flush reads from the file."""


_UNREAD = _Unread()
#: A begun intent waiting for the flush: (signal, account, action, time, what was known of it
#: already, or _UNREAD).
Begun: TypeAlias = "tuple[str | None, str, str, float, Attempt | None | _Unread]"
_READ_CHUNK = 500  # ids per ``IN (...)`` read, far below SQLite's bound-parameter limit


@dataclass(frozen=True, slots=True)
class Attempt:
    """What the journal knew of an intent before this attempt began."""

    client_order_id: str
    state: str
    attempts: int
    kind: str | None = None  # outcome kind when done: the Execution kind (ack, reject, ...)
    broker_order_id: str | None = None
    reason: str | None = None

    @property
    def done(self) -> bool:
        return self.state == DONE


class AttemptJournal:
    """One row per intent: ``begin`` before the broker call, ``finish`` after its answer.

    Group commit: the lanes of one signal begin their attempts in the same loop turn, and
    one transaction (one WAL write) records them all before any of them calls its broker; an
    outcome is written with the next transaction (or ``finish_delay_s`` later), off the copy's
    critical path. Losing an unwritten outcome costs a lookup after a crash, never a repeat.
    """

    def __init__(
        self,
        path: Path | str,
        *,
        keep_s: float = 3 * 86400.0,
        max_rows: int = 500_000,
        prune_every: int = 2000,
        finish_delay_s: float = 0.02,
    ) -> None:
        self.path = Path(path)
        if str(path) != ":memory:":
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self.keep_s = keep_s
        self.max_rows = max_rows
        self.prune_every = prune_every
        self.finish_delay_s = finish_delay_s
        self._since_prune = 0
        # cid -> (signal, account, action, time, what was known of it already, or _UNREAD)
        self._begins: dict[str, Begun] = {}
        self._finishes: dict[str, tuple[str | None, Attempt]] = {}  # cid -> (signal, outcome)
        # One future per begin waiting for the next flush (None: no flush scheduled), resolved
        # with what the journal held of each begun intent before. Not one shared future behind
        # ``asyncio.shield``: that wakes each lane one loop turn later, for one more callback.
        self._flushed: list[asyncio.Future[dict[str, Attempt | None]]] | None = None
        self._timer: asyncio.TimerHandle | None = None
        # Autocommit (isolation_level None): each statement is its own short transaction.
        self._db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA busy_timeout=2000")  # two executors of one host may share the file
        self._migrate()
        self._db.executescript(_SCHEMA)
        self._rows = len(self)  # counted once; kept up to date so pruning never scans the table
        self._unkeyed = self._has_unkeyed()  # rows moved from a file before the signal key
        self.prune()

    # -- the copy path ------------------------------------------------------------------------
    async def begin(
        self, client_order_id: str, account_id: str, action: str, *, signal_id: str | None
    ) -> Attempt | None:
        """Durably record an attempt of this intent; returns what was recorded before (None: fresh).

        ``signal_id`` keys the row with the client id (None: an intent whose signal may differ
        between its attempts, found by the client id alone); :meth:`finish` and :meth:`get`
        name the same.

        Returns once the row is in the WAL file. A ``done`` row is returned untouched: the
        caller reports its outcome and makes no broker call. What the file held is read by the
        flush, for every intent of the group in one query, not by one query per intent.
        """
        pending = self._finishes.get(client_order_id)
        if pending is not None and pending[1].done:
            return pending[1]
        earlier = self._begins.get(client_order_id)
        known: Attempt | None | _Unread = _UNREAD if earlier is None else earlier[4]
        if pending is not None:  # an unknown outcome being tried again
            del self._finishes[client_order_id]
            known = pending[1]
        self._begins[client_order_id] = (signal_id, account_id, action, time.time(), known)
        loop = asyncio.get_running_loop()
        if self._flushed is None:
            self._flushed = []
            loop.call_soon(self.flush)
        flushed: asyncio.Future[dict[str, Attempt | None]] = loop.create_future()
        self._flushed.append(flushed)
        priors = await flushed
        return priors.get(client_order_id)

    def finish(
        self,
        client_order_id: str,
        kind: str,
        broker_order_id: str | None = None,
        reason: str | None = None,
        *,
        signal_id: str | None,
        state: str = DONE,
    ) -> None:
        """The broker answered (``done``), or after every lookup nobody can tell (``unknown``).

        Written with the next transaction; until then :meth:`get` answers from memory.
        """
        self._finishes[client_order_id] = (
            signal_id,
            Attempt(client_order_id, state, 0, kind, broker_order_id, reason),
        )
        if self._timer is None and self._flushed is None:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:  # no loop (a script, a test): write now
                self.flush()
                return
            self._timer = loop.call_later(self.finish_delay_s, self.flush)

    def get(self, client_order_id: str, *, signal_id: str | None) -> Attempt | None:
        pending = self._finishes.get(client_order_id)
        if pending is not None:
            return pending[1]
        found = self._read(signal_id, [client_order_id])
        return found.get(client_order_id)

    def flush(self) -> None:
        """Write every pending begin and finish in one transaction, then wake the waiters.

        The finishes go with the begins on purpose, although the begins' lanes then wait for
        them too: a run of stale copies is journaled as netted (``skip_stale_run``) before its
        netting order is begun, and this transaction puts both in the file before that order is
        sent. Written apart and later, a crash in between placed the netted copies again
        (session 29 tried it; ``tests/integration/test_chaos_exactly_once.py`` found it)."""
        begins, self._begins = self._begins, {}
        finishes, self._finishes = self._finishes, {}
        waiters, self._flushed = self._flushed, None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        try:
            priors = self._priors(begins)
            # A row found done is answered already: left untouched, its outcome reported again.
            writes = {cid: begun for cid, begun in begins.items() if not _is_done(priors[cid])}
            if writes or finishes:
                self._write(writes, finishes, priors)
        except Exception as exc:  # noqa: BLE001 - the waiting lanes must hear of it, not hang
            log.exception("attempt journal %s: write failed", self.path)
            for waiter in waiters or ():
                if not waiter.done():  # a lane cancelled meanwhile is not told
                    waiter.set_exception(exc)
            return
        for waiter in waiters or ():
            if not waiter.done():
                waiter.set_result(priors)
        self._rows += sum(1 for prior in priors.values() if prior is None)
        self._since_prune += len(writes)
        if self._since_prune >= self.prune_every:
            self.prune()

    def _priors(self, begins: dict[str, Begun]) -> dict[str, Attempt | None]:
        """What the journal held of each begun intent: known in memory, else read from the file
        (one read per signal of the group: usually one)."""
        by_signal: dict[str | None, list[str]] = {}
        for cid, begun in begins.items():
            if begun[4] is _UNREAD:
                by_signal.setdefault(begun[0], []).append(cid)
        found: dict[str, Attempt] = {}
        for signal_id, cids in by_signal.items():
            found.update(self._read(signal_id, cids))
        return {cid: found.get(cid) if isinstance(begun[4], _Unread) else begun[4] for cid, begun in begins.items()}

    def _read(self, signal_id: str | None, cids: list[str]) -> dict[str, Attempt]:
        """The rows of these client ids of one signal; a row with no signal (see ``_SCHEMA``)
        is found by its client id alone."""
        found: dict[str, Attempt] = {}
        for start in range(0, len(cids), _READ_CHUNK):
            chunk = cids[start : start + _READ_CHUNK]
            marks = ",".join("?" * len(chunk))
            rows = []
            if signal_id is not None:
                rows = self._db.execute(
                    f"SELECT {_FIELDS} FROM attempts WHERE signal_id = ? AND client_order_id IN ({marks})",
                    (signal_id, *chunk),
                ).fetchall()
            if (self._unkeyed or signal_id is None) and len(rows) < len(chunk):
                rows += self._db.execute(
                    f"SELECT {_FIELDS} FROM attempts WHERE signal_id IS NULL AND client_order_id IN ({marks})",
                    chunk,
                ).fetchall()
            for cid, state, attempts, kind, broker_order_id, reason in rows:
                found.setdefault(cid, Attempt(cid, state, attempts, kind, broker_order_id, reason))
        return found

    def _write(
        self,
        begins: dict[str, Begun],
        finishes: dict[str, tuple[str | None, Attempt]],
        priors: dict[str, Attempt | None],
    ) -> None:
        db = self._db
        keyed = [(cid, begun) for cid, begun in begins.items() if begun[0] is not None]
        unkeyed = [(cid, begun) for cid, begun in begins.items() if begun[0] is None]
        now = time.time()
        answers = [
            (a.state, a.kind, a.broker_order_id, a.reason, now, signal, cid) for cid, (signal, a) in finishes.items()
        ]
        db.execute("BEGIN")
        try:
            if self._unkeyed:  # a row with no signal, begun again with one: it takes its signal
                db.executemany(
                    "UPDATE attempts SET signal_id = ? WHERE signal_id IS NULL AND client_order_id = ?",
                    [(begun[0], cid) for cid, begun in keyed if priors[cid] is not None],
                )
            db.executemany(
                "INSERT INTO attempts (signal_id, client_order_id, account_id, action, state, updated) "
                "VALUES (?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (signal_id, client_order_id) DO UPDATE SET state = excluded.state, "
                "attempts = attempts + 1, updated = excluded.updated",
                [(signal, cid, account, action, ATTEMPTING, at) for cid, (signal, account, action, at, _) in keyed],
            )
            if unkeyed:  # rare (netting orders): NULLs never conflict in the unique index
                self._write_unkeyed(unkeyed, priors)
            db.executemany(
                "UPDATE attempts SET state = ?, kind = ?, broker_order_id = ?, reason = ?, updated = ? "
                "WHERE signal_id = ? AND client_order_id = ?",
                [answer for answer in answers if answer[5] is not None],
            )
            if self._unkeyed or any(answer[5] is None for answer in answers):  # answers to rows with no signal
                db.executemany(
                    "UPDATE attempts SET state = ?, kind = ?, broker_order_id = ?, reason = ?, updated = ? "
                    "WHERE signal_id IS NULL AND client_order_id = ?",
                    [(*answer[:5], answer[6]) for answer in answers],
                )
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def _write_unkeyed(self, begins: list[tuple[str, Begun]], priors: dict[str, Attempt | None]) -> None:
        """Begins with no signal, inside :meth:`_write`'s transaction: a row found is counted
        again, a new one inserted."""
        db = self._db
        db.executemany(
            "UPDATE attempts SET state = ?, attempts = attempts + 1, updated = ? "
            "WHERE signal_id IS NULL AND client_order_id = ?",
            [(ATTEMPTING, at, cid) for cid, (_, _, _, at, _) in begins if priors[cid] is not None],
        )
        db.executemany(
            "INSERT INTO attempts (client_order_id, account_id, action, state, updated) VALUES (?, ?, ?, ?, ?)",
            [
                (cid, account, action, ATTEMPTING, at)
                for cid, (_, account, action, at, _) in begins
                if priors[cid] is None
            ],
        )
        self._unkeyed = True

    def warm(self, largest_group: int) -> None:
        """Compile the read a flush makes for each group size up to ``largest_group`` (SQLite
        caches 128 statements by text), reading ids no intent has: nothing is written (warm-up)."""
        for size in range(1, min(largest_group, 100) + 1):
            self._priors({f"warmup|{n}": ("warmup", "", "", 0.0, _UNREAD) for n in range(size)})

    # -- housekeeping -----------------------------------------------------------------------
    def _migrate(self) -> None:
        """A file written before the signal key (keyed by client id, or in ``seq`` order with a
        client-id index): its rows move to the new table, oldest first, with no signal (found
        by client id, see ``_SCHEMA``), in one transaction (another executor sharing the file
        waits, then finds it done)."""
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            columns = [row[1] for row in db.execute("PRAGMA table_info(attempts)")]
            if columns and "signal_id" not in columns:
                db.execute("DROP INDEX IF EXISTS attempts_updated")
                db.execute("ALTER TABLE attempts RENAME TO attempts_before_key")
                for statement in filter(str.strip, _SCHEMA.split(";")):  # not executescript: it commits
                    db.execute(statement)
                db.execute(
                    f"INSERT INTO attempts ({_COLUMNS}) SELECT {_COLUMNS} FROM attempts_before_key ORDER BY updated"
                )
                db.execute("DROP TABLE attempts_before_key")
                log.info("attempt journal %s: rows moved to the (signal, client id) layout", self.path)
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def __len__(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM attempts").fetchone()[0])

    def prune(self) -> int:
        """Drop rows older than ``keep_s``, then the oldest beyond ``max_rows``; returns how many.

        Old rows are safe to forget: an intent is redelivered only from an uncommitted offset,
        and anything redelivered from before this consumer's assignment is looked up anyway.
        """
        cutoff = time.time() - self.keep_s
        dropped = self._db.execute("DELETE FROM attempts WHERE updated < ?", (cutoff,)).rowcount
        excess = self._rows - dropped - self.max_rows
        if excess > 0:
            dropped += self._db.execute(
                "DELETE FROM attempts WHERE seq IN (SELECT seq FROM attempts ORDER BY updated LIMIT ?)",
                (excess,),
            ).rowcount
        self._rows -= dropped
        if self._unkeyed and dropped:
            self._unkeyed = self._has_unkeyed()
        self._since_prune = 0
        if dropped:
            log.info("attempt journal %s: pruned %d row(s)", self.path, dropped)
        return int(dropped)

    def _has_unkeyed(self) -> bool:
        """Whether rows from before the signal key are left (read by client id while there are)."""
        return self._db.execute("SELECT 1 FROM attempts WHERE signal_id IS NULL LIMIT 1").fetchone() is not None

    def close(self) -> None:
        """Write what is pending, then close the file."""
        self.flush()
        self._db.close()


def _is_done(prior: Attempt | None) -> bool:
    return prior is not None and prior.done


__all__ = ["ATTEMPTING", "DONE", "UNKNOWN", "Attempt", "AttemptJournal"]

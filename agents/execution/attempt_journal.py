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

log = logging.getLogger(__name__)

ATTEMPTING = "attempting"
DONE = "done"
UNKNOWN = "unknown"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS attempts (
    client_order_id TEXT PRIMARY KEY,
    account_id TEXT NOT NULL,
    action TEXT NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 1,
    kind TEXT,
    broker_order_id TEXT,
    reason TEXT,
    updated REAL NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS attempts_updated ON attempts (updated);
"""


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
        self._begins: dict[str, tuple[str, str, float]] = {}  # cid -> (account, action, time)
        self._fresh = 0  # begins of new rows since the last flush
        self._finishes: dict[str, Attempt] = {}
        self._flushed: asyncio.Future[None] | None = None
        self._timer: asyncio.TimerHandle | None = None
        # Autocommit (isolation_level None): each statement is its own short transaction.
        self._db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA busy_timeout=2000")  # two executors of one host may share the file
        self._db.executescript(_SCHEMA)
        self._rows = len(self)  # counted once; kept up to date so pruning never scans the table
        self.prune()

    # -- the copy path ------------------------------------------------------------------------
    async def begin(self, client_order_id: str, account_id: str, action: str) -> Attempt | None:
        """Durably record an attempt of this intent; returns what was recorded before (None: fresh).

        Returns once the row is in the WAL file. A ``done`` row is returned at once, untouched:
        the caller reports its outcome and makes no broker call.
        """
        prior = self.get(client_order_id)
        if prior is not None and prior.done:
            return prior
        self._finishes.pop(client_order_id, None)  # an unknown outcome being tried again
        if prior is None and client_order_id not in self._begins:
            self._fresh += 1
        self._begins[client_order_id] = (account_id, action, time.time())
        if self._flushed is None:
            loop = asyncio.get_running_loop()
            self._flushed = loop.create_future()
            loop.call_soon(self.flush)
        await asyncio.shield(self._flushed)
        return prior

    def finish(
        self,
        client_order_id: str,
        kind: str,
        broker_order_id: str | None = None,
        reason: str | None = None,
        *,
        state: str = DONE,
    ) -> None:
        """The broker answered (``done``), or after every lookup nobody can tell (``unknown``).

        Written with the next transaction; until then :meth:`get` answers from memory.
        """
        self._finishes[client_order_id] = Attempt(client_order_id, state, 0, kind, broker_order_id, reason)
        if self._timer is None and self._flushed is None:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:  # no loop (a script, a test): write now
                self.flush()
                return
            self._timer = loop.call_later(self.finish_delay_s, self.flush)

    def get(self, client_order_id: str) -> Attempt | None:
        pending = self._finishes.get(client_order_id)
        if pending is not None:
            return pending
        row = self._db.execute(
            "SELECT state, attempts, kind, broker_order_id, reason FROM attempts WHERE client_order_id = ?",
            (client_order_id,),
        ).fetchone()
        return None if row is None else Attempt(client_order_id, row[0], row[1], row[2], row[3], row[4])

    def flush(self) -> None:
        """Write every pending begin and finish in one transaction, then wake the waiters."""
        begins, self._begins = self._begins, {}
        fresh, self._fresh = self._fresh, 0
        finishes, self._finishes = self._finishes, {}
        waiters, self._flushed = self._flushed, None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        try:
            if begins or finishes:
                self._write(begins, finishes)
        except Exception as exc:  # noqa: BLE001 - the waiting lanes must hear of it, not hang
            log.exception("attempt journal %s: write failed", self.path)
            if waiters is not None and not waiters.done():
                waiters.set_exception(exc)
            return
        if waiters is not None and not waiters.done():
            waiters.set_result(None)
        self._rows += fresh
        self._since_prune += len(begins)
        if self._since_prune >= self.prune_every:
            self.prune()

    def _write(self, begins: dict[str, tuple[str, str, float]], finishes: dict[str, Attempt]) -> None:
        db = self._db
        db.execute("BEGIN")
        try:
            db.executemany(
                "INSERT INTO attempts (client_order_id, account_id, action, state, updated) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT (client_order_id) DO UPDATE SET state = excluded.state, "
                "attempts = attempts + 1, updated = excluded.updated",
                [(cid, account, action, ATTEMPTING, at) for cid, (account, action, at) in begins.items()],
            )
            now = time.time()
            db.executemany(
                "UPDATE attempts SET state = ?, kind = ?, broker_order_id = ?, reason = ?, updated = ? "
                "WHERE client_order_id = ?",
                [(a.state, a.kind, a.broker_order_id, a.reason, now, cid) for cid, a in finishes.items()],
            )
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    # -- housekeeping -----------------------------------------------------------------------
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
                "DELETE FROM attempts WHERE client_order_id IN "
                "(SELECT client_order_id FROM attempts ORDER BY updated LIMIT ?)",
                (excess,),
            ).rowcount
        self._rows -= dropped
        self._since_prune = 0
        if dropped:
            log.info("attempt journal %s: pruned %d row(s)", self.path, dropped)
        return int(dropped)

    def close(self) -> None:
        """Write what is pending, then close the file."""
        self.flush()
        self._db.close()


__all__ = ["ATTEMPTING", "DONE", "UNKNOWN", "Attempt", "AttemptJournal"]

"""The executor's attempt journal: durable before the broker call, cheap, bounded."""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from copytrader.agents.execution.attempt_journal import ATTEMPTING, DONE, UNKNOWN, AttemptJournal
from copytrader.core import ids

SIGNAL = "L:o1:new"  # the signal of every intent here (rows are keyed by signal and client id)

KILLED_MID_CALL = """
import asyncio, os, signal, sys
from copytrader.agents.execution.attempt_journal import AttemptJournal

async def main():
    journal = AttemptJournal(sys.argv[1])
    await journal.begin("CT-DONE", "f1", "place", signal_id="L:o1:new")
    journal.finish("CT-DONE", "ack", "B7", signal_id="L:o1:new")
    # Flushes the finish above with it: netting depends on that (a netted copy's row, which says
    # which order covers it, is in the file before the netting order is sent). Writing answers
    # apart, later, let a SIGKILL place netted copies again (session 29, the chaos test).
    await journal.begin("CT-SENT", "f1", "place", signal_id="L:o1:new")
    os.kill(os.getpid(), signal.SIGKILL)  # dies inside the broker call

asyncio.run(main())
"""


def test_a_row_begun_before_the_broker_call_survives_sigkill(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite"
    process = subprocess.run([sys.executable, "-c", KILLED_MID_CALL, str(path)], capture_output=True, timeout=60)
    assert process.returncode == -9, process.stderr
    journal = AttemptJournal(path)
    sent, done = journal.get("CT-SENT", signal_id=SIGNAL), journal.get("CT-DONE", signal_id=SIGNAL)
    assert sent is not None and (sent.state, sent.attempts) == (ATTEMPTING, 1)
    assert done is not None and (done.state, done.kind, done.broker_order_id) == (DONE, "ack", "B7")


async def test_a_second_attempt_is_counted_and_an_unknown_outcome_is_tried_again(tmp_path: Path) -> None:
    journal = AttemptJournal(tmp_path / "j.sqlite")
    assert await journal.begin("CT1", "f1", "place", signal_id=SIGNAL) is None
    journal.finish("CT1", "reject", reason="outcome unknown", signal_id=SIGNAL, state=UNKNOWN)
    prior = await journal.begin("CT1", "f1", "place", signal_id=SIGNAL)
    assert prior is not None and prior.state == UNKNOWN and not prior.done
    row = journal.get("CT1", signal_id=SIGNAL)
    assert row is not None and (row.state, row.attempts) == (ATTEMPTING, 2)
    journal.finish("CT1", "ack", "B1", signal_id=SIGNAL)
    again = await journal.begin("CT1", "f1", "place", signal_id=SIGNAL)
    assert again is not None and again.done and again.broker_order_id == "B1"


async def test_concurrent_lanes_share_one_commit(tmp_path: Path) -> None:
    journal = AttemptJournal(tmp_path / "j.sqlite")
    commits = 0
    write = journal._write

    def counting(*args: object) -> None:
        nonlocal commits
        commits += 1
        write(*args)  # type: ignore[arg-type]  # passes the same arguments through

    journal._write = counting  # type: ignore[method-assign,assignment]  # counts transactions
    await asyncio.gather(*(journal.begin(f"CT{i}", f"f{i}", "place", signal_id=SIGNAL) for i in range(20)))
    assert commits == 1 and len(journal) == 20


async def test_a_group_reads_the_file_once_and_leaves_a_done_row_untouched(tmp_path: Path) -> None:
    """A restarted executor: one intent answered before, one tried before with its outcome
    unknown, two never seen. One query reads all four rows; the done one is reported as it
    was (not rewritten), the others are begun."""
    path = tmp_path / "j.sqlite"
    before = AttemptJournal(path)
    await before.begin("CT-DONE", "f1", "place", signal_id=SIGNAL)
    before.finish("CT-DONE", "ack", "B7", signal_id=SIGNAL)
    await before.begin("CT-UNKNOWN", "f2", "place", signal_id=SIGNAL)
    before.finish("CT-UNKNOWN", "reject", reason="no answer", signal_id=SIGNAL, state=UNKNOWN)
    before.close()
    journal = AttemptJournal(path)
    statements: list[str] = []
    journal._db.set_trace_callback(statements.append)
    keys = ("CT-DONE", "CT-UNKNOWN", "CT-NEW1", "CT-NEW2")
    priors = await asyncio.gather(*(journal.begin(key, "f1", "place", signal_id=SIGNAL) for key in keys))
    journal._db.set_trace_callback(None)
    assert [(p.state, p.kind, p.broker_order_id) if p else None for p in priors] == [
        (DONE, "ack", "B7"),
        (UNKNOWN, "reject", None),
        None,
        None,
    ]
    assert sum(s.startswith("SELECT") for s in statements) == 1
    done, retried, new = (
        journal.get("CT-DONE", signal_id=SIGNAL),
        journal.get("CT-UNKNOWN", signal_id=SIGNAL),
        journal.get("CT-NEW1", signal_id=SIGNAL),
    )
    assert done is not None and (done.state, done.attempts, done.broker_order_id) == (DONE, 1, "B7")
    assert retried is not None and (retried.state, retried.attempts) == (ATTEMPTING, 2)
    assert new is not None and (new.state, new.attempts) == (ATTEMPTING, 1)
    assert len(journal) == 4


async def test_a_begin_twice_in_one_turn_gets_the_same_answer(tmp_path: Path) -> None:
    journal = AttemptJournal(tmp_path / "j.sqlite")
    await journal.begin("CT1", "f1", "place", signal_id=SIGNAL)
    journal.finish("CT1", "reject", reason="no answer", signal_id=SIGNAL, state=UNKNOWN)
    first, second = await asyncio.gather(
        journal.begin("CT1", "f1", "place", signal_id=SIGNAL), journal.begin("CT1", "f1", "place", signal_id=SIGNAL)
    )
    assert first == second and first is not None and first.state == UNKNOWN
    row = journal.get("CT1", signal_id=SIGNAL)
    assert row is not None and (row.state, row.attempts) == (ATTEMPTING, 2)


async def test_a_failed_write_reaches_every_waiting_lane_and_a_cancelled_one_leaves_the_rest(
    tmp_path: Path,
) -> None:
    journal = AttemptJournal(tmp_path / "j.sqlite")
    write = journal._write

    def full_disk(*_args: object) -> None:
        raise OSError("disk full")

    journal._write = full_disk  # type: ignore[method-assign,assignment]  # the next transaction fails
    lanes = [asyncio.ensure_future(journal.begin(f"CT{i}", "f1", "place", signal_id=SIGNAL)) for i in range(3)]
    await asyncio.sleep(0)  # the lanes wait for the flush
    lanes[0].cancel()
    results = await asyncio.gather(*lanes, return_exceptions=True)
    assert isinstance(results[0], asyncio.CancelledError)
    assert [repr(r) for r in results[1:]] == [repr(OSError("disk full"))] * 2  # told, not left hanging
    journal._write = write  # type: ignore[method-assign]
    lanes = [asyncio.ensure_future(journal.begin(f"CT{i}", "f1", "place", signal_id=SIGNAL)) for i in range(3)]
    await asyncio.sleep(0)
    lanes[1].cancel()
    results = await asyncio.gather(*lanes, return_exceptions=True)
    assert results[0] is None and results[2] is None and isinstance(results[1], asyncio.CancelledError)
    assert len(journal) == 3  # the cancelled lane's row was begun too: a redelivery looks it up


async def test_old_rows_are_pruned_and_the_size_is_capped(tmp_path: Path) -> None:
    journal = AttemptJournal(tmp_path / "j.sqlite", keep_s=3600, max_rows=5)
    for i in range(8):
        await journal.begin(f"CT{i}", "f1", "place", signal_id=SIGNAL)
    journal._db.execute("UPDATE attempts SET updated = updated - 7200 WHERE client_order_id = 'CT0'")
    assert journal.prune() == 3  # CT0 by age, then the two oldest beyond five rows
    assert (
        len(journal) == 5
        and journal.get("CT0", signal_id=SIGNAL) is None
        and journal.get("CT7", signal_id=SIGNAL) is not None
    )


async def test_many_concurrent_lanes_journal_every_copy(tmp_path: Path) -> None:
    """Every copy of many concurrent lanes is journalled and finished; also prints what the
    journal adds per copy (a measurement, not asserted: timing belongs to benchmarks)."""
    journal = AttemptJournal(tmp_path / "j.sqlite")
    costs = {}
    for followers in (1, 20, 200):
        copies = 0
        started = time.perf_counter()
        for signal in range(max(1, 600 // followers)):

            async def lane(i: int, signal: int = signal, followers: int = followers) -> None:
                key = f"CT{followers}-{signal}-{i}"
                await journal.begin(key, f"f{i}", "place", signal_id=SIGNAL)
                journal.finish(key, "ack", "B1", signal_id=SIGNAL)

            await asyncio.gather(*(lane(i) for i in range(followers)))
            copies += followers
        journal.flush()
        costs[followers] = (time.perf_counter() - started) / copies * 1e6
    print("attempt journal µs per copy by followers per signal:", {k: round(v, 1) for k, v in costs.items()})
    for followers in (1, 20, 200):
        last = f"CT{followers}-{max(1, 600 // followers) - 1}-{followers - 1}"
        attempt = journal.get(last, signal_id=SIGNAL)
        assert attempt is not None and attempt.state == DONE and attempt.broker_order_id == "B1"


#: The layout before the ``seq`` column (a file an older executor wrote).
KEYED_BY_CLIENT_ID = """
CREATE TABLE attempts (
    client_order_id TEXT PRIMARY KEY, account_id TEXT NOT NULL, action TEXT NOT NULL,
    state TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 1, kind TEXT, broker_order_id TEXT,
    reason TEXT, updated REAL NOT NULL
) WITHOUT ROWID;
CREATE INDEX attempts_updated ON attempts (updated);
"""


async def test_a_file_of_the_old_layout_keeps_every_row_and_its_answers(tmp_path: Path) -> None:
    """An upgraded executor opens its old journal: each row moves to the new layout (oldest
    first), a done intent is still reported again without a broker call, an unknown one
    still looked up, and the file is then written in the new layout."""
    path = tmp_path / "j.sqlite"
    now = time.time()
    old = sqlite3.connect(path)
    old.executescript(KEYED_BY_CLIENT_ID)
    old.executemany(
        "INSERT INTO attempts VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            ("CT-DONE", "f1", "place", DONE, 1, "ack", "B7", None, now - 5),
            ("CT-UNKNOWN", "f2", "place", UNKNOWN, 2, "reject", None, "no answer", now - 10),
        ],
    )
    old.commit()
    old.close()
    journal = AttemptJournal(path)
    assert len(journal) == 2
    done, unknown = await asyncio.gather(
        journal.begin("CT-DONE", "f1", "place", signal_id=SIGNAL),
        journal.begin("CT-UNKNOWN", "f2", "place", signal_id=SIGNAL),
    )
    assert done is not None and (done.state, done.kind, done.broker_order_id) == (DONE, "ack", "B7")
    assert unknown is not None and (unknown.state, unknown.attempts, unknown.reason) == (UNKNOWN, 2, "no answer")
    retried = journal.get("CT-UNKNOWN", signal_id=SIGNAL)
    assert retried is not None and (retried.state, retried.attempts) == (ATTEMPTING, 3)
    rows = journal._db.execute("SELECT seq, client_order_id FROM attempts ORDER BY seq").fetchall()
    assert [cid for _, cid in rows] == ["CT-UNKNOWN", "CT-DONE"]  # oldest first
    tables = {name for (name,) in journal._db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert tables == {"attempts"}
    journal.close()
    assert len(AttemptJournal(path)) == 2  # opened again: nothing left to move


#: The layout of rounds 26–27: rows in ``seq`` order, found through a unique client-id index.
IN_SEQ_ORDER = """
CREATE TABLE attempts (
    seq INTEGER PRIMARY KEY, client_order_id TEXT NOT NULL UNIQUE, account_id TEXT NOT NULL,
    action TEXT NOT NULL, state TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 1, kind TEXT,
    broker_order_id TEXT, reason TEXT, updated REAL NOT NULL
);
CREATE INDEX attempts_updated ON attempts (updated);
"""


async def test_a_file_in_seq_order_keeps_every_row_found_by_client_id_until_it_is_begun_again(
    tmp_path: Path,
) -> None:
    """Rows written before the signal key have no signal: a redelivered intent still finds its
    row by client id (a done one reported again, an unknown one looked up), the row then takes
    the signal it was begun with, and an answer to a row never begun again still lands."""
    path = tmp_path / "j.sqlite"
    now = time.time()
    old = sqlite3.connect(path)
    old.executescript(IN_SEQ_ORDER)
    old.executemany(
        f"INSERT INTO attempts ({', '.join(COLUMNS)}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            ("CT-DONE", "f1", "place", DONE, 1, "ack", "B7", None, now - 5),
            ("CT-UNKNOWN", "f2", "place", UNKNOWN, 2, "reject", None, "no answer", now - 10),
            ("CT-LATE", "f3", "place", UNKNOWN, 1, "reject", None, "no answer", now - 1),
        ],
    )
    old.commit()
    old.close()
    journal = AttemptJournal(path)
    assert len(journal) == 3
    done, unknown = await asyncio.gather(
        journal.begin("CT-DONE", "f1", "place", signal_id="L:o1:new"),
        journal.begin("CT-UNKNOWN", "f2", "place", signal_id="L:o2:new"),
    )
    assert done is not None and (done.state, done.kind, done.broker_order_id) == (DONE, "ack", "B7")
    assert unknown is not None and (unknown.state, unknown.attempts) == (UNKNOWN, 2)
    retried = journal.get("CT-UNKNOWN", signal_id="L:o2:new")
    assert retried is not None and (retried.state, retried.attempts) == (ATTEMPTING, 3)
    journal.finish("CT-LATE", "ack", "B9", signal_id="L:o3:new")  # a late lookup's answer
    journal.flush()
    late = journal.get("CT-LATE", signal_id="L:o3:new")
    assert late is not None and (late.state, late.broker_order_id) == (DONE, "B9")
    keyed = dict(journal._db.execute("SELECT client_order_id, signal_id FROM attempts").fetchall())
    assert keyed == {"CT-DONE": None, "CT-UNKNOWN": "L:o2:new", "CT-LATE": None}  # a done row is left untouched
    journal.close()
    assert len(AttemptJournal(path)) == 3  # opened again: nothing left to move


#: A file's columns in both older layouts.
COLUMNS = (
    "client_order_id",
    "account_id",
    "action",
    "state",
    "attempts",
    "kind",
    "broker_order_id",
    "reason",
    "updated",
)


async def test_an_intent_with_no_signal_is_found_and_counted_by_its_client_id(tmp_path: Path) -> None:
    """A netting order's signal may change between its attempts: it is journaled with none,
    and a second attempt finds the first and counts it, once."""
    journal = AttemptJournal(tmp_path / "j.sqlite")
    assert await journal.begin("CT-NET", "f1", "place", signal_id=None) is None
    journal.finish("CT-NET", "reject", reason="no answer", signal_id=None, state=UNKNOWN)
    prior = await journal.begin("CT-NET", "f1", "place", signal_id=None)
    assert prior is not None and prior.state == UNKNOWN
    row = journal.get("CT-NET", signal_id=None)
    assert row is not None and (row.state, row.attempts) == (ATTEMPTING, 2) and len(journal) == 1
    assert await journal.begin("CT-COPY", "f1", "place", signal_id=SIGNAL) is None  # the others: keyed as ever
    journal.finish("CT-NET", "ack", "B3", signal_id=None)
    journal.flush()
    done = journal.get("CT-NET", signal_id=None)
    assert done is not None and done.done and done.broker_order_id == "B3"


async def test_a_signals_group_writes_a_few_pages_not_one_per_copy(tmp_path: Path) -> None:
    """The begin of a 200-copy signal into a journal of 20,000 rows writes a handful of pages
    to the WAL: its rows and their index entries sit side by side (keyed by the signal first).
    Keyed by the hashed client id, each copy's index entry dirtied a page of its own."""
    path = tmp_path / "j.sqlite"
    journal = AttemptJournal(path)
    for signal in range(101):
        copies = [(ids.client_order_id(f"L:o{signal}:new", f"f{i}"), f"f{i}") for i in range(200)]
        if signal == 100:  # the measured one: the WAL starts empty
            journal._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        await asyncio.gather(*(journal.begin(c, f, "place", signal_id=f"L:o{signal}:new") for c, f in copies))
    frames = wal_frames(path, journal._db.execute("PRAGMA page_size").fetchone()[0])
    assert frames < 40, frames  # keyed by client id: 125


def wal_frames(path: Path, page_size: int) -> int:
    """Pages written to the journal's WAL since it was last truncated (a frame: a header and a page)."""
    return Path(f"{path}-wal").stat().st_size // (page_size + 24)


async def test_the_copy_path_searches_the_key_index_and_never_scans_the_table(tmp_path: Path) -> None:
    """Every statement a begin, finish or get runs (rows with a signal and without) is a search
    of an index: a scan would cost the whole journal per copy."""
    journal = AttemptJournal(tmp_path / "j.sqlite")
    statements: list[str] = []
    journal._db.set_trace_callback(statements.append)
    await journal.begin("CT-COPY", "f1", "place", signal_id=SIGNAL)
    await journal.begin("CT-NET", "f1", "place", signal_id=None)  # from now on rows without a signal exist
    journal.finish("CT-COPY", "ack", "B1", signal_id=SIGNAL)
    journal.finish("CT-NET", "ack", "B2", signal_id=None)
    await journal.begin("CT-NET", "f1", "place", signal_id=None)
    await journal.begin("CT-OTHER", "f2", "place", signal_id=SIGNAL)
    assert journal.get("CT-COPY", signal_id=SIGNAL) is not None and journal.get("CT-NET", signal_id=None) is not None
    journal._db.set_trace_callback(None)
    plans = {
        sql: [row[-1] for row in journal._db.execute(f"EXPLAIN QUERY PLAN {sql}")]
        for sql in statements
        if sql.split()[0] in ("SELECT", "UPDATE", "INSERT")
    }
    assert any("signal_id IS NULL" in sql for sql in plans)  # the rows without a signal were read
    for sql, plan in plans.items():
        assert not any(step.startswith("SCAN attempts") for step in plan), (sql, plan)

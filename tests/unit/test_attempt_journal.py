"""The executor's attempt journal: durable before the broker call, cheap, bounded."""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from copytrader.agents.execution.attempt_journal import ATTEMPTING, DONE, UNKNOWN, AttemptJournal

KILLED_MID_CALL = """
import asyncio, os, signal, sys
from copytrader.agents.execution.attempt_journal import AttemptJournal

async def main():
    journal = AttemptJournal(sys.argv[1])
    await journal.begin("CT-DONE", "f1", "place")
    journal.finish("CT-DONE", "ack", "B7")
    await journal.begin("CT-SENT", "f1", "place")  # flushes the finish above with it
    os.kill(os.getpid(), signal.SIGKILL)  # dies inside the broker call

asyncio.run(main())
"""


def test_a_row_begun_before_the_broker_call_survives_sigkill(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite"
    process = subprocess.run([sys.executable, "-c", KILLED_MID_CALL, str(path)], capture_output=True, timeout=60)
    assert process.returncode == -9, process.stderr
    journal = AttemptJournal(path)
    sent, done = journal.get("CT-SENT"), journal.get("CT-DONE")
    assert sent is not None and (sent.state, sent.attempts) == (ATTEMPTING, 1)
    assert done is not None and (done.state, done.kind, done.broker_order_id) == (DONE, "ack", "B7")


async def test_a_second_attempt_is_counted_and_an_unknown_outcome_is_tried_again(tmp_path: Path) -> None:
    journal = AttemptJournal(tmp_path / "j.sqlite")
    assert await journal.begin("CT1", "f1", "place") is None
    journal.finish("CT1", "reject", reason="outcome unknown", state=UNKNOWN)
    prior = await journal.begin("CT1", "f1", "place")
    assert prior is not None and prior.state == UNKNOWN and not prior.done
    row = journal.get("CT1")
    assert row is not None and (row.state, row.attempts) == (ATTEMPTING, 2)
    journal.finish("CT1", "ack", "B1")
    again = await journal.begin("CT1", "f1", "place")
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
    await asyncio.gather(*(journal.begin(f"CT{i}", f"f{i}", "place") for i in range(20)))
    assert commits == 1 and len(journal) == 20


async def test_a_group_reads_the_file_once_and_leaves_a_done_row_untouched(tmp_path: Path) -> None:
    """A restarted executor: one intent answered before, one tried before with its outcome
    unknown, two never seen. One query reads all four rows; the done one is reported as it
    was (not rewritten), the others are begun."""
    path = tmp_path / "j.sqlite"
    before = AttemptJournal(path)
    await before.begin("CT-DONE", "f1", "place")
    before.finish("CT-DONE", "ack", "B7")
    await before.begin("CT-UNKNOWN", "f2", "place")
    before.finish("CT-UNKNOWN", "reject", reason="no answer", state=UNKNOWN)
    before.close()
    journal = AttemptJournal(path)
    statements: list[str] = []
    journal._db.set_trace_callback(statements.append)
    keys = ("CT-DONE", "CT-UNKNOWN", "CT-NEW1", "CT-NEW2")
    priors = await asyncio.gather(*(journal.begin(key, "f1", "place") for key in keys))
    journal._db.set_trace_callback(None)
    assert [(p.state, p.kind, p.broker_order_id) if p else None for p in priors] == [
        (DONE, "ack", "B7"),
        (UNKNOWN, "reject", None),
        None,
        None,
    ]
    assert sum(s.startswith("SELECT") for s in statements) == 1
    done, retried, new = journal.get("CT-DONE"), journal.get("CT-UNKNOWN"), journal.get("CT-NEW1")
    assert done is not None and (done.state, done.attempts, done.broker_order_id) == (DONE, 1, "B7")
    assert retried is not None and (retried.state, retried.attempts) == (ATTEMPTING, 2)
    assert new is not None and (new.state, new.attempts) == (ATTEMPTING, 1)
    assert len(journal) == 4


async def test_a_begin_twice_in_one_turn_gets_the_same_answer(tmp_path: Path) -> None:
    journal = AttemptJournal(tmp_path / "j.sqlite")
    await journal.begin("CT1", "f1", "place")
    journal.finish("CT1", "reject", reason="no answer", state=UNKNOWN)
    first, second = await asyncio.gather(journal.begin("CT1", "f1", "place"), journal.begin("CT1", "f1", "place"))
    assert first == second and first is not None and first.state == UNKNOWN
    row = journal.get("CT1")
    assert row is not None and (row.state, row.attempts) == (ATTEMPTING, 2)


async def test_a_failed_write_reaches_every_waiting_lane_and_a_cancelled_one_leaves_the_rest(
    tmp_path: Path,
) -> None:
    journal = AttemptJournal(tmp_path / "j.sqlite")
    write = journal._write

    def full_disk(*_args: object) -> None:
        raise OSError("disk full")

    journal._write = full_disk  # type: ignore[method-assign,assignment]  # the next transaction fails
    lanes = [asyncio.ensure_future(journal.begin(f"CT{i}", "f1", "place")) for i in range(3)]
    await asyncio.sleep(0)  # the lanes wait for the flush
    lanes[0].cancel()
    results = await asyncio.gather(*lanes, return_exceptions=True)
    assert isinstance(results[0], asyncio.CancelledError)
    assert [repr(r) for r in results[1:]] == [repr(OSError("disk full"))] * 2  # told, not left hanging
    journal._write = write  # type: ignore[method-assign]
    lanes = [asyncio.ensure_future(journal.begin(f"CT{i}", "f1", "place")) for i in range(3)]
    await asyncio.sleep(0)
    lanes[1].cancel()
    results = await asyncio.gather(*lanes, return_exceptions=True)
    assert results[0] is None and results[2] is None and isinstance(results[1], asyncio.CancelledError)
    assert len(journal) == 3  # the cancelled lane's row was begun too: a redelivery looks it up


async def test_old_rows_are_pruned_and_the_size_is_capped(tmp_path: Path) -> None:
    journal = AttemptJournal(tmp_path / "j.sqlite", keep_s=3600, max_rows=5)
    for i in range(8):
        await journal.begin(f"CT{i}", "f1", "place")
    journal._db.execute("UPDATE attempts SET updated = updated - 7200 WHERE client_order_id = 'CT0'")
    assert journal.prune() == 3  # CT0 by age, then the two oldest beyond five rows
    assert len(journal) == 5 and journal.get("CT0") is None and journal.get("CT7") is not None


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
                await journal.begin(key, f"f{i}", "place")
                journal.finish(key, "ack", "B1")

            await asyncio.gather(*(lane(i) for i in range(followers)))
            copies += followers
        journal.flush()
        costs[followers] = (time.perf_counter() - started) / copies * 1e6
    print("attempt journal µs per copy by followers per signal:", {k: round(v, 1) for k, v in costs.items()})
    for followers in (1, 20, 200):
        last = f"CT{followers}-{max(1, 600 // followers) - 1}-{followers - 1}"
        attempt = journal.get(last)
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
        journal.begin("CT-DONE", "f1", "place"), journal.begin("CT-UNKNOWN", "f2", "place")
    )
    assert done is not None and (done.state, done.kind, done.broker_order_id) == (DONE, "ack", "B7")
    assert unknown is not None and (unknown.state, unknown.attempts, unknown.reason) == (UNKNOWN, 2, "no answer")
    retried = journal.get("CT-UNKNOWN")
    assert retried is not None and (retried.state, retried.attempts) == (ATTEMPTING, 3)
    rows = journal._db.execute("SELECT seq, client_order_id FROM attempts ORDER BY seq").fetchall()
    assert [cid for _, cid in rows] == ["CT-UNKNOWN", "CT-DONE"]  # oldest first
    tables = {name for (name,) in journal._db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert tables == {"attempts"}
    journal.close()
    assert len(AttemptJournal(path)) == 2  # opened again: nothing left to move

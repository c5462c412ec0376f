"""Does the executor's memory level off once its bounded tables are full? (#16 item 5)

Why: a ten-minute bench at the demo's pace places about 1,100 orders per follower, below the
bounds of what the executor keeps (the paper venue's finished orders, ``HISTORY_LIMIT`` per
account; the router's finished idempotency keys, ``RecentKeys``), so its resident memory still
rises at the end of such a run and cannot show whether it stops. Here the real execution stage
(the ``scripts/executor_cost.py`` harness: router, lanes, attempt journal, deferred outbox,
paper venue) copies market orders well past those bounds, in one process, and after each chunk
of copies prints what it holds: resident memory, Python's traced heap (``--trace``), the
journal file, and the length of each bounded table.

A flat run: once every table has reached its bound, neither the traced heap nor the resident
memory grows with further copies (``growth_kib_per_1000_copies`` over the last third, near 0).

Usage: ``python scripts/executor_memory.py [--followers 20 --copies 240000 --chunks 24 --trace]``
prints one JSON line per chunk and a summary line.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import logging
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from executor_cost import Copier, build  # noqa: E402 - the harness above, scripts/ on sys.path

from copytrader.agents.shared.outbox import MemoryOutbox  # noqa: E402
from copytrader.brokers.paper.adapter import PaperAdapter, reset_venues  # noqa: E402

KIB = 1024


def rss_kib() -> int:
    status = Path("/proc/self/status").read_text()
    return next((int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:")), 0)


def summary(rows: list[dict[str, Any]], followers: int, trace: bool) -> dict[str, Any]:
    """First and last RSS, and the growth over the last third of the chunks."""
    last = rows[len(rows) * 2 // 3 :]
    growth = {"rss": slope_kib_per_1000(last, "rss_kib")}
    if trace:
        growth["traced"] = slope_kib_per_1000(last, "traced_kib")
    return {
        "followers": followers,
        "copies": rows[-1]["copies"],
        "rss_mib_first_last": [round(rows[0]["rss_kib"] / KIB, 1), round(rows[-1]["rss_kib"] / KIB, 1)],
        "growth_kib_per_1000_copies": growth,
    }


def disk_kib(data_dir: Path) -> int:
    """The attempt journal's files (SQLite and its WAL): bounded by rows, not by memory."""
    return sum(p.stat().st_size for p in data_dir.glob("**/*.sqlite*")) // KIB


def slope_kib_per_1000(rows: list[dict[str, Any]], key: str) -> float:
    """Least-squares slope of ``key`` (KiB) against copies, per 1,000 copies."""
    xs = [row["copies"] for row in rows]
    ys = [row[key] for row in rows]
    if len(xs) < 2:
        return 0.0
    mean_x, mean_y = sum(xs) / len(xs), sum(ys) / len(ys)
    var = sum((x - mean_x) ** 2 for x in xs)
    cov = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True))
    return round(cov / var * 1000, 3) if var else 0.0


def tables(copier: Copier) -> dict[str, int]:
    """The length of each bounded table the executor keeps, at its largest account."""
    stage = copier.stage
    venue_orders = 0
    for adapter in stage.ctx.pool.connected().values():
        if isinstance(adapter, PaperAdapter):
            for account in adapter.exchange.accounts.values():
                venue_orders = max(venue_orders, len(account.orders))
    return {
        "venue_orders_per_account_max": venue_orders,
        "router_finished_keys": len(stage.router.finished._keys),  # noqa: SLF001 - measurement only
    }


async def run(followers: int, copies: int, chunks: int, trace: bool) -> list[dict[str, Any]]:
    reset_venues()
    rows: list[dict[str, Any]] = []
    signals_per_chunk = max(1, copies // (chunks * followers))
    with tempfile.TemporaryDirectory() as tmp:
        app = build(Path(tmp), followers)
        copier = Copier(app, followers)
        await copier.connect()
        outbox = app.runtime.outbox
        done = 0
        started = time.monotonic()
        if trace:
            tracemalloc.start()
        for chunk in range(chunks):
            # built per 50 signals: the batches waiting to be copied are not the executor's memory
            for start in range(0, signals_per_chunk, 50):
                await copier.copy_signals(copier.batches(min(50, signals_per_chunk - start)))
                if isinstance(outbox, MemoryOutbox):
                    outbox.sent.clear()  # a real outbox hands its records to Kafka and keeps none
            done += signals_per_chunk * followers
            gc.collect()
            row: dict[str, Any] = {
                "chunk": chunk + 1,
                "copies": done,
                "seconds": round(time.monotonic() - started, 1),
                "rss_kib": rss_kib(),
                "journal_kib": disk_kib(Path(tmp)),
                **tables(copier),
            }
            if trace:
                row["traced_kib"] = tracemalloc.get_traced_memory()[0] // KIB
            rows.append(row)
            print(json.dumps(row), flush=True)
        await copier.close()
    reset_venues()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--followers", type=int, default=20)
    parser.add_argument("--copies", type=int, default=240_000, help="copies in all (followers × signals)")
    parser.add_argument("--chunks", type=int, default=24)
    parser.add_argument("--trace", action="store_true", help="also trace Python's heap (slower, about 2x)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    rows = asyncio.run(run(args.followers, args.copies, args.chunks, args.trace))
    print(json.dumps(summary(rows, args.followers, args.trace)))


if __name__ == "__main__":
    main()

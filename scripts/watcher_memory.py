"""Does the watching worker's memory level off once its bounded tables are full? (#16 item 5)

Why: what the tracker/store/web worker keeps in memory grows with copies until each bounded
table is full (the dashboard's closed orders per account, its order and error rows, latency
samples per day, the slippage memory, the positions' fill-id windows), and a ten-minute bench at
the demo's pace does not fill them. Here the worker's own in-memory code — the dashboard's live
state (``web/live.py``, with slippage and guards) and the positions' fill accounting
(``tables/positions.apply_fill``) — takes an ack and a fill per copy, and the leader's fill per
signal, well past those bounds, in one process; after each chunk it prints the resident memory,
Python's traced heap and the length of each bounded table. The database and Kafka are not in
it: the store's rows are on disk, and Faust's tables hold one position per account and symbol.

A flat run: once every table is full, neither memory figure grows with further copies
(``growth_kib_per_1000_copies`` over the last third, near 0).

Usage: ``python scripts/watcher_memory.py [--followers 20 --copies 240000 --chunks 24 --trace]``
"""

from __future__ import annotations

import argparse
import gc
import itertools
import json
import sys
import time
import tracemalloc
from decimal import Decimal
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from executor_memory import KIB, rss_kib, summary  # noqa: E402 - scripts/ on sys.path

from copytrader.app.factory import empty_config  # noqa: E402
from copytrader.core import fill_window  # noqa: E402
from copytrader.core.records import Execution, Position  # noqa: E402
from copytrader.tables.positions import apply_fill  # noqa: E402
from copytrader.web.live import LiveState  # noqa: E402

SYMBOL = "ESZ6"
LEADER = "L"


class Watcher:
    """The in-memory part of the watching worker, fed as its consumers would feed it."""

    def __init__(self, followers: int) -> None:
        self.live = LiveState(empty_config())
        self.positions: dict[tuple[str, str], Position] = {}
        self.followers = [f"f{i}" for i in range(1, followers + 1)]
        self.offsets = itertools.count(1)
        self.signals = itertools.count(1)

    def signal(self) -> None:
        """One leader order and its copies: the leader's fill, then each follower's ack and fill."""
        number = next(self.signals)
        now = time.time()
        side = "buy" if number % 2 else "sell"
        leader_order = f"LO{number}"
        self._apply(self._fill(LEADER, f"L:{leader_order}:new", f"{LEADER}|{number}", leader_order, side, now))
        for account in self.followers:
            cid = f"{account}-{number}"
            ack = Execution(
                execution_id=f"{cid}|ack",
                account_id=account,
                platform="paper",
                kind="ack",
                signal_id=f"L:{leader_order}:new",
                client_order_id=cid,
                broker_order_id=f"B{cid}",
                request_outcome=True,
                symbol=SYMBOL,
                side=side,
                quantity=1,
                reference_price=Decimal("5000"),
                stamps={"detected": now, "acked": now + 0.01},
            )
            self._apply(ack)
            fill = self._fill(account, f"L:{leader_order}:new", f"{cid}|fill", f"B{cid}", side, now)
            fill.client_order_id = cid
            self._apply(fill)

    @staticmethod
    def _fill(account: str, signal_id: str, execution_id: str, order_id: str, side: str, now: float) -> Execution:
        return Execution(
            execution_id=execution_id,
            account_id=account,
            platform="paper",
            kind="fill",
            signal_id=signal_id,
            broker_order_id=order_id,
            symbol=SYMBOL,
            side=side,
            quantity=1,
            price=Decimal("5000.25"),
            is_leader=account == LEADER,
            stamps={"detected": now},
        )

    def _apply(self, ex: Execution) -> None:
        self.live.apply_execution(ex, 0, next(self.offsets))
        if ex.kind == "fill":
            key = (ex.account_id, ex.symbol)
            self.positions[key], applied = apply_fill(self.positions.get(key), ex)
            if applied:
                self.live.apply_position(self.positions[key], 0, next(self.offsets))

    def tables(self) -> dict[str, int]:
        live = self.live
        return {
            "closed_orders_per_account_max": max(len(v.closed_orders) for v in live.accounts.values()),
            "order_rows": len(live.orders),
            "latency_samples": sum(len(d) for d in live.latency.values()),
            "slippage_copies": len(live.slippage.copies),
            "slippage_leader_fills": len(live.slippage.leader_fills),
            "fill_ids_per_position_max": max(fill_window.size(p.fill_window) for p in self.positions.values()),
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--followers", type=int, default=20)
    parser.add_argument("--copies", type=int, default=240_000, help="copies in all (followers × signals)")
    parser.add_argument("--chunks", type=int, default=24)
    parser.add_argument("--trace", action="store_true", help="also trace Python's heap (slower, about 2x)")
    args = parser.parse_args()
    watcher = Watcher(args.followers)
    signals_per_chunk = max(1, args.copies // (args.chunks * args.followers))
    rows: list[dict[str, Any]] = []
    started = time.monotonic()
    if args.trace:
        tracemalloc.start()
    for chunk in range(args.chunks):
        for _ in range(signals_per_chunk):
            watcher.signal()
        gc.collect()
        row: dict[str, Any] = {
            "chunk": chunk + 1,
            "copies": (chunk + 1) * signals_per_chunk * args.followers,
            "seconds": round(time.monotonic() - started, 1),
            "rss_kib": rss_kib(),
            **watcher.tables(),
        }
        if args.trace:
            row["traced_kib"] = tracemalloc.get_traced_memory()[0] // KIB
        rows.append(row)
        print(json.dumps(row), flush=True)
    print(json.dumps(summary(rows, args.followers, args.trace)))


if __name__ == "__main__":
    main()

#!/usr/bin/env python
"""Does an adapter + simulator pair keep every order forever? (#18 item 3, memory)

    .venv/bin/python scripts/memory_loop.py                           # every platform, 3,000 orders each
    .venv/bin/python scripts/memory_loop.py --orders 20000 --platform rithmic --history-limit 500

Drives market orders (each fills at once) through one pair per platform, the pairs the
conformance harness builds (tests/conformance/harness.py), with a reconnect and resync every
``--reconnect-every`` orders. It prints one JSON line per platform: traced Python memory and
RSS after a warm-up and at the end, and every container (dict, set, list, deque) reachable from
the adapter, the simulator and the kernel that grew, with its length at both points. A flat run
shows no container growing with the order count and traced memory that stops climbing once the
bounded tables are full (the kernel keeps ``--history-limit`` finished orders per account).
The fill count is checked too: every order's fill is reported exactly once across reconnects.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import itertools
import sys
import time
import tracemalloc
from collections import deque
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from conformance.harness import ACCOUNT, PLATFORMS, Harness  # noqa: E402 - tests/ on sys.path above

from copytrader.brokers.finished import FinishedOrders  # noqa: E402
from copytrader.brokers.model import ConnectionState, FillEvent, PlaceOrder, Side  # noqa: E402

KIB_PER_MIB = 1024  # VmRSS is printed in kB
SCALARS = (str, bytes, int, float, bool, type(None))


def rss_mib() -> float:
    status = Path("/proc/self/status").read_text()
    kib = next((int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:")), 0)
    return round(kib / KIB_PER_MIB, 1)


def containers(root: Any, name: str, depth: int = 6) -> dict[str, int]:
    """Length of every dict/set/list/deque reachable from ``root`` through attributes and
    container values, named by the path that first reached it (objects seen once)."""
    seen: set[int] = set()
    found: dict[str, int] = {}

    def visit(obj: Any, path: str, left: int) -> None:
        if isinstance(obj, SCALARS) or id(obj) in seen or left < 0:
            return
        seen.add(id(obj))
        if isinstance(obj, dict | set | frozenset | list | deque):
            found[path] = len(obj)
            items: Iterator[tuple[str, Any]]
            if isinstance(obj, dict):
                items = ((f"[{type(k).__name__}]", v) for k, v in itertools.islice(obj.items(), 50))
            else:
                items = (("[*]", v) for v in itertools.islice(obj, 50))
            for key, value in items:
                visit(value, path + key, left - 1)
            return
        if type(obj).__module__.startswith(("asyncio", "aiohttp", "ssl", "socket", "logging", "quickfix")):
            return
        attributes = getattr(obj, "__dict__", None)
        values = dict(attributes) if isinstance(attributes, dict) else {}
        for slot in getattr(type(obj), "__slots__", ()):
            if hasattr(obj, slot):
                values[slot] = getattr(obj, slot)
        for key, value in values.items():
            visit(value, f"{path}.{key}", left - 1)

    visit(root, name, depth)
    return found


def finished_tables(root: Any, depth: int = 4) -> list[FinishedOrders]:
    """The adapter's :class:`FinishedOrders` (one per ledger), to shrink ``keep`` for a short run."""
    if depth < 0 or isinstance(root, SCALARS):
        return []
    if isinstance(root, FinishedOrders):
        return [root]
    attributes = getattr(root, "__dict__", None)
    values = list(attributes.values()) if isinstance(attributes, dict) else []
    values += [getattr(root, slot) for slot in getattr(type(root), "__slots__", ()) if hasattr(root, slot)]
    return [found for value in values for found in finished_tables(value, depth - 1)]


def measure(harness: Harness) -> dict[str, Any]:
    gc.collect()
    sizes = containers(harness.adapter, "adapter")
    sizes.update(containers(harness.simulator, "simulator"))
    sizes.update(containers(harness.exchange, "kernel"))
    return {"traced_mib": round(tracemalloc.get_traced_memory()[0] / 2**20, 2), "rss_mib": rss_mib(), "sizes": sizes}


async def reconnect(harness: Harness) -> None:
    """Drop the link; the adapter reconnects and resyncs on its own (the replay under test)."""
    await harness.drop_connection(False)
    await harness.restore_connection()
    deadline = time.monotonic() + 2
    while harness.adapter.state is ConnectionState.CONNECTED and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    deadline = time.monotonic() + 60
    while harness.adapter.state is not ConnectionState.CONNECTED and time.monotonic() < deadline:
        await asyncio.sleep(0.02)


async def run(
    platform: str, orders: int, warmup: int, reconnect_every: int, history_limit: int, keep: int
) -> dict[str, Any]:
    entry = PLATFORMS[platform]
    async with entry.start() as harness:
        harness.exchange.history_limit = history_limit
        await harness.adapter.connect()  # some adapters build their ledger here
        for table in finished_tables(harness.adapter):
            table.keep = keep
        fills: dict[str, int] = {}
        events = harness.adapter.events()

        async def count() -> None:
            async for event in events:
                if isinstance(event, FillEvent):  # by broker id: a fill may beat the place's answer
                    fills[event.broker_order_id] = fills.get(event.broker_order_id, 0) + event.quantity

        counter = asyncio.create_task(count())
        started = time.monotonic()
        before: dict[str, Any] = {}
        placed: list[str] = []
        for n in range(orders):
            if n == warmup:
                before = measure(harness)
            side = Side.BUY if n % 2 == 0 else Side.SELL
            ack = await harness.adapter.place(PlaceOrder(ACCOUNT, f"m{n}", harness.symbol, side, 1))
            placed.append(ack.broker_order_id)
            if reconnect_every and n % reconnect_every == reconnect_every - 1:
                await reconnect(harness)
        deadline = time.monotonic() + 30
        while sum(fills.values()) < orders and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.5)  # a late second report would land here
        after = measure(harness)
        events.close()
        counter.cancel()
        grew = {
            path: [before["sizes"].get(path, 0), size]
            for path, size in after["sizes"].items()
            if size > before["sizes"].get(path, 0) + 10
        }
        return {
            "platform": platform,
            "orders": orders,
            "seconds": round(time.monotonic() - started, 1),
            "fills_reported": sum(fills.values()),
            "fingerprints": [t.fingerprint_count for t in finished_tables(harness.adapter)],
            "orders_filled_twice": sum(1 for q in fills.values() if q > 1),
            "orders_without_fill": [order_id for order_id in placed if not fills.get(order_id)][:10],
            "traced_mib": [before["traced_mib"], after["traced_mib"]],
            "rss_mib": [before["rss_mib"], after["rss_mib"]],
            "containers_grown": dict(sorted(grew.items(), key=lambda item: -item[1][1])[:15]),
        }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--platform", action="append", help="default: every wire platform")
    parser.add_argument("--orders", type=int, default=3000)
    parser.add_argument("--warmup", type=int, default=500, help="orders before the first measurement")
    parser.add_argument("--reconnect-every", type=int, default=700, help="0: never")
    parser.add_argument("--history-limit", type=int, default=300, help="the kernel's finished orders per account")
    parser.add_argument("--keep", type=int, default=100, help="finished orders an adapter keeps in full")
    args = parser.parse_args()
    platforms = args.platform or [p for p in PLATFORMS if p not in ("paper", "dxlink")]
    tracemalloc.start()
    failed = False
    for platform in platforms:
        report = asyncio.run(
            run(platform, args.orders, args.warmup, args.reconnect_every, args.history_limit, args.keep)
        )
        failed |= report["orders_filled_twice"] > 0 or report["fills_reported"] != args.orders
        print(orjson.dumps(report).decode(), flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python
"""What a risk-guard check costs on the copy path: prints one JSON line (issue #18 item 1).

    .venv/bin/python scripts/bench_guards.py --checks 20000

Times ``ExecutorGuards.check`` (the call the executor's lane makes before each broker call)
for one follower with every rule configured (contracts per symbol and in total, orders a
minute, daily loss and trailing drawdown over marked positions, a trading window), holding
``--symbols`` open positions with a working order each and fresh quotes for all of them; a
passing check also records the order as working, so each check is followed by the order's
cancel, keeping the standing the same for every sample. In microseconds per check.
"""

from __future__ import annotations

import argparse
import sys
import time
from decimal import Decimal

import orjson

from copytrader.agents.execution.guards import ExecutorGuards
from copytrader.common.stats import percentile
from copytrader.core import guards as g
from copytrader.core.quotes import QuoteBook
from copytrader.core.records import OrderIntent
from copytrader.core.schemas import convert
from copytrader.core.schemas.guards import WEEKDAYS, GuardsIn

SYMBOLS = ("ESZ6", "NQZ6", "CLZ6", "GCZ6", "MESZ6", "MNQZ6", "RTYZ6", "YMZ6")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checks", type=int, default=20_000)
    parser.add_argument("--symbols", type=int, default=4, choices=range(1, len(SYMBOLS) + 1))
    args = parser.parse_args(argv)
    rules = g.build(
        convert(
            {
                "max_contracts_per_symbol": 50,
                "max_contracts_total": 200,
                "max_orders_per_minute": 10_000,
                "daily_loss": {"limit": 1_000_000},
                "trailing_drawdown": {"limit": 1_000_000},
                "window": {"start": "00:00", "end": "23:59", "days": list(WEEKDAYS), "tz": "America/Chicago"},
                "tz": "America/Chicago",
                "day_starts": "17:00",
            },
            GuardsIn,
        )
    )
    quotes = QuoteBook(max_age_s=3600)
    guards = ExecutorGuards({"f1": rules}, quotes)
    guard = guards.accounts["f1"]
    symbols = SYMBOLS[: args.symbols]
    for n, symbol in enumerate(symbols):
        quotes.update(symbol, bid=Decimal(1000), ask=Decimal("1000.25"))
        guard.fill(None, symbol, "buy", 2, Decimal(1000), 0)
        guard.sent(f"w{n}", "place", symbol, "buy", 1, None)
    samples: list[float] = []
    refused = 0
    for n in range(args.checks):
        intent = OrderIntent(
            client_order_id=f"c{n}",
            signal_id=f"s{n}",
            account_id="f1",
            platform="paper",
            leader_account="L",
            action="place",
            symbol=symbols[n % len(symbols)],
            side="buy",
            quantity=1,
        )
        started = time.perf_counter_ns()
        refusal = guards.check(intent)
        samples.append((time.perf_counter_ns() - started) / 1000)
        refused += refusal is not None
        guard.finished(intent.client_order_id)
        guard.sent_at.clear()  # keep the rate window from growing over the run
    ordered = sorted(samples)
    print(
        orjson.dumps(
            {
                "checks": args.checks,
                "symbols": len(symbols),
                "refused": refused,
                "check_us": {
                    "min": round(ordered[0], 2),
                    "p50": round(percentile(ordered, 0.5) or 0, 2),
                    "p99": round(percentile(ordered, 0.99) or 0, 2),
                    "max": round(ordered[-1], 2),
                    "mean": round(sum(ordered) / len(ordered), 2),
                },
                "python": sys.version.split()[0],
            }
        ).decode()
    )
    return 0 if refused == 0 else 1


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python
"""Failover as deployed (issue #18, item 2): two fan-out and two executor replicas on a Kafka
broker of the run's own, followers on the Tradovate and ProjectX simulators.

    .venv/bin/python scripts/bench_failover.py --scenario workers   # SIGKILL one of each role
    .venv/bin/python scripts/bench_failover.py --scenario broker    # broker down ~15 s
    .venv/bin/python scripts/bench_failover.py --scenario workers --runs 3   # and the medians

Prints readable lines on stderr and one JSON line of results on stdout; exits non-zero when a
(signal, follower) lacks its one order at the books, has two, or a position is wrong.
The shared broker (COPYTRADER_KAFKA_BROKER) is never used: the run starts and stops its own.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import shutil
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

import orjson

from copytrader.demo.failover import SCENARIOS, FailoverOptions, run_failover

MEDIANS = {
    "workers": ("fanout_recovery_s", "executor_recovery_s"),
    "broker": ("outage_s", "next_copy_after_return_s", "log_lines_per_s_per_worker_max"),
}
BAD = ("pairs_missing_an_order", "pairs_doubled", "positions_wrong", "copies_missing_an_outcome")


def readable(result: dict[str, Any]) -> list[str]:
    lines = [
        f"scenario {result['scenario']}: {result['signals']} signals x {result['followers']} followers, "
        f"{result['orders_in_books']} orders in the books ({result['orders_expected']} expected)",
        f"missing {result['pairs_missing_an_order']}, doubled {result['pairs_doubled']}, "
        f"positions wrong {result['positions_wrong']}, settled {result['settled']}",
    ]
    if result["scenario"] == "workers":
        lines.append(f"killed {', '.join(result['killed'])} holding {result['killed_partitions']}")
        lines.append(
            f"recovery (kill -> first copy by the survivor on a killed partition): "
            f"fan-out {result['fanout_recovery_s']} s, executor {result['executor_recovery_s']} s"
        )
    else:
        lines.append(
            f"broker down {result['outage_s']} s; next copy {result['next_copy_after_return_s']} s after its return"
        )
        lines.append(
            f"worker log lines during the outage {result['log_lines_during_outage']} "
            f"(max {result['log_lines_per_s_per_worker_max']}/s per worker); "
            f"in the {result.get('after_return_s', 15)} s after: {result['log_lines_after_return']}"
        )
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenario", choices=SCENARIOS, default="workers")
    parser.add_argument("--signals", type=int, default=60)
    parser.add_argument("--followers", type=int, default=10)
    parser.add_argument("--interval", type=float, default=0.3, help="seconds between leader signals")
    parser.add_argument("--disrupt-after", type=int, default=20, help="signals before the kill / broker stop")
    parser.add_argument("--outage", type=float, default=15.0, help="seconds the broker stays down")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--runs", type=int, default=1, help="repeat; the JSON line then has each run and the medians")
    parser.add_argument("--workdir", type=Path, default=None, help="kept when given; default: a temporary one")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)  # this process's own clients, during the outage
    logging.getLogger("aiohttp.server").setLevel(logging.CRITICAL)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="copytrader-failover-"))
    options = FailoverOptions(
        scenario=args.scenario,
        signals=args.signals,
        followers=args.followers,
        interval_s=args.interval,
        disrupt_after=args.disrupt_after,
        outage_s=args.outage,
        seed=args.seed,
    )
    results = []
    for run in range(1, args.runs + 1):
        rundir = workdir / f"run-{run}"
        try:
            result = asyncio.run(run_failover(options, rundir))
        finally:
            if args.workdir is None:
                shutil.rmtree(rundir, ignore_errors=True)
        for line in readable(result):
            print(line, file=sys.stderr, flush=True)
        results.append(result)
    if args.workdir is None:
        shutil.rmtree(workdir, ignore_errors=True)
    if len(results) == 1:
        print(orjson.dumps(results[0]).decode(), flush=True)
    else:
        medians = {key: median_of(results, key) for key in MEDIANS[args.scenario]}
        print(f"medians over {len(results)} runs: {medians}", file=sys.stderr, flush=True)
        print(orjson.dumps({"runs": results, "median": medians}).decode(), flush=True)
    return 1 if any(r[k] for r in results for k in BAD) or not all(r["settled"] for r in results) else 0


def median_of(results: list[dict[str, Any]], key: str) -> float | None:
    values = [r[key] for r in results if r.get(key) is not None]
    return round(statistics.median(values), 2) if values else None


if __name__ == "__main__":
    sys.exit(main())

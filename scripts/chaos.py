#!/usr/bin/env python
"""Exactly once under SIGKILL at full scale: prints the totals as one JSON line.

    .venv/bin/python scripts/chaos.py --signals 200 --followers 50

Runs the same as tests/integration/test_chaos_exactly_once.py (demo/chaos.py) against the
Kafka at COPYTRADER_KAFKA_BROKER; exits non-zero when any (signal, follower) lacks its one
broker order, has two, or a follower's position differs from the leader's scaled position.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import tempfile
from pathlib import Path

import orjson

from copytrader.core.settings import Settings
from copytrader.demo.chaos import ChaosOptions, run_chaos


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--signals", type=int, default=200)
    parser.add_argument("--followers", type=int, default=50)
    parser.add_argument("--kills", type=int, default=8, help="at least this many SIGKILLs (front and back in turn)")
    parser.add_argument("--interval", type=float, default=0.35, help="seconds between leader signals")
    parser.add_argument("--lose-rate", type=float, default=0.05, help="share of order answers lost")
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument(
        "--settle", type=float, default=300.0, help="seconds to wait for every copy after the last kill"
    )
    parser.add_argument("--data-dir", type=Path, default=None, help="default: a fresh temporary directory")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("aiohttp.server").setLevel(logging.CRITICAL)  # the simulators' lost answers, on purpose
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)  # the observer's start on fresh topics
    data_dir = args.data_dir or Path(tempfile.mkdtemp(prefix="copytrader-chaos-"))
    settings = Settings.from_env()
    settings = Settings(
        **{**{f: getattr(settings, f) for f in settings.__dataclass_fields__}, "data_dir": data_dir.resolve()}
    )
    options = ChaosOptions(
        signals=args.signals,
        followers=args.followers,
        min_kills=args.kills,
        interval_s=args.interval,
        lose_response_rate=args.lose_rate,
        seed=args.seed,
        settle_timeout_s=args.settle,
    )
    result = asyncio.run(run_chaos(options, settings))
    print(orjson.dumps(result).decode(), flush=True)
    bad = (
        "pairs_missing_an_order",
        "pairs_doubled",
        "positions_wrong",
        "cancelled_but_working",
        "outcomes_unknown_unresolved",
    )
    return 1 if any(result[k] for k in bad) or not result["settled"] else 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python
"""A trading week's faults in ten minutes (#18): prints the report as one JSON line.

    .venv/bin/python scripts/soak.py                       # 1,000 signals/min, 50 followers, 10 min
    .venv/bin/python scripts/soak.py --minutes 2 --followers 20

Runs demo/soak.py against the Kafka at COPYTRADER_KAFKA_BROKER; exits non-zero when a copy was
doubled, lost or left without an outcome.
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
from copytrader.demo.soak import SoakOptions, run_soak


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--followers", type=int, default=50)
    parser.add_argument("--signals-per-minute", type=int, default=1000)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--fault-every", type=float, default=5.0, help="seconds between faults")
    parser.add_argument("--outage", type=float, default=60.0, help="seconds one simulator stays down")
    parser.add_argument(
        "--settle-timeout", type=float, default=180.0, help="seconds to wait after the last signal for every outcome"
    )
    parser.add_argument("--no-faults", action="store_true")
    parser.add_argument("--seed", type=int, default=23)
    parser.add_argument("--data-dir", type=Path, default=None, help="default: a fresh temporary directory")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    for noisy in ("aiohttp.server", "aiohttp.access", "aiokafka"):  # the faults' own noise, on purpose
        logging.getLogger(noisy).setLevel(logging.CRITICAL)
    data_dir = args.data_dir or Path(tempfile.mkdtemp(prefix="copytrader-soak-"))
    settings = Settings.from_env()
    settings = Settings(
        **{**{f: getattr(settings, f) for f in settings.__dataclass_fields__}, "data_dir": data_dir.resolve()}
    )
    options = SoakOptions(
        followers=args.followers,
        signals_per_minute=args.signals_per_minute,
        minutes=args.minutes,
        seed=args.seed,
        faults=not args.no_faults,
        fault_every_s=args.fault_every,
        outage_s=args.outage,
        settle_timeout_s=args.settle_timeout,
    )
    report = asyncio.run(run_soak(options, settings))
    print(orjson.dumps(report).decode(), flush=True)
    bad = report["doubled"] or report["lost"] or report["copies_without_outcome"]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python
"""How long the kill switch takes: prints one JSON line (issue #18 item 1).

    .venv/bin/python scripts/bench_kill.py --followers 200 --platform paper

A demo scenario trades (the leader keeps going); once every follower has copied a few trades,
the switch is engaged in-process (the same ``agents.shared.kill_switch.engage`` the API and
``copytrader kill`` call, so the CLI's start-up is not in the figure) and the observer times
each follower's flatten outcome on ``trade.executions`` from the engage instant: ``sent_ms``
(the executor handed it to the adapter) and ``acked_ms`` (the broker answered). Copies of
entries after the switch must be 0. Runs against the Kafka at COPYTRADER_KAFKA_BROKER.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer

from copytrader.agents.shared import kill_switch
from copytrader.agents.shared.outbox import batch_intents
from copytrader.common.stats import latency_summary
from copytrader.core.control_records import TOPIC as CONTROLS_TOPIC
from copytrader.core.records import OrderIntent
from copytrader.core.settings import Settings
from copytrader.core.topics import topic_name
from copytrader.demo.runner import Scenario, ScenarioOptions


async def measure(args: argparse.Namespace, data_dir: Path) -> dict[str, Any]:
    settings = Settings.from_env()
    settings = Settings(kafka_broker=settings.kafka_broker, data_dir=data_dir)
    options = ScenarioOptions(trades=args.trades, interval=args.interval, quiet=True, platform=args.platform)
    async with Scenario("killbench", args.followers, "0", options, settings=settings) as run:
        seen = run.observer.seen
        (run.run_dir / "go").write_text("go")
        deadline = time.monotonic() + 120
        while len({a for _, a in seen.outcomes}) < args.followers and time.monotonic() < deadline:
            await asyncio.sleep(0.1)  # every follower has copied something: the lanes are busy
        producer = AIOKafkaProducer(bootstrap_servers=settings.bootstrap_servers, linger_ms=0)
        await producer.start()

        async def send_control(key: bytes, value: bytes) -> None:
            await producer.send_and_wait(topic_name(run.prefix, CONTROLS_TOPIC), value, key=key)

        async def send_intents(signal_id: str, intents: list[OrderIntent]) -> None:
            topic = topic_name(run.prefix, "orders.requests")
            for partition, batch in batch_intents(signal_id, intents).items():
                await producer.send(topic, batch.dumps(), key=batch.batch_id.encode(), partition=partition)
            await producer.flush()

        try:
            switch = await kill_switch.engage(run.config, "bench", send_control, send_intents)
        finally:
            await producer.stop()
        expected = set(switch.accounts)

        def flattened() -> dict[str, Any]:
            return {a: o for (sid, a), outs in seen.outcomes.items() if sid == switch.signal_id for o in outs[:1]}

        deadline = time.monotonic() + args.timeout
        while set(flattened()) < expected and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        outcomes = flattened()
        result = await run.trade(settle_timeout=60)
    entries_after = sum(
        1
        for (sid, _), outs in seen.outcomes.items()
        if sid in seen.signals
        and seen.signals[sid].kind == "new"
        and seen.signals[sid].stamps.get("detected", 0) > switch.at + 1.0
        for o in outs
        if o.kind != "reject"
    )
    at = switch.at
    return {
        "followers": args.followers,
        "platform": args.platform,
        "flattened": len(outcomes),
        "failed": sum(1 for o in outcomes.values() if o.kind == "reject"),
        "sent_ms": latency_summary([(o.stamps["sent"] - at) * 1000 for o in outcomes.values() if "sent" in o.stamps]),
        "acked_ms": latency_summary(
            [(o.stamps["acked"] - at) * 1000 for o in outcomes.values() if "acked" in o.stamps]
        ),
        "entries_copied_after_switch": entries_after,
        "duplicates": result["duplicates"],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--followers", type=int, default=200)
    parser.add_argument("--platform", default="paper", help="paper or a simulator (tradovate, projectx, ...)")
    parser.add_argument("--trades", type=int, default=60, help="leader actions in the whole run")
    parser.add_argument("--interval", type=float, default=0.25, help="seconds between leader actions")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for every flatten")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    with tempfile.TemporaryDirectory(prefix="ct-killbench-") as tmp:
        result = asyncio.run(measure(args, Path(tmp)))
    print(orjson.dumps(result).decode(), flush=True)
    return 0 if result["flattened"] == args.followers and not result["entries_copied_after_switch"] else 1


if __name__ == "__main__":
    sys.exit(main())

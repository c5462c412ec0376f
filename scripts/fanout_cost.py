"""CPU per copy of the fan-out's own path, in one process, and how many produce requests a
signal's intents take.

Why: ``copytrader bench`` measures the ``front`` process while Kafka, the executor, the
tracker and other engineers share two cores, so its per-copy figure moves with the load. Here
the real fan-out stage (``create_app`` with the ``fanout`` role, its planner and the
production ``TopicOutbox`` over Faust's producer) handles ``--signals`` encoded leader signals
one at a time — ``handle_signal``: decode, plan, batch, encode, append — and each signal's
intents are flushed to Kafka before the next one, as the bench's pace (a signal every 100 ms)
has them; ``time.process_time`` counts the CPU, the producer's sender task included. Kafka
must run (``COPYTRADER_KAFKA_BROKER``); the script writes to one topic,
``fanout-cost.orders.requests``, created on first use and reused.

The aiokafka sender's produce requests are counted by wrapping its ``_send_produce_req``
(read in this script only): ``requests_per_signal`` is 1 when a signal's batches leave
together.

Usage: ``python scripts/fanout_cost.py [--followers 20 --signals 150 --runs 5]``; prints one
JSON line with the median, the minimum and every run, in ms of CPU per copy.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import logging
import os
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from copytrader.agents.fanout.agent import FanoutStage, handle_signal
from copytrader.app.factory import CopyTraderApp, create_app
from copytrader.core.config import parse_config
from copytrader.core.records import TradeSignal
from copytrader.core.settings import Settings
from copytrader.core.signals import encode_signal
from copytrader.core.topics import SPEC, ensure_topics

PREFIX = "fanout-cost."


def config(followers: int) -> dict[str, Any]:
    names = [f"f{i}" for i in range(1, followers + 1)]
    return {
        "sessions": [{"id": "p", "platform": "paper", "options": {"tick_ms": 0, "venue": "fanout-cost"}}],
        "accounts": [{"id": "L", "session": "p"}] + [{"id": n, "session": "p"} for n in names],
        "copy_groups": [{"leader": "L", "followers": [{"account": n} for n in names]}],
    }


def build(data_dir: Path, followers: int, broker: str) -> CopyTraderApp:
    settings = Settings(
        app_id=f"fanout-cost-{uuid.uuid4().hex[:8]}",
        kafka_broker=broker,
        topic_prefix=PREFIX,
        data_dir=data_dir,
        roles=("fanout",),
        web_port=int(os.environ.get("FAN26_WEB_PORT", "6066")),
    )
    app = create_app(settings, parse_config(config(followers), env={}))
    app.finalize()
    return app


def signals(first: int, count: int) -> list[bytes]:
    """``count`` leader signals as ingest encodes them: market entries, alternating sides."""
    made = []
    for number in range(first, first + count):
        now = time.time()
        signal = TradeSignal(
            signal_id=f"L:cost{number}:new",
            leader_account="L",
            platform="paper",
            symbol="ESZ6",
            side="buy" if number % 2 else "sell",
            quantity=1,
            kind="new",
            order_type="market",
            leader_order_id=f"cost{number}",
            stamps={"detected": now, "published": now},
        )
        made.append(encode_signal(signal))
    return made


class RequestCounter:
    """Counts the produce requests aiokafka's sender makes (one per broker per drain)."""

    def __init__(self, app: CopyTraderApp) -> None:
        sender = app.producer._producer._sender  # type: ignore[attr-defined]  # aiokafka internals, this script only
        self.count = 0
        original = sender._send_produce_req

        async def counted(*args: Any, **kwargs: Any) -> Any:
            self.count += 1
            return await original(*args, **kwargs)

        sender._send_produce_req = counted


async def measure(followers: int, count: int, runs: int, broker: str) -> tuple[list[float], list[float]]:
    bootstrap = broker.removeprefix("kafka://")
    await ensure_topics(bootstrap, PREFIX)
    with tempfile.TemporaryDirectory() as tmp:
        app = build(Path(tmp), followers, broker)
        stage = app.runtime.fanout
        assert isinstance(stage, FanoutStage)
        producer = app.producer
        await producer.start()  # as a worker's boot starts it, before any send
        counter = RequestCounter(app)
        numbers = iter(range(1, 1_000_000, count))
        for payload in signals(next(numbers), 20):  # warm-up: first plans, first sends, metadata
            await handle_signal(stage, payload)
            await producer.flush()
        per_copy: list[float] = []
        requests: list[float] = []
        for _ in range(runs):
            payloads = signals(next(numbers), count)
            gc.collect()
            before = counter.count
            start = time.process_time()
            for payload in payloads:
                await handle_signal(stage, payload)
                await producer.flush()  # the bench's pace: each signal's intents leave alone
            per_copy.append((time.process_time() - start) * 1000 / (count * followers))
            requests.append((counter.count - before) / count)
        await producer.stop()
    return per_copy, requests


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--followers", type=int, default=20)
    parser.add_argument("--signals", type=int, default=150, help="signals per run (copies: signals × followers)")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    broker = os.environ.get("COPYTRADER_KAFKA_BROKER", "kafka://127.0.0.1:9092")
    per_copy, requests = asyncio.run(measure(args.followers, args.signals, args.runs, broker))
    print(
        json.dumps(
            {
                "followers": args.followers,
                "signals": args.signals,
                "partitions": SPEC["orders.requests"].partitions,
                "cpu_ms_per_copy": round(statistics.median(per_copy), 4),
                "min": round(min(per_copy), 4),
                "runs": [round(x, 4) for x in per_copy],
                "requests_per_signal": round(statistics.median(requests), 2),
            }
        )
    )


if __name__ == "__main__":
    main()

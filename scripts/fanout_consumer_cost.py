"""CPU per copy of a whole fan-out worker, consumer included, in one process: the direct
``trade.signals`` consumer against the Faust agent (``COPYTRADER_FANOUT_CONSUMER``).

Why: ``scripts/fanout_cost.py`` calls ``handle_signal`` itself, so it cannot see what the
consumer in front of it costs, and ``copytrader bench`` measures a 20-second window of a
process that also runs the scripted leader while Kafka, the executor and the tracker share the
two cores: its per-copy CPU moves by a factor of three between runs. Here a real fan-out worker
(``create_app`` with the ``fanout`` role, ``app.start()`` as the worker starts it: Faust's
consumer thread, the controls feed, the heartbeat and the web server included) consumes
``--signals`` leader signals that a child process produces at the bench's pace (one every
``--interval`` seconds), and ``time.process_time`` counts this process's CPU, every thread
included, from the first signal to the last one planned. ``idle_cpu_ms_per_s`` is the same
process's CPU rate in the two seconds before the first signal: what a worker costs doing nothing.

Each run uses fresh topics (``fanout-ccost-<id>.``) and a fresh app id, deleted at the end.
Usage: ``python scripts/fanout_consumer_cost.py [--followers 20 --signals 200 --interval 0.05
--runs 3]``; the runs alternate ``faust`` and ``direct``; prints one JSON line per run and one
with the medians.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import socket
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaProducer

from copytrader.app.factory import CopyTraderApp, create_app
from copytrader.core import metrics
from copytrader.core.config import parse_config
from copytrader.core.records import TradeSignal
from copytrader.core.settings import Settings
from copytrader.core.signals import encode_signal
from copytrader.core.topics import delete_run_topics, ensure_topics

POLL_S = 0.05


def config(followers: int) -> dict[str, Any]:
    names = [f"f{i}" for i in range(1, followers + 1)]
    return {
        "sessions": [{"id": "p", "platform": "paper", "options": {"tick_ms": 0, "venue": "fanout-ccost"}}],
        "accounts": [{"id": "L", "session": "p"}] + [{"id": n, "session": "p"} for n in names],
        "copy_groups": [{"leader": "L", "followers": [{"account": n} for n in names]}],
    }


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def copied() -> float:
    """Signals the fan-out planned so far (``handle_signal`` counts each)."""
    return float(sum(child._value.get() for child in metrics.SIGNALS_TOTAL._metrics.values()))  # type: ignore[attr-defined]  # prometheus_client internals, this script only


async def produce(bootstrap: str, topic: str, count: int, interval: float) -> None:
    """The child process: ``count`` market entries, one every ``interval`` seconds."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=0)
    await producer.start()
    try:
        for number in range(count):
            now = time.time()
            signal = TradeSignal(
                signal_id=f"L:ccost{number}:new",
                leader_account="L",
                platform="paper",
                symbol=("ESZ6", "NQZ6", "CLZ6")[number % 3],
                side="buy" if number % 2 else "sell",
                quantity=1,
                kind="new",
                order_type="market",
                leader_order_id=f"ccost{number}",
                stamps={"detected": now, "published": now},
            )
            await producer.send_and_wait(topic, encode_signal(signal), key=signal.symbol.encode())
            await asyncio.sleep(interval)
    finally:
        await producer.stop()


async def measure(mode: str, followers: int, count: int, interval: float, broker: str) -> dict[str, Any]:
    bootstrap = broker.removeprefix("kafka://")
    prefix = f"fanout-ccost-{uuid.uuid4().hex[:8]}."
    await ensure_topics(bootstrap, prefix)
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(
            app_id=prefix.rstrip("."),
            kafka_broker=broker,
            topic_prefix=prefix,
            data_dir=Path(tmp),
            roles=("fanout",),
            fanout_consumer=mode,
            web_port=free_port(),
        )
        app: CopyTraderApp = create_app(settings, parse_config(config(followers), env={}))
        await app.start()
        try:
            deadline = time.monotonic() + 60
            while not (app.runtime.warmup.ready and app.assigned_partitions() > 0):
                assert time.monotonic() < deadline, "the worker did not become ready"
                await asyncio.sleep(0.1)
            idle_start, idle_cpu = time.monotonic(), time.process_time()
            await asyncio.sleep(2.0)
            idle_rate = (time.process_time() - idle_cpu) * 1000 / (time.monotonic() - idle_start)
            before = copied()
            child = await asyncio.create_subprocess_exec(
                sys.executable,
                __file__,
                *("--produce", f"{prefix}trade.signals", "--signals", str(count), "--interval", str(interval)),
                env={**os.environ, "COPYTRADER_KAFKA_BROKER": broker},
            )
            # Polled every POLL_S, not faster: the polling is this process's CPU too.
            while copied() == before:  # the first signal is there: the window opens
                await asyncio.sleep(POLL_S)
            start_wall, start_cpu, first = time.monotonic(), time.process_time(), copied()
            while copied() < before + count:
                assert time.monotonic() - start_wall < count * interval + 60, "signals missing"
                await asyncio.sleep(POLL_S)
            await app.producer.flush()
            cpu_ms = (time.process_time() - start_cpu) * 1000
            wall_s = time.monotonic() - start_wall
            planned = copied() - first
            await asyncio.wait_for(child.wait(), 30)
        finally:
            await app.stop()
    await delete_run_topics(bootstrap, prefix)
    copies = planned * followers  # planned inside the window
    return {
        "consumer": mode,
        "cpu_ms_per_copy": round(cpu_ms / copies, 4),
        "cpu_ms_per_copy_less_idle": round((cpu_ms - idle_rate * wall_s) / copies, 4),
        "idle_cpu_ms_per_s": round(idle_rate, 2),
        "window_s": round(wall_s, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--followers", type=int, default=20)
    parser.add_argument("--signals", type=int, default=200, help="signals per run (copies: signals × followers)")
    parser.add_argument("--interval", type=float, default=0.05, help="seconds between signals")
    parser.add_argument("--runs", type=int, default=3, help="runs per consumer, alternated")
    parser.add_argument("--consumers", default="faust,direct", help="which consumers, in the order they alternate")
    parser.add_argument("--produce", metavar="TOPIC", help=argparse.SUPPRESS)  # the child process
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    broker = os.environ.get("COPYTRADER_KAFKA_BROKER", "kafka://127.0.0.1:9092")
    if args.produce:
        asyncio.run(produce(broker.removeprefix("kafka://"), args.produce, args.signals, args.interval))
        return
    modes = [mode.strip() for mode in args.consumers.split(",") if mode.strip()]
    results: dict[str, list[float]] = {mode: [] for mode in modes}
    for _ in range(args.runs):
        for mode in modes:
            run = asyncio.run(measure(mode, args.followers, args.signals, args.interval, broker))
            results[mode].append(run["cpu_ms_per_copy"])
            print(json.dumps(run), flush=True)
    summary = {mode: round(statistics.median(values), 4) for mode, values in results.items()}
    print(json.dumps({"followers": args.followers, "signals": args.signals, "median_cpu_ms_per_copy": summary}))


if __name__ == "__main__":
    main()

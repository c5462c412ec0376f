"""CPU per copy of a whole watching worker (roles ``track,store,web``), in one process, fed
with records captured from a bench run (``scripts/stage_costs.py --capture``).

Why: ``scripts/stage_costs.py`` replays the records through each stage's own code, so it
cannot see what the machinery around that code costs (Faust's agent, table and changelog,
three Kafka consumers, the producer, the event loop), and ``copytrader bench`` allows a few
runs only and measures a worker that shares two cores with the copy path. Here a real worker
(``create_app`` with the chosen roles, ``app.start()`` as the worker starts it) consumes the
captured ``trade.signals``, ``orders.requests``, ``trade.executions``, ``order.errors`` and
``account.status`` records, which a child process produces to fresh topics in their captured
order, one signal's share every ``--interval`` seconds (``positions.updates`` is left out: the
worker's tracker makes its own). ``time.process_time`` counts this process's CPU, every thread
included, from the first record produced until the worker is quiet again (as the bench ends its
window); the idle rate measured before the first record, times the window, is taken off for the
marginal figure.

Usage: ``python scripts/watcher_cost.py RECORDS.pkl --config BENCH_CONFIG.yaml [--runs 3]``;
prints one JSON line per run and one with the medians. Each run uses fresh topics
(``watcher-cost-<id>.``) and a fresh app id, deleted at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import logging
import os
import pickle
import socket
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaProducer
from cryptography.fernet import Fernet

from copytrader.app.factory import CopyTraderApp, create_app
from copytrader.core.config import CopyConfig, load_config
from copytrader.core.records import IntentBatch
from copytrader.core.settings import Settings
from copytrader.core.topics import delete_run_topics, ensure_topics

REPLAYED = ("trade.signals", "orders.requests", "trade.executions", "order.errors", "account.status")
QUIET_MS_PER_S = 60.0
QUIET_STEP_S = 0.5
Captured = list[tuple[str, int, int, bytes | None, bytes | None]]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def slices(records: Captured) -> list[Captured]:
    """The replayed records in captured order, cut before each ``trade.signals`` record."""
    out: list[Captured] = [[]]
    for record in records:
        if record[0] not in REPLAYED or record[4] is None:
            continue
        if record[0] == "trade.signals" and out[-1]:
            out.append([])
        out[-1].append(record)
    return out


def copies_in(records: Captured) -> int:
    return sum(len(IntentBatch.loads(r[4]).intents) for r in records if r[0] == "orders.requests" and r[4])


async def produce(bootstrap: str, prefix: str, records: Captured, interval: float) -> None:
    """The child process: each slice to its captured partitions, then ``interval`` seconds."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5)
    await producer.start()
    try:
        for part in slices(records):
            sent = [
                await producer.send(prefix + topic, value, key=key, partition=p) for topic, p, _, key, value in part
            ]
            await asyncio.gather(*sent)
            await asyncio.sleep(interval)
    finally:
        await producer.stop()


async def quiet(step: float = QUIET_STEP_S) -> None:
    """Until this process spends under ``QUIET_MS_PER_S`` of CPU over one step."""
    while True:
        cpu = time.process_time()
        await asyncio.sleep(step)
        if (time.process_time() - cpu) * 1000 / step < QUIET_MS_PER_S:
            return


async def measure(
    path: Path, records: Captured, config: CopyConfig, roles: str, interval: float, broker: str
) -> dict[str, Any]:
    bootstrap = broker.removeprefix("kafka://")
    prefix = f"watcher-cost-{uuid.uuid4().hex[:8]}."
    await ensure_topics(bootstrap, prefix)
    copies = copies_in(records)
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["COPYTRADER_DATABASE_URL"] = f"sqlite:///{tmp}/copytrader.db"
        os.environ.setdefault("COPYTRADER_SECRET_KEY", Fernet.generate_key().decode())
        settings = dataclasses.replace(
            Settings.from_env(),  # the worker's settings from the environment (COPYTRADER_*), as deployed
            app_id=prefix.rstrip("."),
            kafka_broker=broker,
            topic_prefix=prefix,
            data_dir=Path(tmp),
            roles=tuple(roles.split(",")),
            web_port=free_port(),
        )
        app: CopyTraderApp = create_app(settings, config)
        await app.start()
        try:
            deadline = time.monotonic() + 60
            while not (app.runtime.warmup.ready and app.assigned_partitions() > 0):
                assert time.monotonic() < deadline, "the worker did not become ready"
                await asyncio.sleep(0.1)
            await asyncio.sleep(3.0)  # start-up's tail (recovery, the first fetches, migrations)
            idle_start, idle_cpu = time.monotonic(), time.process_time()
            await asyncio.sleep(3.0)
            idle_rate = (time.process_time() - idle_cpu) * 1000 / (time.monotonic() - idle_start)
            start_wall, start_cpu = time.monotonic(), time.process_time()
            child = await asyncio.create_subprocess_exec(
                sys.executable,
                __file__,
                *(str(path), "--produce", prefix, "--interval", str(interval)),
                env={**os.environ, "COPYTRADER_KAFKA_BROKER": broker},
            )
            await asyncio.wait_for(child.wait(), 300)
            await quiet()
            cpu_ms = (time.process_time() - start_cpu) * 1000
            wall_s = time.monotonic() - start_wall
            decoded = getattr(app.runtime, "decoded", None)  # code before the shared decoding has none
            shared = decoded.hits if decoded is not None else None
        finally:
            await app.stop()
    await delete_run_topics(bootstrap, prefix)
    return {
        "roles": roles,
        "copies": copies,
        "cpu_ms_per_copy": round(cpu_ms / copies, 4),
        "cpu_ms_per_copy_less_idle": round((cpu_ms - idle_rate * wall_s) / copies, 4),
        "idle_cpu_ms_per_s": round(idle_rate, 2),
        "window_s": round(wall_s, 2),
        "decodes_shared": shared,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("records", type=Path)
    parser.add_argument("--config", type=Path, help="the bench run's config.yaml (its accounts)")
    parser.add_argument("--roles", default="track,store,web")
    parser.add_argument("--interval", type=float, default=0.25, help="seconds between signals' records")
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--produce", metavar="PREFIX", help=argparse.SUPPRESS)  # the child process
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    broker = os.environ.get("COPYTRADER_KAFKA_BROKER", "kafka://127.0.0.1:9092")
    if args.produce:
        records = pickle.loads(args.records.read_bytes())
        asyncio.run(produce(broker.removeprefix("kafka://"), args.produce, records, args.interval))
        return
    if args.config is None:
        parser.error("--config is required")
    records, config = pickle.loads(args.records.read_bytes()), load_config(args.config)
    marginal: list[float] = []
    for _ in range(args.runs):
        run = asyncio.run(measure(args.records, records, config, args.roles, args.interval, broker))
        marginal.append(run["cpu_ms_per_copy_less_idle"])
        print(json.dumps(run), flush=True)
    print(json.dumps({"roles": args.roles, "median_cpu_ms_per_copy_less_idle": round(statistics.median(marginal), 4)}))


if __name__ == "__main__":
    main()

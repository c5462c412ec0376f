"""CPU per copy of the executor's own code path, in one process, independent of the machine's load.

Why: ``copytrader bench`` measures the executor process (``back``) while Kafka, fan-out and
four other engineers share two cores, so its per-copy figure moves with the load. Here the
real execution stage (``create_app`` with the ``execute`` role: router, account lanes, attempt
journal on a temporary SQLite file, deferred outbox over a ``MemoryOutbox``, the outcome hooks
of metrics, guards, protective stops and reconciliation, the fill pumps) takes ``--signals``
batches of one market copy per follower, and ``time.process_time`` counts the CPU they cost.
No Kafka: what is measured is the executor's work per copy from the lane to the outbox.

``--outbox kafka`` publishes the outcome records the way the worker does instead: the
production ``TopicOutbox`` over Faust's producer to the local Kafka
(``COPYTRADER_KAFKA_BROKER``, topics ``executor-cost.*``, created on first use and reused),
each signal's records flushed before the next signal as the bench's pace has them; the
encoding, the producer and its sender task are then counted too.

Two venues: ``paper`` (the paper adapter and its simulator kernel, which a real broker would
run) and ``null`` (an adapter that acks at once and emits one fill, so the executor's own work
per copy keeps its shape: an ack and a fill). ``paper - null`` is the paper venue's share.

Usage: ``python scripts/executor_cost.py [--followers 20 --signals 150 --runs 5 --venue both
--outbox memory]``;
prints one JSON line with the median, the minimum and every run, in ms of CPU per copy. ``--profile`` prints
cProfile's top functions of one extra run instead.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import itertools
import json
import logging
import os
import pstats
import statistics
import tempfile
import time
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

from copytrader.agents.execution.agent import submit_batch
from copytrader.agents.shared.outbox import MemoryOutbox
from copytrader.app.factory import CopyTraderApp, create_app
from copytrader.brokers.model import FillEvent, OrderAck, OrderStatus, PlaceOrder
from copytrader.brokers.paper.adapter import PaperAdapter, reset_venues
from copytrader.core import ids
from copytrader.core.config import parse_config
from copytrader.core.records import IntentBatch, OrderIntent
from copytrader.core.settings import Settings
from copytrader.core.topics import ensure_topics

SYMBOL = "ESZ6"
PREFIX = "executor-cost."


def config(followers: int) -> dict[str, Any]:
    names = [f"f{i}" for i in range(1, followers + 1)]
    return {
        "sessions": [{"id": "p", "platform": "paper", "options": {"tick_ms": 0, "venue": "executor-cost"}}],
        "accounts": [{"id": "L", "session": "p"}] + [{"id": n, "session": "p"} for n in names],
        "copy_groups": [{"leader": "L", "followers": [{"account": n} for n in names]}],
    }


def null_venue() -> None:
    """The paper adapter without its venue: every place is acked at once and filled in full."""
    fills = itertools.count(1)

    async def place(self: PaperAdapter, command: PlaceOrder) -> OrderAck:
        number = next(fills)
        order_id = f"N{number}"
        self._emit(
            FillEvent(
                command.account_id,
                command.client_order_id,
                order_id,
                f"F{number}",
                command.symbol,
                command.side,
                command.quantity,
                Decimal("5000"),
                command.quantity,
                0,
            )
        )
        return OrderAck(command.account_id, command.client_order_id, order_id, OrderStatus.FILLED)

    PaperAdapter.place = place  # type: ignore[method-assign]  # this process only runs the measurement


def build(data_dir: Path, followers: int, broker: str | None = None) -> CopyTraderApp:
    """The execution stage; ``broker`` None: outcomes go to a MemoryOutbox, Kafka is never reached."""
    settings = Settings(
        app_id=f"executor-cost-{uuid.uuid4().hex[:8]}",
        kafka_broker=broker or "kafka://127.0.0.1:1",
        topic_prefix=PREFIX,
        data_dir=data_dir,
        roles=("execute",),
        executor_consumer="faust",  # the agent is never started; batches are submitted directly
    )
    outbox = MemoryOutbox() if broker is None else None  # None: the production TopicOutbox
    app = create_app(settings, parse_config(config(followers), env={}), outbox=outbox)
    app.finalize()
    return app


class Copier:
    """Submits one batch of market copies per signal, as the intent consumer would."""

    def __init__(self, app: CopyTraderApp, followers: int, kafka: bool = False) -> None:
        stage = app.runtime.execution
        assert stage is not None
        self.stage = stage
        self.producer = app.producer if kafka else None
        self.followers = [f"f{i}" for i in range(1, followers + 1)]
        self.signals = itertools.count(1)

    async def connect(self) -> None:
        for follower in self.followers:
            adapter = await self.stage.ctx.pool.adapter_for(follower)
        adapter.exchange.set_price(SYMBOL, Decimal("5000"))  # type: ignore[attr-defined]  # the paper kernel

    def batches(self, count: int) -> list[IntentBatch]:
        """``count`` signals' batches, built before the clock starts (decoding them is the
        consumer's cost, not the lanes')."""
        made = []
        for _ in range(count):
            number = next(self.signals)
            signal = ids.signal_id("L", f"o{number}", "new")
            side = "buy" if number % 2 else "sell"  # positions go back to flat every two signals
            intents = [
                OrderIntent(
                    client_order_id=ids.client_order_id(signal, follower),
                    signal_id=signal,
                    account_id=follower,
                    platform="paper",
                    leader_account="L",
                    action="place",
                    symbol=SYMBOL,
                    side=side,
                    quantity=1,
                    stamps={"detected": time.time()},
                )
                for follower in self.followers
            ]
            made.append(IntentBatch(batch_id=signal, intents=intents))
        return made

    async def close(self) -> None:
        """The stage's lanes, outbox, sessions and journal, then the Kafka producer if any."""
        stage = self.stage
        await stage.router.late.close()
        await stage.lanes.close()
        await stage.router.outbox.close()
        await stage.ctx.pool.close()
        if stage.router.journal is not None:
            stage.router.journal.close()
        if self.producer is not None:
            await self.producer.stop()

    async def copy_signals(self, batches: list[IntentBatch]) -> None:
        """One batch after the other, each awaited until every copy was acked."""
        loop = asyncio.get_running_loop()
        for batch in batches:
            done = loop.create_future()

            async def acked(done: asyncio.Future[None] = done) -> None:
                done.set_result(None)

            submit_batch(self.stage, batch, acked)
            await done
            if self.producer is not None:
                await self.producer.flush()  # the bench's pace: each signal's outcomes leave alone
        await self.stage.router.outbox.drained()
        if self.producer is not None:
            await self.producer.flush()
        for _ in range(3):  # the fill pumps' last events
            await asyncio.sleep(0)


async def measure(
    venue: str,
    followers: int,
    signals: int,
    runs: int,
    profile: bool,
    profile_to: str | None = None,
    broker: str | None = None,
) -> list[float]:
    reset_venues()
    if venue == "null":
        null_venue()
    if broker is not None:
        await ensure_topics(broker.removeprefix("kafka://"), PREFIX)
    with tempfile.TemporaryDirectory() as tmp:
        app = build(Path(tmp), followers, broker)
        copier = Copier(app, followers, kafka=broker is not None)
        if copier.producer is not None:
            await copier.producer.start()  # as a worker's boot starts it, before any send
        await copier.connect()
        await copier.copy_signals(copier.batches(20))  # warm-up: first sends, first records, caches
        per_copy: list[float] = []
        outbox = app.runtime.outbox
        for _ in range(runs):
            if isinstance(outbox, MemoryOutbox):
                outbox.sent.clear()  # what a real outbox would not keep: no growth across runs
            batches = copier.batches(signals)
            gc.collect()
            start = time.process_time()
            await copier.copy_signals(batches)
            per_copy.append((time.process_time() - start) * 1000 / (signals * followers))
        if profile:
            batches = copier.batches(signals)
            profiler = cProfile.Profile()
            profiler.enable()
            await copier.copy_signals(batches)
            profiler.disable()
            stats = pstats.Stats(profiler)
            if profile_to is not None:
                stats.dump_stats(f"{profile_to}.{venue}")
            stats.sort_stats("tottime").print_stats(40)
        await copier.close()
    reset_venues()
    return per_copy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--followers", type=int, default=20)
    parser.add_argument("--signals", type=int, default=150, help="signals per run (copies: signals × followers)")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--venue", choices=("paper", "null", "both"), default="both")
    parser.add_argument(
        "--outbox", choices=("memory", "kafka"), default="memory", help="where outcomes go (kafka: the worker's way)"
    )
    parser.add_argument("--profile", action="store_true", help="cProfile one extra run (per venue)")
    parser.add_argument("--profile-to", help="also save that profile's stats to this path (.paper/.null added)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    result: dict[str, Any] = {
        "followers": args.followers,
        "signals": args.signals,
        "runs": args.runs,
        "outbox": args.outbox,
    }
    broker = os.environ.get("COPYTRADER_KAFKA_BROKER", "kafka://127.0.0.1:9092") if args.outbox == "kafka" else None
    # null runs last: it replaces the paper adapter's place for the rest of the process
    for venue in ("paper", "null") if args.venue == "both" else (args.venue,):
        per_copy = asyncio.run(
            measure(
                venue,
                args.followers,
                args.signals,
                args.runs,
                args.profile or bool(args.profile_to),
                args.profile_to,
                broker,
            )
        )
        result[venue] = {
            "cpu_ms_per_copy": round(statistics.median(per_copy), 4),
            "min": round(min(per_copy), 4),  # the least disturbed run, on a shared machine
            "runs": [round(x, 4) for x in per_copy],
        }
    if "paper" in result and "null" in result:
        result["paper_venue_share_ms"] = round(
            result["paper"]["cpu_ms_per_copy"] - result["null"]["cpu_ms_per_copy"], 4
        )
    print(json.dumps(result))


if __name__ == "__main__":
    main()

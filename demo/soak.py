"""A trading week in ten minutes: 1,000 signals a minute to 50 followers, with faults (#18).

The chaos run (:mod:`.chaos`) proves exactly once under SIGKILL; the soak proves the copier can
*keep going*: the workers run as in production (fan-out, executor, tracker + store + web), the
followers sit on the Tradovate and ProjectX simulators in this process, and while the leader
trades at a steady pace :mod:`.soak_faults` drops connections, expires tokens, throttles,
rejects, slows acks, fills in parts and takes one simulator down for a minute.

The judge is the simulators' books and the output topics, read lightly (orjson, only the
fields it needs) so that judging 800 copies a second does not starve what it judges:

* **doubled**: a copy (signal, follower) with more than one order under its client id;
* **lost**: a copy the executor reported placed with no order in the books, or a copy with no
  outcome at all on ``trade.executions`` / ``order.errors`` after the settle time;
* **memory**: every worker's RSS after the first minute and at the end (and a series between);
* **latency**: internal (leader seen → follower order sent) percentiles over the whole run.

A copy refused or rejected during an outage is not lost: it was reported, which is the point.
"""

from __future__ import annotations

import asyncio
import functools
import os
import random
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from ..agents.fanout.planner import FanoutPlanner
from ..brokers.instruments import instrument_for
from ..common.stats import latency_summary
from ..core import ids
from ..core.records import TradeSignal
from ..core.settings import Settings
from .chaos import SYMBOL, ChaosOptions, ChaosRun
from .configgen import LEADER
from .costs import kafka_broker_pid, sample
from .soak_faults import FaultLog, FaultPlan, FaultTarget, run_faults

SOAK_ROLES = {"front": "fanout", "back": "execute", "tracker": "track,store,web"}
#: No platform lets one login send 1,000 orders a minute (Tradovate's and ProjectX's documented
#: per-user budgets are a fraction of it), so at the soak's pace the budgets are raised on both
#: sides, as the chaos run does: what the soak measures is endurance under faults. The budgets
#: have their own tests (CT-RATE-*, the ProjectX login tests), and the rate-limit *fault* (a
#: penalty answer) still fires here.
SOAK_PACE: dict[str, dict[str, Any]] = {
    "projectx": {"rate_limit": [1_000_000, 60]},
    "tradovate": {"rate_limits": [[1_000_000, 60]]},
}
MEMORY_EVERY_S = 30.0
MAX_RESTING = 8  # the leader's working limit orders at any time: a real day's book stays small


@dataclass(slots=True)
class SoakOptions:
    followers: int = 50
    signals_per_minute: int = 1000
    minutes: float = 10.0
    seed: int = 23
    faults: bool = True
    fault_every_s: float = 5.0
    outage_s: float = 60.0
    settle_timeout_s: float = 180.0

    @property
    def signals(self) -> int:
        return max(1, round(self.signals_per_minute * self.minutes))


def soak_signals(seed: int) -> Iterator[TradeSignal]:
    """An endless, deterministic leader: market entries and exits around flat, a few resting
    limits that are modified and cancelled, a flatten every 500 signals."""
    rng = random.Random(seed)
    tick = instrument_for(SYMBOL).tick_size
    price = instrument_for(SYMBOL).reference_price
    position = 0
    resting: list[tuple[str, Decimal, int]] = []
    make = functools.partial(TradeSignal, leader_account=LEADER, platform="paper", symbol=SYMBOL)
    n = 0
    while True:
        n += 1
        roll = rng.random()
        if n % 500 == 0:
            position, resting = 0, []
            yield make(
                signal_id=ids.signal_id(LEADER, f"flat-{n}", "flatten", 1),
                side="sell",
                quantity=0,
                kind="flatten",
                leader_order_id=f"flat-{n}",
            )
        elif resting and (roll < 0.08 or len(resting) >= MAX_RESTING):
            oid, _, _ = resting.pop(0)
            yield make(
                signal_id=ids.signal_id(LEADER, oid, "cancel", 1),
                side="buy",
                quantity=1,
                kind="cancel",
                leader_order_id=oid,
            )
        elif resting and roll < 0.16:
            oid, level, version = resting.pop(rng.randrange(len(resting)))
            level -= tick * 2
            resting.append((oid, level, version + 1))
            yield make(
                signal_id=ids.signal_id(LEADER, oid, "modify", version + 1),
                side="buy",
                quantity=1,
                kind="modify",
                order_type="limit",
                limit_price=level,
                leader_order_id=oid,
            )
        elif roll < 0.28:
            oid = f"L{n}"
            level = price - tick * rng.randint(800, 1000)  # far: rests until cancelled
            resting.append((oid, level, 0))
            yield make(
                signal_id=ids.signal_id(LEADER, oid, "new"),
                side="buy",
                quantity=1,
                order_type="limit",
                limit_price=level,
                leader_order_id=oid,
            )
        else:
            side = "sell" if position >= 3 else "buy" if position <= -3 else rng.choice(("buy", "sell"))
            position += 1 if side == "buy" else -1
            yield make(signal_id=ids.signal_id(LEADER, f"M{n}", "new"), side=side, quantity=1, leader_order_id=f"M{n}")


@dataclass(slots=True)
class Judge:
    """What the soak knows about every copy, kept small: one entry per (signal, follower)."""

    expected: dict[tuple[str, str], tuple[str, str]] = field(default_factory=dict)  # pair → (action, client id)
    outcomes: dict[tuple[str, str], str] = field(default_factory=dict)  # pair → first outcome kind
    refused: set[tuple[str, str]] = field(default_factory=set)
    error_codes: Counter[str] = field(default_factory=Counter)
    created: Counter[tuple[str, str]] = field(default_factory=Counter)  # (kernel account, client id)
    internal_ms: list[float] = field(default_factory=list)
    unreadable: int = 0  # records the judge could not read (counted, not fatal)

    def take(self, topic: str, value: bytes) -> None:
        """:meth:`record`, for a record anyone could have written: one the judge cannot read
        (not JSON, a list where an object belongs, a stamp that is text) is counted and the
        judge reads on; the copies it would have told about show as without outcome."""
        try:
            self.record(topic, value)
        except Exception:  # noqa: BLE001 - whatever a hostile record raises in the light read
            self.unreadable += 1

    records: Counter[str] = field(default_factory=Counter)  # per topic read
    errors: int = 0  # on ``order.errors``, bare or in batches

    def record(self, topic: str, value: bytes) -> None:
        self.records[topic] += 1
        data = orjson.loads(value)
        if topic == "trade.executions":
            for execution in data.get("executions", [data]):  # a batch, or one bare execution
                self._outcome(execution)
        elif topic == "order.errors":
            for error in data.get("errors", [data]):  # a batch, or one bare error
                self.errors += 1
                self.error_codes[str(error.get("code"))] += 1
                if error.get("stage") == "fanout" and error.get("signal_id"):
                    self.refused.add((error["signal_id"], error["account_id"]))

    def _outcome(self, data: dict[str, Any]) -> None:
        if not data.get("request_outcome") or not data.get("signal_id"):
            return
        pair = (data["signal_id"], data["account_id"])
        kind = str(data.get("kind"))
        first = self.outcomes.get(pair)
        if first is None or (first == "reject" and kind != "reject"):  # a late lookup's ack wins
            self.outcomes[pair] = kind
        stamps = data.get("stamps") or {}
        if first is None and kind != "reject" and "sent" in stamps and "detected" in stamps:
            self.internal_ms.append((stamps["sent"] - stamps["detected"]) * 1000)

    def by_action(self) -> dict[str, int]:
        """``action:outcome`` counts (``place:ack``, ``cancel:none``...): which copies cost a
        broker call, which were netted or refused, which are still waiting."""
        counts: Counter[str] = Counter()
        for pair, (action, _) in self.expected.items():
            outcome = self.outcomes.get(pair) or ("refused" if pair in self.refused else "none")
            counts[f"{action}:{outcome}"] += 1
        return dict(sorted(counts.items()))

    def missing(self) -> list[tuple[str, str]]:
        return [p for p in self.expected if p not in self.outcomes and p not in self.refused]


class SoakRun(ChaosRun):
    """``async with SoakRun(options, settings) as run: report = await run.play()``."""

    roles = SOAK_ROLES
    pace = SOAK_PACE

    def __init__(self, options: SoakOptions, settings: Settings) -> None:
        super().__init__(
            ChaosOptions(
                signals=options.signals,
                followers=options.followers,
                min_kills=0,
                lose_response_rate=0.0,
                seed=options.seed,
                settle_timeout_s=options.settle_timeout_s,
            ),
            settings,
        )
        self.run_id = self.run_id.replace("chaos", "soak")
        self.prefix = f"{self.run_id}."
        self.run_dir = settings.data_dir / "runs" / self.run_id
        self.soak = options
        self.judge = Judge()
        self.faults = FaultLog()
        self.memory: list[dict[str, Any]] = []
        self.cpu_ms: list[dict[str, float]] = []  # per memory row: each process's CPU so far

    async def _start(self) -> None:
        await super()._start()
        for simulator in self.simulators.values():
            self._count_orders(simulator.exchange)

    def _count_orders(self, exchange: Any) -> None:
        """Every order the books create under a client id, counted as it is created (the books
        themselves keep only a bounded history, as a real broker's day does)."""
        submit = exchange.submit

        def counting(account_name: str, **kw: Any) -> Any:
            order, deduped = submit(account_name, **kw)
            client_id = kw.get("client_order_id")
            if client_id and not deduped:
                self.judge.created[(account_name, client_id)] += 1
            return order, deduped

        exchange.submit = counting

    # -- the run ------------------------------------------------------------------------------
    async def play(self) -> dict[str, Any]:
        started = time.monotonic()
        publish_s = self.soak.minutes * 60
        self._sample_memory(started, "start")  # the CPU counters the run's figures start from
        reading = asyncio.ensure_future(self._read_outcomes())
        memory = asyncio.ensure_future(self._watch_memory(started))
        publishing = asyncio.ensure_future(self._publish_paced())
        if self.soak.faults:
            plan = FaultPlan(every_s=self.soak.fault_every_s, outage_s=self.soak.outage_s, seed=self.soak.seed)
            await run_faults(self._fault_targets(), plan, publishing, self._outage, publish_s, self.faults)
        await publishing
        published_s = time.monotonic() - started
        settled = await self._settle_outcomes(self.soak.settle_timeout_s)
        self._sample_memory(started, "end")
        memory.cancel()
        reading.cancel()
        await asyncio.gather(memory, reading, return_exceptions=True)
        return self.report(settled, published_s, time.monotonic() - started)

    async def _publish_paced(self) -> None:
        planner = FanoutPlanner(self.config)
        producer = AIOKafkaProducer(bootstrap_servers=self.settings.bootstrap_servers, linger_ms=0)
        await producer.start()
        interval = 60.0 / self.soak.signals_per_minute
        begin = time.monotonic()
        try:
            for n, signal in enumerate(soak_signals(self.soak.seed)):
                if n >= self.soak.signals:
                    break
                intents, _ = planner.plan(signal)
                for intent in intents:
                    self.judge.expected[(signal.signal_id, intent.account_id)] = (intent.action, intent.client_order_id)
                signal.stamps = {"detected": time.time()}
                await producer.send(self.prefix + "trade.signals", signal.dumps(), key=SYMBOL.encode())
                delay = begin + (n + 1) * interval - time.monotonic()  # a steady pace, no drift
                if delay > 0:
                    await asyncio.sleep(delay)
            await producer.flush()
        finally:
            await producer.stop()

    async def _read_outcomes(self) -> None:
        consumer = AIOKafkaConsumer(
            self.prefix + "trade.executions",
            self.prefix + "order.errors",
            bootstrap_servers=self.settings.bootstrap_servers,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            group_id=None,
            fetch_max_wait_ms=200,
        )
        await consumer.start()
        try:
            while True:
                batches = await consumer.getmany(timeout_ms=500, max_records=5000)
                for tp, messages in batches.items():
                    topic = tp.topic[len(self.prefix) :]
                    for message in messages:
                        self.judge.take(topic, message.value)
        finally:
            await consumer.stop()

    def _fault_targets(self) -> list[FaultTarget]:
        targets = []
        for account_id in self.config.follower_accounts():
            exchange, name = self._kernel(account_id)
            targets.append(FaultTarget(exchange.account(name).faults, functools.partial(exchange.faults_changed, name)))
        return targets

    async def _outage(self, seconds: float) -> dict[str, Any]:
        """The ProjectX simulator down for ``seconds``, then back on the same port."""
        simulator = self.simulators["projectx"]
        began = time.monotonic()
        await simulator.stop()
        await asyncio.sleep(seconds)
        await simulator.start()
        return {"platform": "projectx", "down_s": round(time.monotonic() - began, 1)}

    async def _watch_memory(self, started: float) -> None:
        while True:
            await asyncio.sleep(MEMORY_EVERY_S)
            self._sample_memory(started, "series")

    def _sample_memory(self, started: float, label: str) -> None:
        pids = {name: w.process.pid for name, w in self.workers.items()}
        broker = kafka_broker_pid(self.settings.bootstrap_servers)
        if broker is not None:
            pids["kafka"] = broker
        pids["judge+simulators"] = os.getpid()
        row: dict[str, Any] = {"t_s": round(time.monotonic() - started), "label": label}
        cpu: dict[str, float] = {}
        for name, pid in pids.items():
            taken = sample(pid)
            row[name] = None if taken is None else round(taken.rss_mib, 1)
            if taken is not None:
                cpu[name] = taken.cpu_ms
        self.memory.append(row)
        self.cpu_ms.append(cpu)

    async def _settle_outcomes(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for worker in self.workers.values():
                if worker.process.poll() is not None:
                    raise RuntimeError(f"worker {worker.name} died; see {worker.log}")
            if not self.judge.missing():
                return True
            await asyncio.sleep(1.0)
        return False

    def report(self, settled: bool, published_s: float, elapsed_s: float) -> dict[str, Any]:
        judge = self.judge
        doubled = lost = 0
        for pair, (action, client_id) in judge.expected.items():
            if action not in ("place", "flatten"):
                continue  # modifies and cancels create no order
            _, name = self._kernel(pair[1])
            created = judge.created.get((name, client_id), 0)
            if created > 1:  # one symbol: a flatten closes with at most one order too
                doubled += 1
            if action == "place" and judge.outcomes.get(pair) == "ack" and created == 0:
                lost += 1
        rss = self._rss_growth()
        without = len(judge.missing())
        copies = len(judge.expected)
        return {
            "followers": self.soak.followers,
            "signals": self.soak.signals,
            "signals_per_minute": self.soak.signals_per_minute,
            "copies_expected": len(judge.expected),
            "copies_placed": sum(1 for k in judge.outcomes.values() if k != "reject"),
            "copies_reported_not_placed": sum(1 for k in judge.outcomes.values() if k == "reject") + len(judge.refused),
            "copies_without_outcome": without,
            # Copies with an outcome per second of the whole run (publishing and settling).
            "outcomes_per_s": round((copies - without) / max(elapsed_s, 1e-9), 1),
            "records_per_copy": {t: round(n / max(copies, 1), 4) for t, n in sorted(judge.records.items())},
            "errors_per_record": round(judge.errors / max(judge.records["order.errors"], 1), 2),
            "doubled": doubled,
            "lost": lost,
            "settled": settled,
            "published_s": round(published_s, 1),
            "elapsed_s": round(elapsed_s, 1),
            "internal_ms": latency_summary(judge.internal_ms),
            "faults": dict(self.faults.counts),
            "outages": self.faults.outages,
            "error_codes": dict(judge.error_codes.most_common(12)),
            "unreadable_records": judge.unreadable,
            "outcomes_by_action": judge.by_action(),
            "rss_mib": rss,
            "cpu_ms_per_outcome": self._cpu_per_outcome(copies - without),
            "memory_series": self.memory,
        }

    def _cpu_per_outcome(self, outcomes: int) -> dict[str, float]:
        """Per process: CPU milliseconds from the run's start to its end per copy that got an
        outcome (the operating system's accounting; the Kafka broker's too)."""
        if len(self.cpu_ms) < 2 or not outcomes:
            return {}
        first, last = self.cpu_ms[0], self.cpu_ms[-1]
        return {n: round((last[n] - first[n]) / outcomes, 3) for n in last if n in first}

    def _rss_growth(self) -> dict[str, dict[str, float | None]]:
        """Per process: RSS after the first minute (or the first sample) and at the end."""
        if not self.memory:
            return {}
        baseline = next((r for r in self.memory if r["t_s"] >= 60), self.memory[0])
        end = self.memory[-1]
        names = [k for k in end if k not in ("t_s", "label")]
        return {n: {"after_1_min": baseline.get(n), "end": end.get(n)} for n in names}


async def run_soak(options: SoakOptions, settings: Settings | None = None) -> dict[str, Any]:
    async with SoakRun(options, settings or Settings.from_env()) as run:
        return await run.play()


__all__ = ["Judge", "SoakOptions", "SoakRun", "run_soak", "soak_signals"]

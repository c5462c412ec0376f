"""Failover the way the Helm chart deploys it (issue #18, item 2), counted at the simulators' books.

Two fan-out and two executor workers run as processes in their consumer groups (replicas of one
role share an app id, as the chart's replicas do), on a Kafka broker of this run's own: the
scenarios stop it, and the shared broker of the machine must never be touched. Followers sit on
the Tradovate and ProjectX simulators in this process (as in :mod:`.chaos`), which also plays
the leader: market orders on three symbols, one per ``trade.signals`` partition.

``workers``: one fan-out and one executor are SIGKILLed at the same moment mid-run; the
survivors take over their partitions. The recovery time of each is kill → the ack of the first
copy the survivor handled for a partition the killed one held (for the fan-out: a copy planned
after the kill, of a signal on such a partition).

``broker``: the broker is stopped mid-run and started again after ``outage_s``; the leader waits
while it is gone (its own producer has nowhere to write). Measured: broker back → the ack of the
next copy, and the worker log lines written during the outage (the noise item 2 is about).

Either way the books are the judge: every (signal, follower) has exactly one order under its
client id, and every follower holds the leader's position scaled by its rule.
"""

from __future__ import annotations

import asyncio
import os
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.coordinator.protocol import ConsumerProtocolMemberAssignment

from ..app.kafka_local import LocalKafka, private_kafka
from ..core import ids
from ..core.config import parse_config
from ..core.records import Execution, TradeSignal
from ..core.settings import Settings
from ..core.topics import SPEC, ensure_topics, partition_for
from .chaos import PACE_OPTIONS, PLATFORMS, ChaosOptions, ChaosRun, CountingFaults, chaos_config, expectation
from .configgen import LEADER
from .observer import RunObserver
from .runner import start_worker
from .sandbox import start_sandbox

# One symbol per trade.signals partition (murmur2 of the key, 3 partitions): 1, 0, 2.
SYMBOLS = ("ESZ6", "NQZ6", "MESZ6")
# worker name -> (roles, consumer group); two replicas per role, as the Helm chart runs them.
REPLICAS = {
    "front-a": ("fanout", "front"),
    "front-b": ("fanout", "front"),
    "back-a": ("execute", "back"),
    "back-b": ("execute", "back"),
}
VICTIMS = ("front-a", "back-a")
SCENARIOS = ("workers", "broker")


@dataclass(slots=True)
class FailoverOptions:
    scenario: str = "workers"
    signals: int = 60
    followers: int = 10
    interval_s: float = 0.3
    disrupt_after: int = 20  # signals published before the kill / the broker stop
    outage_s: float = 15.0
    after_return_s: float = 15.0  # the log lines of this long after the broker's return count too
    seed: int = 7
    settle_timeout_s: float = 120.0


def failover_script(count: int, seed: int) -> list[TradeSignal]:
    """Market orders rotating over :data:`SYMBOLS`, random side and size: every partition works."""
    rng = random.Random(seed)
    signals = []
    for n in range(1, count + 1):
        oid = f"F{n}"
        signals.append(
            TradeSignal(
                signal_id=ids.signal_id(LEADER, oid, "new"),
                leader_account=LEADER,
                platform="paper",
                symbol=SYMBOLS[n % len(SYMBOLS)],
                side="buy" if rng.random() < 0.5 else "sell",
                quantity=rng.randint(1, 3),
                leader_order_id=oid,
            )
        )
    return signals


def log_lines(path: Path) -> int:
    try:
        with open(path, "rb") as log:
            return sum(1 for _ in log)
    except OSError:
        return 0


@dataclass(slots=True)
class Disruption:
    """What happened when: wall-clock times (the workers' stamps are wall clock too)."""

    at: float = 0.0  # the kill, or the broker's stop
    back: float = 0.0  # the broker answering again (broker scenario)
    stop_s: float = 0.0  # how long the broker took to stop
    killed: dict[str, set[int]] = field(default_factory=dict)  # topic -> partitions the victim held
    lines_before: dict[str, int] = field(default_factory=dict)
    lines_at_return: dict[str, int] = field(default_factory=dict)
    lines_after: dict[str, int] = field(default_factory=dict)


class FailoverRun(ChaosRun):
    """``async with FailoverRun(options, workdir) as run: result = await run.play()``."""

    def __init__(self, options: FailoverOptions, workdir: Path) -> None:
        self.kafka: LocalKafka = private_kafka(workdir / "kafka")
        settings = Settings(kafka_broker=f"kafka://{self.kafka.bootstrap}", data_dir=workdir.resolve())
        chaos = ChaosOptions(
            signals=options.signals,
            followers=options.followers,
            min_kills=0,
            interval_s=options.interval_s,
            lose_response_rate=0.0,
            seed=options.seed,
            settle_timeout_s=options.settle_timeout_s,
        )
        super().__init__(chaos, settings)
        self.failover = options
        self.run_id = f"failover-{options.scenario}-{int(time.time() * 1000) % 10**10}"
        self.prefix = f"{self.run_id}."
        self.run_dir = settings.data_dir / "runs" / self.run_id
        self.kills = {"front": 0, "back": 0}
        self.broker_up = asyncio.Event()
        self.published: dict[str, float] = {}  # signal id -> when published (wall clock)
        self.disruption = Disruption()
        self.start_s = 0.0  # how long the broker took to start and answer

    async def _start(self) -> None:
        began = time.monotonic()
        await asyncio.to_thread(self.kafka.start)
        self.start_s = time.monotonic() - began
        self.broker_up.set()
        self.run_dir.mkdir(parents=True, exist_ok=True)
        endpoints = {}
        for platform in PLATFORMS:
            simulator, session = await start_sandbox(platform, "0", self.config_data, **PACE_OPTIONS.get(platform, {}))
            self.simulators[platform] = simulator
            endpoints[platform] = session
        self.config_data = chaos_config(self.options.followers, endpoints)
        self.config = parse_config(self.config_data, env=dict(os.environ))
        for account in self.config.follower_accounts():
            self._kernel_account(account).faults = CountingFaults()  # no faults: tally counts lost answers
        config_file = self.run_dir / "config.yaml"
        config_file.write_text(yaml.safe_dump(self.config_data, sort_keys=False))
        await ensure_topics(self.settings.bootstrap_servers, self.prefix)
        self.env = {
            "COPYTRADER_CONFIG": str(config_file),
            "COPYTRADER_TOPIC_PREFIX": self.prefix,
            "COPYTRADER_DATA_DIR": str(self.settings.data_dir),
            "COPYTRADER_KAFKA_BROKER": self.settings.kafka_broker,
        }
        for name, (roles, group) in REPLICAS.items():
            self.workers[name] = start_worker(name, roles, self.run_dir, self.env, group=group)
        self.observer = RunObserver(self.settings.bootstrap_servers, self.prefix, self.config)
        await self.observer.start()
        await self._wait_ready(180.0)
        await self._wait_balanced(60.0)

    async def __aexit__(self, *exc: object) -> None:
        try:
            await super().__aexit__(*exc)
        finally:
            await asyncio.to_thread(self.kafka.stop)

    def group_of(self, role_group: str) -> str:
        app_id = f"{self.prefix.rstrip('.')}-{role_group}"
        return app_id if role_group == "front" else f"{app_id}.executor"

    async def assignments(self, group: str, topic: str) -> dict[str, set[int]]:
        """member id -> partitions of ``topic`` it holds, as the group coordinator says."""
        admin = AIOKafkaAdminClient(bootstrap_servers=self.settings.bootstrap_servers)
        await admin.start()
        try:
            described = await admin.describe_consumer_groups([group])
        finally:
            await admin.close()
        held: dict[str, set[int]] = {}
        for response in described:
            for described_group in response.groups:
                for member in described_group[5]:  # (error, id, state, protocol type, protocol, members, ...)
                    member_id, assignment = member[0], member[-1]
                    if not assignment:
                        held[member_id] = set()
                        continue
                    decoded = ConsumerProtocolMemberAssignment.decode(assignment)
                    held[member_id] = {tp.partition for tp in decoded.partitions() if tp.topic == topic}
        return held

    async def _wait_balanced(self, timeout: float) -> None:
        """Until each group has two members and each member holds partitions of its topic."""
        deadline = time.monotonic() + timeout
        wanted = {"front": self.prefix + "trade.signals", "back": self.prefix + "orders.requests"}
        while time.monotonic() < deadline:
            held = [await self.assignments(self.group_of(g), t) for g, t in wanted.items()]
            if all(len(h) == 2 and all(h.values()) for h in held):
                return
            await asyncio.sleep(0.5)
        raise TimeoutError(f"the replicas did not share their partitions within {timeout:.0f}s")

    # -- the run ------------------------------------------------------------------------------
    async def play(self) -> dict[str, Any]:
        started = time.monotonic()
        signals = failover_script(self.failover.signals, self.failover.seed)
        reached = asyncio.Event()
        publishing = asyncio.ensure_future(self._publish_signals(signals, reached))
        await reached.wait()
        if self.failover.scenario == "workers":
            await self._kill_victims()
        else:
            await self._broker_outage()
        await publishing
        settled = await self._settle_on(signals, self.options.settle_timeout_s)
        if self.failover.scenario == "broker":
            await self._count_lines_after_return()
        result = self.tally(signals, settled, time.monotonic() - started)
        result.pop("kills" if self.failover.scenario == "broker" else "", None)
        return {"scenario": self.failover.scenario, **result, **self.recovery(signals)}

    async def _publish_signals(self, signals: list[TradeSignal], reached: asyncio.Event) -> None:
        producer = AIOKafkaProducer(bootstrap_servers=self.settings.bootstrap_servers, linger_ms=0)
        await producer.start()
        try:
            for n, signal in enumerate(signals, 1):
                await self.broker_up.wait()
                signal.stamps = {"detected": time.time()}
                self.published[signal.signal_id] = signal.stamps["detected"]
                await producer.send_and_wait(self.prefix + "trade.signals", signal.dumps(), key=signal.symbol.encode())
                if n == self.failover.disrupt_after:
                    reached.set()
                    await asyncio.sleep(0)  # let the disruption start before the next signal
                await asyncio.sleep(self.options.interval_s)
        finally:
            reached.set()
            await producer.stop()

    async def _kill_victims(self) -> None:
        """SIGKILL one fan-out and one executor together, noting which partitions they held."""
        topics = {"front": self.prefix + "trade.signals", "back": self.prefix + "orders.requests"}
        before = {g: await self.assignments(self.group_of(g), t) for g, t in topics.items()}
        self.disruption.at = time.time()
        for name in VICTIMS:
            self.workers[name].process.kill()
        for name in VICTIMS:
            await asyncio.to_thread(self.workers[name].process.wait)
            self.kills[name.split("-")[0]] += 1
        self.workers = {n: w for n, w in self.workers.items() if n not in VICTIMS}
        # The victim's partitions: all of the topic but what the survivor held before the kill.
        for group, topic in topics.items():
            after = await self._until_one_member(self.group_of(group), topic)
            survivor = next(iter(after))
            everything = set(range(SPEC[topic[len(self.prefix) :]].partitions))
            self.disruption.killed[topic[len(self.prefix) :]] = everything - before[group].get(survivor, set())

    async def _until_one_member(self, group: str, topic: str, timeout: float = 60.0) -> dict[str, set[int]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            held = await self.assignments(group, topic)
            if len(held) == 1:
                return held
            await asyncio.sleep(0.5)
        raise TimeoutError(f"group {group} still has the killed member after {timeout:.0f}s")

    async def _broker_outage(self) -> None:
        """Stop the broker, and start it again so that it answers ``outage_s`` after the stop
        began (its start takes as long as the first one did, the JVM and the log recovery)."""
        kafka = self.kafka
        logs = {name: worker.log for name, worker in self.workers.items()}
        self.broker_up.clear()
        self.disruption.lines_before = {n: log_lines(p) for n, p in logs.items()}
        self.disruption.at = time.time()
        await asyncio.to_thread(kafka.stop)
        self.disruption.stop_s = time.time() - self.disruption.at
        restart_at = self.disruption.at + self.failover.outage_s - self.start_s
        await asyncio.sleep(max(0.0, restart_at - time.time()))
        await asyncio.to_thread(kafka.start)
        self.disruption.back = time.time()
        self.disruption.lines_at_return = {n: log_lines(p) for n, p in logs.items()}
        self.broker_up.set()

    async def _count_lines_after_return(self) -> None:
        await asyncio.sleep(max(0.0, self.disruption.back + self.failover.after_return_s - time.time()))
        self.disruption.lines_after = {n: log_lines(w.log) for n, w in self.workers.items()}

    async def _settle_on(self, signals: list[TradeSignal], timeout: float) -> bool:
        assert self.observer is not None
        want = expectation(signals, self.config)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for worker in self.workers.values():
                if worker.process.poll() is not None:
                    raise RuntimeError(f"worker {worker.name} died; see {worker.log}")
            if (
                not self.observer.missing()
                and len(self.observer.seen.signals) >= len(signals)
                and not self._wrong_positions(want)
            ):
                return True
            await asyncio.sleep(0.5)
        return False

    # -- the figures ----------------------------------------------------------------------------
    def _outcomes(self) -> list[Execution]:
        assert self.observer is not None
        return [e for outcomes in self.observer.seen.outcomes.values() for e in outcomes if e.kind != "reject"]

    def recovery(self, signals: list[TradeSignal]) -> dict[str, Any]:
        symbol_of = {s.signal_id: s.symbol for s in signals}
        at = self.disruption.at
        outcomes = [e for e in self._outcomes() if "acked" in e.stamps]
        if self.failover.scenario == "workers":
            killed_signals = self.disruption.killed.get("trade.signals", set())
            killed_intents = self.disruption.killed.get("orders.requests", set())
            fanout = [
                e.stamps["acked"]
                for e in outcomes
                if e.stamps.get("fanned_out", 0.0) > at
                and partition_for(symbol_of.get(e.signal_id or "", ""), 3) in killed_signals
            ]
            executor = [
                e.stamps["acked"]
                for e in outcomes
                if e.stamps["acked"] > at
                and partition_for(e.account_id, SPEC["orders.requests"].partitions) in killed_intents
            ]
            return {
                "killed": list(VICTIMS),
                "killed_partitions": {t: sorted(p) for t, p in self.disruption.killed.items()},
                "fanout_recovery_s": _after(fanout, at),
                "executor_recovery_s": _after(executor, at),
            }
        back = self.disruption.back
        outage = back - at
        per_worker = {
            n: self.disruption.lines_at_return.get(n, 0) - self.disruption.lines_before.get(n, 0)
            for n in self.disruption.lines_before
        }
        after = {
            n: self.disruption.lines_after.get(n, 0) - self.disruption.lines_at_return.get(n, 0)
            for n in self.disruption.lines_at_return
        }
        return {
            "outage_s": round(outage, 1),
            "broker_stop_s": round(self.disruption.stop_s, 1),
            "broker_start_s": round(self.start_s, 1),
            "next_copy_after_return_s": _after([e.stamps["acked"] for e in outcomes if e.stamps["acked"] > back], back),
            "log_lines_during_outage": per_worker,
            "log_lines_per_s_per_worker_max": round(max(per_worker.values(), default=0) / outage, 1)
            if outage
            else None,
            "log_lines_after_return": after,
            "after_return_s": self.failover.after_return_s,
        }


def _after(times: list[float], since: float) -> float | None:
    return round(min(times) - since, 2) if times else None


async def run_failover(options: FailoverOptions, workdir: Path) -> dict[str, Any]:
    async with FailoverRun(options, workdir) as run:
        return await run.play()


__all__ = ["FailoverOptions", "FailoverRun", "SCENARIOS", "failover_script", "run_failover"]

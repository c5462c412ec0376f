"""Exactly once under SIGKILL, counted in the brokers' own books (issue #11, item 5).

Followers sit on the Tradovate and ProjectX simulators, which run in this process so they
outlive every kill, with their kernel's client-id dedupe off (a repeated id is a new order, as
on the real platforms) and a share of order answers lost after the order was carried out. The
fan-out worker and the executor run as subprocesses on real Kafka. This process plays the
leader: it publishes the signals on ``trade.signals`` (market entries and exits, far resting
limits that are modified and cancelled, one flatten) while it SIGKILLs and restarts the two
workers at random moments. At the end the simulators' books are the judge: every (signal,
follower) that creates an order has exactly one order under its client id, and every follower
holds the leader's position scaled by its own rule.
"""

from __future__ import annotations

import asyncio
import functools
import os
import random
import time
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import yaml
from aiokafka import AIOKafkaProducer

from ..agents.execution.netting import COPY_STALE_NETTED, NET_SIGNAL_PREFIX
from ..agents.fanout.planner import FanoutPlanner
from ..brokers.instruments import instrument_for
from ..brokers.simkernel.exchange import SimExchange
from ..brokers.simkernel.faults import FaultSwitches
from ..core import ids
from ..core.config import CopyConfig, parse_config
from ..core.records import TradeSignal
from ..core.settings import Settings
from ..core.topics import delete_run_topics, ensure_topics
from .configgen import LEADER, follower_rule, follower_session, session_fields, shared_login
from .observer import RunObserver
from .runner import Worker, start_worker
from .sandbox import start_sandbox

SYMBOL = "ESZ6"
PLATFORMS = ("tradovate", "projectx")
ROLES = {"front": "fanout", "back": "execute"}
# The chaos compresses a trading week's crashes into two minutes, with a leader trading about
# three times a second: more than ProjectX's documented 200 requests a minute per user allows
# once each restart's lookups are added. Rate limits have their own tests (CT-RATE-*, the
# ProjectX login tests); here, on both sides, the ProjectX budget is raised so that what is
# measured is exactly-once under kills and lost answers. Every follower still has its own login.
PACE_OPTIONS: dict[str, dict[str, Any]] = {"projectx": {"rate_limit": [100_000, 60]}}


@dataclass(slots=True)
class CountingFaults(FaultSwitches):
    """The kernel's fault switches, counting the answers they lost."""

    lost: int = 0

    def take_lose_response(self) -> bool:
        taken = FaultSwitches.take_lose_response(self)
        self.lost += int(taken)
        return taken


@dataclass(slots=True)
class ChaosOptions:
    signals: int = 100
    followers: int = 20
    min_kills: int = 6
    interval_s: float = 0.35
    lose_response_rate: float = 0.05
    seed: int = 5
    settle_timeout_s: float = 120.0
    quiet: bool = True
    # The copy group's stale_copy_s: None keeps the default (5 s), so copies a kill delayed
    # are netted; a long limit places every copy, to judge one order per copy under kills.
    stale_copy_s: float | None = None


@dataclass(slots=True)
class LeaderScript:
    """The signals to publish, in order, and the leader's resting orders as it goes."""

    signals: list[TradeSignal] = field(default_factory=list)


def chaos_config(
    followers: int,
    endpoints: dict[str, dict[str, Any]] | None = None,
    pace: dict[str, dict[str, Any]] | None = None,
    stale_copy_s: float | None = None,
) -> dict[str, Any]:
    """Followers alternate between the Tradovate and ProjectX simulators, each follower firm
    with its own login (and so its own sessions and request budget), as real prop accounts
    come; the leader is only a name here (this process publishes its signals)."""
    sessions: dict[str, dict[str, Any]] = {
        "leader-paper": {"id": "leader-paper", "platform": "paper", "options": {"venue": "leader"}},
    }
    accounts: list[dict[str, Any]] = [
        {"id": LEADER, "session": "leader-paper", "broker_account": "LEAD-1", "size": 50000}
    ]
    members = []
    counts = dict.fromkeys(PLATFORMS, 0)
    for i in range(1, followers + 1):
        platform = PLATFORMS[i % 2]
        counts[platform] += 1
        session_id = follower_session(platform, counts[platform], 1, shared_login(endpoints, platform))
        if session_id not in sessions:
            fields = session_fields(endpoints, platform, session_id)
            options = {**fields.pop("options", {}), **(PACE_OPTIONS if pace is None else pace).get(platform, {})}
            session: dict[str, Any] = {"id": session_id, "platform": platform, "options": options}
            session.update(fields)
            sessions[session_id] = session
        account_id = f"f{i:03d}"
        accounts.append(
            {
                "id": account_id,
                "session": session_id,
                "broker_account": f"FOL-{i:03d}",
                "size": 100000 if i % 2 else 50000,
            }
        )
        members.append({"account": account_id, "rule": follower_rule(i)})
    group: dict[str, Any] = {"id": "chaos", "leader": LEADER, "followers": members}
    if stale_copy_s is not None:
        group["stale_copy_s"] = stale_copy_s
    return {"sessions": list(sessions.values()), "accounts": accounts, "copy_groups": [group]}


def leader_script(count: int, seed: int) -> list[TradeSignal]:
    """A deterministic mix: market orders, far limits (modified, cancelled), one flatten midway."""
    rng = random.Random(seed)
    tick = instrument_for(SYMBOL).tick_size
    price = instrument_for(SYMBOL).reference_price
    resting: list[tuple[str, Decimal, int]] = []  # (leader order id, price, modify version)
    signals: list[TradeSignal] = []
    leader_signal = functools.partial(TradeSignal, leader_account=LEADER, platform="paper", symbol=SYMBOL)
    for n in range(1, count + 1):
        roll = rng.random()
        if n == count // 2:
            resting.clear()  # a flatten cancels the leader's working orders too
            signals.append(
                leader_signal(
                    signal_id=ids.signal_id(LEADER, f"flat-{n}", "flatten", 1),
                    side="sell",
                    quantity=0,
                    kind="flatten",
                    leader_order_id=f"flat-{n}",
                )
            )
        elif resting and roll < 0.15:
            oid, level, version = resting.pop(rng.randrange(len(resting)))
            level -= tick * 4
            resting.append((oid, level, version + 1))
            signals.append(
                leader_signal(
                    signal_id=ids.signal_id(LEADER, oid, "modify", version + 1),
                    side="buy",
                    quantity=rng.randint(1, 3),
                    kind="modify",
                    order_type="limit",
                    limit_price=level,
                    leader_order_id=oid,
                )
            )
        elif resting and roll < 0.27:
            oid, _, _ = resting.pop(rng.randrange(len(resting)))
            signals.append(
                leader_signal(
                    signal_id=ids.signal_id(LEADER, oid, "cancel", 1),
                    side="buy",
                    quantity=1,
                    kind="cancel",
                    leader_order_id=oid,
                )
            )
        elif roll < 0.45:
            oid = f"L{n}"
            level = price - tick * rng.randint(1000, 1200)  # far below: rests for the whole run
            resting.append((oid, level, 0))
            signals.append(
                leader_signal(
                    signal_id=ids.signal_id(LEADER, oid, "new"),
                    side="buy",
                    quantity=rng.randint(1, 3),
                    order_type="limit",
                    limit_price=level,
                    leader_order_id=oid,
                )
            )
        else:
            oid = f"M{n}"
            signals.append(
                leader_signal(
                    signal_id=ids.signal_id(LEADER, oid, "new"),
                    side="buy" if rng.random() < 0.5 else "sell",
                    quantity=rng.randint(1, 3),
                    leader_order_id=oid,
                )
            )
    return signals


@dataclass(slots=True)
class Expectation:
    """What the books must show, from the copy rules applied to the leader's signals."""

    orders: dict[tuple[str, str], int] = field(default_factory=dict)  # (account, client id) -> orders
    # (account, flatten client id) -> most closing orders: one per symbol held. Tradovate's
    # liquidateposition takes no clOrdId, so there it leaves none under the id; the
    # positions are what show a flatten happened once.
    flattens: dict[tuple[str, str], int] = field(default_factory=dict)
    positions: dict[tuple[str, str], int] = field(default_factory=dict)  # (account, symbol) -> net
    cancelled: set[tuple[str, str]] = field(default_factory=set)  # (account, client id of the target)


def expectation(signals: list[TradeSignal], config: CopyConfig) -> Expectation:
    planner = FanoutPlanner(config)
    want = Expectation()
    for signal in signals:
        intents, _ = planner.plan(signal)
        for intent in intents:
            if intent.action == "place":
                want.orders[(intent.account_id, intent.client_order_id)] = 1
                if intent.order_type == "market":
                    key = (intent.account_id, intent.symbol)
                    want.positions[key] = want.positions.get(key, 0) + (
                        intent.quantity if intent.side == "buy" else -intent.quantity
                    )
            elif intent.action == "flatten":
                held = {k: v for k, v in want.positions.items() if k[0] == intent.account_id and v}
                want.flattens[(intent.account_id, intent.client_order_id)] = len(held)
                for key in held:
                    want.positions[key] = 0
                want.cancelled |= {k for k in want.orders if k[0] == intent.account_id}  # working ones
            elif intent.action == "cancel" and intent.target_client_order_id:
                want.cancelled.add((intent.account_id, intent.target_client_order_id))
    return want


class ChaosRun:
    """``async with ChaosRun(options, settings) as run: result = await run.play()``."""

    #: Worker name → roles; the soak adds the tracker.
    roles: dict[str, str] = ROLES
    #: Request budgets raised on both sides (simulator and adapter), per platform.
    pace: dict[str, dict[str, Any]] = PACE_OPTIONS

    def __init__(self, options: ChaosOptions, settings: Settings) -> None:
        self.options = options
        self.settings = settings
        self.rng = random.Random(options.seed)
        self.run_id = f"chaos-{int(time.time() * 1000) % 10**10}"
        self.prefix = f"{self.run_id}."
        self.run_dir = settings.data_dir / "runs" / self.run_id
        self.simulators: dict[str, Any] = {}
        self.config_data = chaos_config(options.followers, stale_copy_s=options.stale_copy_s)
        self.config = parse_config(self.config_data, env={})
        self.workers: dict[str, Worker] = {}
        self.env: dict[str, str] = {}
        self.kills: dict[str, int] = {"front": 0, "back": 0}
        self.observer: RunObserver | None = None

    async def __aenter__(self) -> ChaosRun:
        try:
            await self._start()
        except BaseException:
            await self.__aexit__(None, None, None)
            raise
        return self

    async def _start(self) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        endpoints = {}
        for platform in PLATFORMS:
            simulator, session = await start_sandbox(platform, "0", self.config_data, **self.pace.get(platform, {}))
            self.simulators[platform] = simulator
            endpoints[platform] = session
        self.config_data = chaos_config(self.options.followers, endpoints, self.pace, self.options.stale_copy_s)
        self.config = parse_config(self.config_data, env=dict(os.environ))
        for account in self.config.follower_accounts():
            faults = CountingFaults(
                lose_response_rate=self.options.lose_response_rate, rng=random.Random(f"{self.options.seed}:{account}")
            )
            self._kernel_account(account).faults = faults
        config_file = self.run_dir / "config.yaml"
        config_file.write_text(yaml.safe_dump(self.config_data, sort_keys=False))
        await ensure_topics(self.settings.bootstrap_servers, self.prefix)
        self.env = {
            "COPYTRADER_CONFIG": str(config_file),
            "COPYTRADER_TOPIC_PREFIX": self.prefix,
            "COPYTRADER_DATA_DIR": str(self.settings.data_dir),
            "COPYTRADER_KAFKA_BROKER": self.settings.kafka_broker,
        }
        for name, roles in self.roles.items():
            self.workers[name] = start_worker(name, roles, self.run_dir, self.env)
        self.observer = RunObserver(self.settings.bootstrap_servers, self.prefix, self.config)
        await self.observer.start()
        await self._wait_ready(120.0)

    async def __aexit__(self, *exc: object) -> None:
        if self.observer is not None:
            await self.observer.stop()
        await asyncio.gather(*(asyncio.to_thread(w.stop) for w in self.workers.values()))
        for simulator in self.simulators.values():
            await simulator.stop()
        await self._delete_topics()

    async def _delete_topics(self) -> None:
        try:
            await delete_run_topics(self.settings.bootstrap_servers, self.prefix)
        except Exception:  # noqa: BLE001 - cleanup is best effort; the run is judged already
            pass

    def _kernel(self, account_id: str) -> tuple[SimExchange, str]:
        account = self.config.accounts[account_id]
        return self.simulators[account.platform].exchange, str(
            self.config.sessions[account.session_id].accounts[account_id]
        )

    def _kernel_account(self, account_id: str) -> Any:
        exchange, name = self._kernel(account_id)
        return exchange.account(name)

    async def _wait_ready(self, timeout: float) -> None:
        assert self.observer is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for worker in self.workers.values():
                if worker.process.poll() is not None:
                    raise RuntimeError(f"worker {worker.name} exited; see {worker.log}")
            if sum(1 for b in self.observer.seen.heartbeats.values() if b.assigned_partitions > 0) >= len(self.workers):
                return
            await asyncio.sleep(0.2)
        raise TimeoutError(f"workers not ready within {timeout:.0f}s; see {self.run_dir}")

    # -- the run ------------------------------------------------------------------------------
    async def play(self) -> dict[str, Any]:
        started = time.monotonic()
        signals = leader_script(self.options.signals, self.options.seed)
        publishing = asyncio.ensure_future(self._publish(signals))
        await self._chaos(publishing)
        await publishing
        settled = await self._settle(self.options.settle_timeout_s)
        return self.tally(signals, settled, time.monotonic() - started)

    async def _publish(self, signals: list[TradeSignal]) -> None:
        producer = AIOKafkaProducer(bootstrap_servers=self.settings.bootstrap_servers, linger_ms=0)
        await producer.start()
        try:
            for signal in signals:
                signal.stamps = {"detected": time.time()}
                await producer.send_and_wait(self.prefix + "trade.signals", signal.dumps(), key=SYMBOL.encode())
                await asyncio.sleep(self.options.interval_s)
        finally:
            await producer.stop()

    async def _chaos(self, publishing: asyncio.Future[None]) -> None:
        """Each worker in turn is SIGKILLed at a random moment while it works (after it has its
        partitions again), and restarted a moment later; until the leader is done and at least
        ``min_kills`` happened. The two workers' cycles overlap."""

        async def cycle(name: str, first_delay: float) -> None:
            await asyncio.sleep(first_delay)
            while not publishing.done() or sum(self.kills.values()) < self.options.min_kills:
                await self._until_working(name)
                await asyncio.sleep(self.rng.uniform(0.2, 2.5))
                worker = self.workers[name]
                worker.process.kill()
                await asyncio.to_thread(worker.process.wait)
                self.kills[name] += 1
                await asyncio.sleep(self.rng.uniform(0.1, 1.0))
                self.workers[name] = start_worker(name, self.roles[name], self.run_dir, self.env)

        await asyncio.gather(cycle("back", 0.0), cycle("front", self.rng.uniform(1.0, 4.0)))

    async def _until_working(self, name: str, timeout: float = 60.0) -> None:
        """Until the worker's current process reports assigned partitions (it consumes again)."""
        assert self.observer is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            worker = self.workers[name]
            if worker.process.poll() is not None:
                raise RuntimeError(f"worker {name} died on its own; see {worker.log}")
            tag = f":{worker.process.pid}:"
            if any(
                tag in worker_id and beat.assigned_partitions > 0
                for worker_id, beat in self.observer.seen.heartbeats.items()
            ):
                return
            await asyncio.sleep(0.1)
        raise TimeoutError(f"worker {name} did not get its partitions back within {timeout:.0f}s")

    async def _settle(self, timeout: float) -> bool:
        """Until every copy has its outcome and the books hold the expected positions."""
        assert self.observer is not None
        want = expectation(leader_script(self.options.signals, self.options.seed), self.config)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for worker in self.workers.values():
                if worker.process.poll() is not None:
                    raise RuntimeError(f"worker {worker.name} died; see {worker.log}")
            if (
                not self.observer.missing()
                and len(self.observer.seen.signals) >= self.options.signals
                and not self._wrong_positions(want)
            ):
                return True
            await asyncio.sleep(0.5)
        return False

    def _wrong_positions(self, want: Expectation) -> list[tuple[str, str, int, int]]:
        wrong = []
        for account_id in self.config.follower_accounts():
            account = self._kernel_account(account_id)
            held = {sym: p.net_quantity for sym, p in account.positions.items() if p.net_quantity}
            expected = {sym: q for (acc, sym), q in want.positions.items() if acc == account_id and q}
            for symbol in set(held) | set(expected):
                if held.get(symbol, 0) != expected.get(symbol, 0):
                    wrong.append((account_id, symbol, expected.get(symbol, 0), held.get(symbol, 0)))
        return wrong

    def tally(self, signals: list[TradeSignal], settled: bool, elapsed: float) -> dict[str, Any]:
        assert self.observer is not None
        want = expectation(signals, self.config)
        missing, doubled, in_books = [], [], 0
        # Copies too late to be the same trade are netted into one order per run, not placed
        # (docs/stale-copies.md): accounted for, as long as their netting order is not doubled.
        netted = {
            (e.account_id, e.client_order_id or "")
            for e in self.observer.seen.errors
            if e.code == COPY_STALE_NETTED and e.account_id
        }
        for (account_id, client_id), expected in want.orders.items():
            exchange, name = self._kernel(account_id)
            found = len(exchange.orders_with_client_id(name, client_id))
            in_books += found
            if found < expected and (account_id, client_id) not in netted:
                missing.append((account_id, client_id, found))
            elif found > expected:
                doubled.append((account_id, client_id, found))
        for account_id, client_id in netted:  # any netted copy may have been its run's first
            exchange, name = self._kernel(account_id)
            net_id = ids.client_order_id(f"{NET_SIGNAL_PREFIX}{client_id}", account_id)  # netting.net_key
            found = len(exchange.orders_with_client_id(name, net_id))
            in_books += found
            if found > 1:
                doubled.append((account_id, net_id, found))
        for (account_id, client_id), most in want.flattens.items():
            exchange, name = self._kernel(account_id)
            found = len(exchange.orders_with_client_id(name, client_id))
            in_books += found
            if found > most:
                doubled.append((account_id, client_id, found))
        still_working = []
        for account_id, client_id in want.cancelled:
            exchange, name = self._kernel(account_id)
            orders = exchange.orders_with_client_id(name, client_id)
            if any(not o.status.is_final for o in orders):
                still_working.append((account_id, client_id))
        seen = self.observer.seen
        unknown = [e for e in seen.errors if e.code == "OUTCOME_UNKNOWN"]
        # An unknown report is allowed (never a blind resend); the late lookup then finds the
        # order and its ack follows. Unresolved: no accepted outcome ever came for the copy.
        unresolved = [
            e
            for e in unknown
            if not any(o.kind != "reject" for o in seen.outcomes.get((e.signal_id or "", e.account_id), []))
        ]
        summary = self.observer.summary(self.options.followers)
        return {
            "signals": len(signals),
            "followers": self.options.followers,
            "kills": dict(self.kills),
            "lost_responses": sum(self._kernel_account(a).faults.lost for a in self.config.follower_accounts()),
            "orders_expected": sum(want.orders.values()),
            "flatten_pairs": len(want.flattens),
            "orders_in_books": in_books,
            "pairs_missing_an_order": len(missing),
            "pairs_netted": len(netted),
            "pairs_doubled": len(doubled),
            "cancelled_but_working": len(still_working),
            "positions_wrong": len(self._wrong_positions(want)),
            "outcomes_unknown": len(unknown),
            "outcomes_unknown_unresolved": len(unresolved),
            "copies_missing_an_outcome": summary["missing"],
            "redeliveries_absorbed": summary["redeliveries_absorbed"],
            "settled": settled,
            "elapsed_s": round(elapsed, 1),
            "details": {
                "missing": missing[:10],
                "doubled": doubled[:10],
                "still_working": still_working[:10],
                "positions_wrong": self._wrong_positions(want)[:10],
                "unknown": [(e.account_id, e.reason) for e in unresolved[:10]],
            },
        }


async def run_chaos(options: ChaosOptions, settings: Settings | None = None) -> dict[str, Any]:
    async with ChaosRun(options, settings or Settings.from_env()) as run:
        return await run.play()


__all__ = ["ChaosOptions", "ChaosRun", "chaos_config", "expectation", "leader_script", "run_chaos"]

"""The demo's scripted leader: a deterministic mix of the actions a futures trader takes.

Market entries and exits, a resting limit that is modified then cancelled, a protective stop
that is cancelled, and a final flatten: every kind of signal the copier must carry.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from ..agents.shared import jobs
from ..app.factory import CopyTraderApp
from ..brokers.base import BrokerAdapter
from ..brokers.errors import UnknownOrder
from ..brokers.instruments import instrument_for
from ..brokers.model import CancelOrder, FlattenPosition, ModifyOrder, OrderType, PlaceOrder, Side

log = logging.getLogger(__name__)
SYMBOL = "ESZ6"


@dataclass(slots=True)
class TraderPlan:
    trades: int
    interval_s: float
    seed: int = 11
    warmup: int = 0  # actions before the measured ``trades``, same mix

    @property
    def steps(self) -> int:
        return self.warmup + self.trades


class DemoTrader:
    def __init__(self, adapter: BrokerAdapter, leader: str, plan: TraderPlan) -> None:
        self.adapter = adapter
        self.leader = leader
        self.plan = plan
        self.rng = random.Random(plan.seed)
        self._n = 0
        self.actions: list[str] = []

    def _cid(self) -> str:
        self._n += 1
        return f"demo-{self.plan.seed}-{self._n}"

    async def run(self, on_measured: Callable[[], object] | None = None) -> None:
        """Trade the plan; ``on_measured`` is called once, just before the first measured action
        (after the warm-up ones), so a benchmark can tell the two apart."""
        resting: list[tuple[str, Decimal]] = []  # (client id, price) of working limit/stop orders
        tick = instrument_for(SYMBOL).tick_size
        price = instrument_for(SYMBOL).reference_price
        steps = self.plan.steps
        for step in range(steps):
            if step == self.plan.warmup and self.plan.warmup and on_measured is not None:
                on_measured()
            roll = self.rng.random()
            if resting and (roll < 0.25 or step >= steps - len(resting)):
                cid, level = resting.pop(0)
                try:
                    if self.rng.random() < 0.5 and step < steps - len(resting) - 1:
                        await self.adapter.modify(
                            ModifyOrder(self.leader, cid, quantity=self.rng.randint(1, 3), limit_price=level - tick * 4)
                        )
                        resting.append((cid, level - tick * 4))
                        self.actions.append("modify")
                    else:
                        await self.adapter.cancel(CancelOrder(self.leader, cid))
                        self.actions.append("cancel")
                except UnknownOrder:
                    # The market reached the resting order first (a long run drifts 200+ ticks):
                    # its fill was the leader's action, copied as such; a trader moves on.
                    self.actions.append("too-late")
            elif roll < 0.45 and step < steps - 2:
                cid, level = self._cid(), price - tick * self.rng.randint(200, 300)  # far: rests on every venue
                await self.adapter.place(
                    PlaceOrder(
                        self.leader, cid, SYMBOL, Side.BUY, self.rng.randint(1, 3), OrderType.LIMIT, limit_price=level
                    )
                )
                resting.append((cid, level))
                self.actions.append("limit")
            else:
                side = Side.BUY if self.rng.random() < 0.5 else Side.SELL
                await self.adapter.place(PlaceOrder(self.leader, self._cid(), SYMBOL, side, self.rng.randint(1, 3)))
                self.actions.append("market")
            await asyncio.sleep(self.plan.interval_s)
        log.info("demo trader done: %s", {a: self.actions.count(a) for a in set(self.actions)})

    async def flatten(self) -> None:
        await self.adapter.flatten(FlattenPosition(self.leader, self._cid(), SYMBOL))


def install(app: CopyTraderApp) -> None:
    """The scripted leader, added by ``demo.worker`` to the worker that watches the leader:
    wait for the go file, trade the plan on the leader, then flatten."""
    runtime = app.runtime
    plan = TraderPlan(
        trades=int(os.environ.get("COPYTRADER_DEMO_TRADES", "50")),
        interval_s=float(os.environ.get("COPYTRADER_DEMO_INTERVAL", "0.1")),
        warmup=int(os.environ.get("COPYTRADER_DEMO_WARMUP", "0")),
    )
    go_file = Path(os.environ.get("COPYTRADER_DEMO_GO_FILE", runtime.settings.data_dir / "demo.go"))
    done_file = go_file.with_suffix(".done")
    warm_file = go_file.with_suffix(".warm")  # the wall time the measured actions start

    @jobs.task(app)
    async def trade() -> None:
        assert runtime.ingest is not None, "the scripted leader runs in the worker with the ingest role"
        await runtime.ingest.ready.wait()
        while not go_file.exists():  # noqa: ASYNC240 - a stat of a local file every 50 ms, off the copy path
            await asyncio.sleep(0.05)
        leader = runtime.config.leaders()[0]
        trader = DemoTrader(await runtime.pool.adapter_for(leader), leader, plan)
        await trader.run(on_measured=lambda: warm_file.write_text(repr(time.time())))
        await trader.flatten()
        done_file.write_text(",".join(trader.actions))

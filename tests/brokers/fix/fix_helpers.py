"""Helpers for the FIX tests: a simulator on frozen prices, adapters of either FIX version with
their own FileStore, and an event recorder that waits for what it is asked for."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from waiting import wait_until

from copytrader.brokers.base import SessionConfig, Subscription
from copytrader.brokers.fix.adapter import FixAdapter
from copytrader.brokers.fix.simulator import FixSimulator
from copytrader.brokers.model import BrokerEvent
from copytrader.brokers.simkernel.exchange import SimExchange
from copytrader.brokers.simkernel.pricepath import PricePath

ACCOUNT = "A"
SYMBOL = "ESZ6"
VERSIONS = ("FIX.4.2", "FIX.4.4")


def frozen() -> SimExchange:
    """Prices move only when a test says so, so fill prices are exact."""
    return SimExchange(seed=7, prices=PricePath(7, max_step_ticks=0))


def session_config(sim: FixSimulator, version: str, store: Path, **options: Any) -> SessionConfig:
    creds = sim.demo_credentials()
    return SessionConfig(
        platform="fix",
        session_id="fix-test",
        accounts={ACCOUNT: creds["accounts"][0]},
        endpoint=sim.base_url,
        username=creds["username"],
        secret=creds["password"],
        options={
            "fix_version": version,
            "sender_comp_id": creds["sender_comp_id"],
            "target_comp_id": creds["target_comp_id"],
            "heartbeat_s": 1,
            "store_dir": str(store),
            "request_timeout_s": 5.0,
            **options,
        },
    )


class Recorder:
    """Every event of an adapter since subscription, with waits for the ones a test needs."""

    def __init__(self, adapter: FixAdapter) -> None:
        self.subscription: Subscription = adapter.events()
        self.seen: list[BrokerEvent] = []

    def drain(self) -> list[BrokerEvent]:
        while not self.subscription.queue.empty():
            self.seen.append(self.subscription.queue.get_nowait())
        return self.seen

    async def wait_for(self, match: Callable[[BrokerEvent], bool], what: str, timeout_s: float = 5.0) -> BrokerEvent:
        def found() -> BrokerEvent | None:
            return next((e for e in self.drain() if match(e)), None)

        event = await wait_until(found, timeout_s=timeout_s, what=what, observe=lambda: self.seen[-5:])
        assert event is not None
        return event

    def of(self, kind: type[Any]) -> list[Any]:
        return [e for e in self.drain() if isinstance(e, kind)]

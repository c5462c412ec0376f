"""Helpers for the DtcAdapter tests: a simulator on frozen prices, adapters in either encoding,
and an event recorder that waits for the event it is asked for (never a fixed sleep)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from copytrader.brokers.base import SessionConfig, Subscription
from copytrader.brokers.dtc.adapter import DtcAdapter
from copytrader.brokers.dtc.messages import Encoding
from copytrader.brokers.dtc.simulator import DtcSimulator
from copytrader.brokers.model import BrokerEvent
from copytrader.brokers.simkernel.exchange import SimExchange
from copytrader.brokers.simkernel.pricepath import PricePath

ACCOUNT = "A"
SYMBOL = "ESZ6"


def frozen() -> SimExchange:
    """Prices move only when a test says so, so fill prices are exact."""
    return SimExchange(seed=7, prices=PricePath(7, max_step_ticks=0))


def session_config(sim: DtcSimulator, encoding: Encoding = Encoding.BINARY, **options: Any) -> SessionConfig:
    creds = sim.demo_credentials()
    return SessionConfig(
        platform="dtc",
        session_id=f"dtc-test-{encoding.name.lower()}",
        accounts={ACCOUNT: creds["accounts"][0]},
        endpoint=sim.base_url,
        username=creds["username"],
        secret=creds["password"],
        options={
            "encoding": encoding.name.lower(),
            "reconnect_min_s": 0.02,
            "reconnect_max_s": 0.2,
            "request_timeout_s": 5.0,
            **options,
        },
    )


def adapter_for(sim: DtcSimulator, encoding: Encoding = Encoding.BINARY, **options: Any) -> DtcAdapter:
    return DtcAdapter(session_config(sim, encoding, **options))


def with_secret(config: SessionConfig, secret: str) -> SessionConfig:
    return replace(config, secret=secret)


class Recorder:
    """Every event of one subscription, kept in order; ``expect`` waits for a matching one."""

    def __init__(self, subscription: Subscription) -> None:
        self.subscription = subscription
        self.events: list[BrokerEvent] = []
        self._matched: set[int] = set()

    async def expect(self, predicate: Callable[[BrokerEvent], bool], timeout: float = 5.0) -> BrokerEvent:
        """The first event not matched before that satisfies ``predicate`` (seen or still to come)."""

        async def find() -> BrokerEvent:
            checked = 0
            while True:
                for index in range(checked, len(self.events)):
                    if index not in self._matched and predicate(self.events[index]):
                        self._matched.add(index)
                        return self.events[index]
                checked = len(self.events)
                self.events.append(await self.subscription.queue.get())

        try:
            return await asyncio.wait_for(find(), timeout)
        except TimeoutError:
            raise AssertionError(f"no matching event within {timeout} s; seen: {self.events}") from None

    def drain(self) -> list[BrokerEvent]:
        """Everything queued so far (without waiting)."""
        while not self.subscription.queue.empty():
            self.events.append(self.subscription.queue.get_nowait())
        return self.events

    def of(self, kind: type) -> list[Any]:
        return [e for e in self.drain() if isinstance(e, kind)]

"""Fixtures for the Tradovate adapter + simulator tests: a live simulator on an ephemeral
port, an adapter pointed at it, and ``next_event`` that awaits an event with a timeout."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from tradovate_helpers import session_config

from copytrader.brokers.tradovate.adapter import TradovateAdapter
from copytrader.brokers.tradovate.simulator import TradovateSimulator, create_simulator


@pytest.fixture
async def sim() -> AsyncIterator[TradovateSimulator]:
    simulator = create_simulator(tick_ms=20, heartbeat_s=0.5)
    await simulator.start()
    yield simulator
    await simulator.stop()


AdapterFactory = Callable[..., Awaitable[TradovateAdapter]]


@pytest.fixture
async def make_adapter(sim: TradovateSimulator) -> AsyncIterator[AdapterFactory]:
    made: list[TradovateAdapter] = []

    async def factory(connect: bool = True, **options: Any) -> TradovateAdapter:
        adapter = TradovateAdapter(session_config(sim, **options))
        made.append(adapter)
        if connect:
            await adapter.connect()
        return adapter

    yield factory
    for adapter in made:
        await adapter.disconnect()


@pytest.fixture
async def adapter(make_adapter: AdapterFactory) -> TradovateAdapter:
    return await make_adapter()

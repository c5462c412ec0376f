"""Fixtures: a simulator on an ephemeral port and an adapter pointed at it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from projectx_helpers import session_config

from copytrader.brokers.projectx.adapter import ProjectXAdapter
from copytrader.brokers.projectx.simulator import ProjectXSimulator, create_simulator
from copytrader.brokers.simkernel.exchange import SimExchange


@pytest.fixture
async def sim() -> AsyncIterator[ProjectXSimulator]:
    simulator = create_simulator(SimExchange(seed=11), tick_ms=10, keepalive_s=1.0)
    await simulator.start()
    try:
        yield simulator
    finally:
        await simulator.stop()


@pytest.fixture
async def make_adapter(sim: ProjectXSimulator) -> AsyncIterator[Callable[..., Any]]:
    made: list[ProjectXAdapter] = []

    async def factory(**options: Any) -> ProjectXAdapter:
        adapter = ProjectXAdapter(session_config(sim, **options))
        made.append(adapter)
        await adapter.connect()
        return adapter

    yield factory
    for adapter in made:
        await adapter.disconnect()


@pytest.fixture
async def adapter(make_adapter: Callable[..., Any]) -> ProjectXAdapter:
    return await make_adapter()

"""Fixtures: a simulator on an ephemeral port and an adapter pointed at it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from copytrader.brokers.base import SessionConfig
from copytrader.brokers.projectx.adapter import ProjectXAdapter
from copytrader.brokers.projectx.simulator import ProjectXSimulator, create_simulator
from copytrader.brokers.simkernel.exchange import SimExchange

ACCOUNTS = {"leader": "PX-LEADER", "f1": "PX-FOLLOWER-1", "f2": "PX-FOLLOWER-2"}


@pytest.fixture
async def sim() -> AsyncIterator[ProjectXSimulator]:
    simulator = create_simulator(SimExchange(seed=11), tick_ms=10, keepalive_s=1.0)
    await simulator.start()
    try:
        yield simulator
    finally:
        await simulator.stop()


def session_config(sim: ProjectXSimulator, **options: Any) -> SessionConfig:
    creds = sim.demo_credentials()
    return SessionConfig(
        platform="projectx", session_id="px-test", accounts=dict(ACCOUNTS), endpoint=sim.base_url,
        username=creds["userName"], secret=creds["apiKey"],
        options={"reconnect_min_s": 0.02, "backoff_429_s": 0.05, "request_timeout_s": 5.0, **options},
    )


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

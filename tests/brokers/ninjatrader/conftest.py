"""Fixtures: a NinjaTrader simulator (both routes at once) on a frozen kernel, and adapters on
either route."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from nt_helpers import frozen

from copytrader.brokers.base import SessionConfig
from copytrader.brokers.ninjatrader.adapter import NinjaTraderAdapter
from copytrader.brokers.ninjatrader.simulator import NinjaTraderSimulator, create_simulator

FAST = {"reconnect_min_s": 0.05, "reconnect_max_s": 0.2, "request_timeout_s": 3.0, "lookup_settle_s": 0.2}
AdapterFactory = Callable[..., Awaitable[NinjaTraderAdapter]]


@pytest.fixture
async def sim(tmp_path: Path) -> AsyncIterator[NinjaTraderSimulator]:
    simulator = create_simulator(exchange=frozen(), folder=tmp_path / "NinjaTrader 8")
    await simulator.start()
    try:
        yield simulator
    finally:
        await simulator.stop()


def session(endpoint: str, accounts: dict[str, str] | None = None, **options: Any) -> SessionConfig:
    return SessionConfig(
        platform="ninjatrader",
        session_id="nt-test",
        accounts=accounts or {"A": "Sim101", "B": "Sim102"},
        endpoint=endpoint,
        options={**FAST, **options},
    )


@pytest.fixture
async def connect(sim: NinjaTraderSimulator) -> AsyncIterator[AdapterFactory]:
    """``await connect("ati")`` or ``connect("oif")``: a connected adapter, disconnected after."""
    made: list[NinjaTraderAdapter] = []

    async def factory(route: str, **options: Any) -> NinjaTraderAdapter:
        endpoint = sim.ati_url if route == "ati" else sim.oif_url
        adapter = NinjaTraderAdapter(session(endpoint, **options))
        made.append(adapter)
        await adapter.connect()
        return adapter

    try:
        yield factory
    finally:
        for adapter in made:
            await adapter.disconnect()


@pytest.fixture(params=["ati", "oif"])
def route(request: pytest.FixtureRequest) -> str:
    return str(request.param)

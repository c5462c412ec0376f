"""Fixtures: a FIX simulator (QuickFIX acceptor) on a free port, and adapters that always stop."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from fix_helpers import frozen, session_config

from copytrader.brokers.fix.adapter import FixAdapter
from copytrader.brokers.fix.simulator import FixSimulator, create_simulator


@pytest.fixture
async def sim() -> AsyncIterator[FixSimulator]:
    simulator = create_simulator(exchange=frozen(), heartbeat_s=1)
    await simulator.start()
    try:
        yield simulator
    finally:
        await simulator.stop()


@pytest.fixture(params=["FIX.4.2", "FIX.4.4"], ids=["fix42", "fix44"])
def version(request: pytest.FixtureRequest) -> str:
    value: str = request.param
    return value


AdapterFactory = Callable[..., FixAdapter]


@pytest.fixture
async def make_adapter(sim: FixSimulator, version: str, tmp_path: Path) -> AsyncIterator[AdapterFactory]:
    """``make_adapter(**options)``: an unconnected adapter on ``sim`` (one FileStore per test)."""
    made: list[FixAdapter] = []

    def make(store: Path | None = None, **options: Any) -> FixAdapter:
        adapter = FixAdapter(session_config(sim, version, store or tmp_path / "store", **options))
        made.append(adapter)
        return adapter

    try:
        yield make
    finally:
        for adapter in made:
            await adapter.disconnect()


@pytest.fixture
async def adapter(make_adapter: AdapterFactory) -> FixAdapter:
    made = make_adapter()
    await made.connect()
    return made

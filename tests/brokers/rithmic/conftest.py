"""Fixtures: a Rithmic simulator on an ephemeral port with a manual market clock."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from copytrader.brokers.rithmic.simulator import RithmicSimulator, create_simulator
from copytrader.brokers.simkernel.exchange import SimExchange


@pytest.fixture
async def sim() -> AsyncIterator[RithmicSimulator]:
    simulator = create_simulator(SimExchange(seed=5), tick_ms=0)
    await simulator.start()
    try:
        yield simulator
    finally:
        await simulator.stop()

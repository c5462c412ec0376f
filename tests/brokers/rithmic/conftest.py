"""Fixtures: a Rithmic simulator on an ephemeral port with a manual market clock.

The simulator speaks through async-rithmic's protobuf classes (a runtime dependency since the
adapter needs them too); it is imported inside the fixture so a broken install shows as each
module's ``ci_skips.require_module`` failure instead of the whole directory erroring at collection.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from copytrader.brokers.rithmic.simulator import RithmicSimulator


@pytest.fixture
async def sim() -> AsyncIterator[RithmicSimulator]:
    from copytrader.brokers.rithmic.simulator import create_simulator
    from copytrader.brokers.simkernel.exchange import SimExchange

    simulator = create_simulator(SimExchange(seed=5), tick_ms=0)
    await simulator.start()
    try:
        yield simulator
    finally:
        await simulator.stop()

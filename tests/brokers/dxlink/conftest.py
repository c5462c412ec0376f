"""Fixtures: a dxLink simulator on an ephemeral port, and a raw WebSocket to speak to it by hand."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest

from copytrader.brokers.dxlink.simulator import DxLinkSimulator


@pytest.fixture
async def sim() -> AsyncIterator[DxLinkSimulator]:
    simulator = DxLinkSimulator(tick_ms=20, seed=5)
    await simulator.start()
    try:
        yield simulator
    finally:
        await simulator.stop()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session

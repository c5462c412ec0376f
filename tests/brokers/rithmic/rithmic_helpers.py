"""Helpers for the Rithmic tests: await a condition, and an unchanged async-rithmic client."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from copytrader.brokers.rithmic.simulator import RithmicSimulator


async def wait_until(condition: Callable[[], Any], timeout_s: float = 5.0, what: str = "condition") -> Any:
    """Poll ``condition`` until truthy (returned), failing after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


def make_client(sim: RithmicSimulator, user: str = "sim-user", password: str = "sim-pass") -> Any:
    """async-rithmic's RithmicClient, unchanged but for the URL and ``ssl_context`` (plain ws://
    on loopback; websockets refuses an SSL context with a ws:// URL)."""
    from async_rithmic import RetrySettings, RithmicClient

    client = RithmicClient(
        user=user,
        password=password,
        system_name=sim.system_name,
        app_name="sim:copytrader-tests",
        app_version="1.0",
        url=sim.url,
        retry_settings=RetrySettings(max_retries=1, timeout=5.0, jitter_range=None),
    )
    client.ssl_context = None
    return client

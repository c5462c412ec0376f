"""Helpers shared by the ProjectX tests (importable; conftest holds only fixtures)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from copytrader.brokers.base import SessionConfig, Subscription
from copytrader.brokers.model import BrokerEvent
from copytrader.brokers.projectx.simulator import ProjectXSimulator

ACCOUNTS = {"leader": "PX-LEADER", "f1": "PX-FOLLOWER-1", "f2": "PX-FOLLOWER-2"}


def session_config(sim: ProjectXSimulator, **options: Any) -> SessionConfig:
    creds = sim.demo_credentials()
    return SessionConfig(
        platform="projectx",
        session_id="px-test",
        accounts=dict(ACCOUNTS),
        endpoint=sim.base_url,
        username=creds["userName"],
        secret=creds["apiKey"],
        options={"reconnect_min_s": 0.02, "backoff_429_s": 0.05, "request_timeout_s": 5.0, **options},
    )


async def next_event(
    events: Subscription, predicate: Callable[[BrokerEvent], bool], within: float = 5.0
) -> BrokerEvent:
    """The first event matching ``predicate`` (earlier ones are consumed), or TimeoutError."""

    async def scan() -> BrokerEvent:
        async for event in events:
            if predicate(event):
                return event
        raise AssertionError("event stream ended")

    return await asyncio.wait_for(scan(), within)


async def poll_until(predicate: Callable[[], bool]) -> None:
    """Await a state the simulator raises no event for, by polling it (the caller bounds the wait)."""
    while not predicate():
        await asyncio.sleep(0.02)

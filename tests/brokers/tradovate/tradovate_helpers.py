"""Helpers shared by the Tradovate tests (a uniquely named module: tests/ has no packages)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from copytrader.brokers.base import SessionConfig, Subscription
from copytrader.brokers.model import BrokerEvent
from copytrader.brokers.tradovate.simulator import TradovateSimulator

TIMEOUT = 5.0


async def next_event(sub: Subscription, match: Callable[[BrokerEvent], bool], within: float = TIMEOUT) -> Any:
    """The first event satisfying ``match`` (others are skipped); fails after ``within`` seconds."""

    async def scan() -> BrokerEvent:
        async for event in sub:
            if match(event):
                return event
        raise AssertionError("subscription ended")

    return await asyncio.wait_for(scan(), within)


def session_config(sim: TradovateSimulator, **options: Any) -> SessionConfig:
    creds = sim.demo_credentials()
    return SessionConfig(
        platform="tradovate",
        session_id="test",
        endpoint=sim.base_url,
        accounts={"f1": creds["accounts"][0], "f2": creds["accounts"][-1]},
        username=creds["name"],
        secret=options.pop("password", creds["password"]),
        options={
            "appId": creds["appId"],
            "cid": creds["cid"],
            "sec": creds["sec"],
            "deviceId": creds["deviceId"],
            "heartbeat_s": 0.5,
            "reconnect_initial_s": 0.05,
            "request_timeout_s": 5.0,
            **options,
        },
    )


async def poll_until(predicate: Callable[[], bool]) -> None:
    """Await a state the simulator raises no event for, by polling it (the caller bounds the wait)."""
    while not predicate():
        await asyncio.sleep(0.02)

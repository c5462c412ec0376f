"""Helpers shared by the ProjectX tests (importable; conftest holds only fixtures)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from copytrader.brokers.base import Subscription
from copytrader.brokers.model import BrokerEvent


async def next_event(events: Subscription, predicate: Callable[[BrokerEvent], bool], timeout: float = 5.0) -> BrokerEvent:
    """The first event matching ``predicate`` (earlier ones are consumed), or TimeoutError."""

    async def scan() -> BrokerEvent:
        async for event in events:
            if predicate(event):
                return event
        raise AssertionError("event stream ended")

    return await asyncio.wait_for(scan(), timeout)

"""tests/waiting.py: a wait returns what it waited for, or fails saying what and the last value."""

from __future__ import annotations

import asyncio
import time

import pytest
from waiting import WaitTimeout, wait_until, wait_until_sync


async def test_returns_the_first_truthy_value_of_a_sync_or_async_predicate() -> None:
    ticks = iter(range(100))
    assert await wait_until(lambda: [n for n in [next(ticks)] if n >= 3], timeout_s=5, what="three ticks") == [3]

    async def ready() -> str:
        await asyncio.sleep(0)
        return "ready"

    assert await wait_until(ready, timeout_s=1, what="ready") == "ready"


async def test_a_timeout_names_what_was_awaited_and_the_last_value_seen() -> None:
    seen = {"n": 0}

    def never() -> bool:
        seen["n"] += 1
        return False

    with pytest.raises(WaitTimeout, match=r"waited 0.1 s for the moon; last observed: \{'n': \d+\}"):
        await wait_until(never, timeout_s=0.1, what="the moon", observe=lambda: dict(seen))
    with pytest.raises(AssertionError, match="last observed: 0"):  # an assertion failure to pytest
        await wait_until(lambda: 0, timeout_s=0.05, what="zero to become truthy")


def test_the_blocking_twin() -> None:
    start = time.monotonic()
    assert wait_until_sync(lambda: time.monotonic() - start > 0.05, timeout_s=5, what="50 ms") is True
    with pytest.raises(WaitTimeout, match="for nothing; last observed: None"):
        wait_until_sync(lambda: None, timeout_s=0.05, what="nothing")

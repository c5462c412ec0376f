"""What each loop turn of the executor holds during a burst: a zero-latency paper answer
arrives in a later turn (as a network broker's does), and the fill pump hands over a burst's
events in slices, so the next intent batch's fetch is not held behind them (#16)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from copytrader.agents.execution.agent import PUMP_SLICE_S, pump_fills
from copytrader.brokers.base import SessionConfig
from copytrader.brokers.model import PlaceOrder, Side
from copytrader.brokers.paper.adapter import PaperAdapter, reset_venues


async def test_a_zero_latency_paper_answer_comes_in_a_later_loop_turn() -> None:
    """Two lanes of one burst: both orders are handed over before either answer is handled.
    Before, the first lane's answer (and everything after it) ran inside its call, and the
    second order waited for it: copy k of a signal waited for k−1 answers."""
    reset_venues()
    adapter = PaperAdapter(
        SessionConfig(session_id="p", platform="paper", accounts={"a": "A", "b": "B"}, options={"tick_ms": 0})
    )
    await adapter.connect()
    seen: list[str] = []

    async def lane(account: str) -> None:
        seen.append(f"sent {account}")
        await adapter.place(PlaceOrder(account, f"cid-{account}", "ESZ6", Side.BUY, 1))
        seen.append(f"answered {account}")

    try:
        await asyncio.gather(lane("a"), lane("b"))
    finally:
        await adapter.disconnect()
    assert seen == ["sent a", "sent b", "answered a", "answered b"]


class _Subscription:
    def __init__(self) -> None:
        self.queue: asyncio.Queue[Any] = asyncio.Queue()

    def close(self) -> None:
        pass


class _Adapter:
    platform = "paper"

    def __init__(self) -> None:
        self.subscription = _Subscription()

    def events(self) -> _Subscription:
        return self.subscription


class _Event:
    account_id = "f1"


class _SlowRouter:
    """Takes each event for about 20 µs of CPU, as the router does a fill."""

    def __init__(self) -> None:
        self.taken = 0

    def take_broker_event(self, platform: str, event: object) -> None:
        until = time.perf_counter() + 20e-6
        while time.perf_counter() < until:
            pass
        self.taken += 1


async def test_the_fill_pump_takes_a_burst_of_events_in_slices() -> None:
    adapter, router = _Adapter(), _SlowRouter()
    burst = 800  # four events per copy at 200 followers: about 16 ms of taking
    for _ in range(burst):
        adapter.subscription.queue.put_nowait(_Event())
    taken_when_others_ran: list[int] = []

    async def other_work() -> None:  # the next fetch, a lane: anything else the loop holds
        while router.taken < burst:
            taken_when_others_ran.append(router.taken)
            await asyncio.sleep(0)

    pump = asyncio.ensure_future(pump_fills(router, adapter, {"f1"}))  # type: ignore[arg-type]  # duck-typed stand-ins
    others = asyncio.ensure_future(other_work())
    await asyncio.wait_for(others, 5)
    pump.cancel()
    assert router.taken == burst
    # Other work ran between slices of about PUMP_SLICE_S (50 events of 20 µs), not only
    # before and after the whole burst.
    between = [n for n in taken_when_others_ran if 0 < n < burst]
    assert len(between) >= burst * 20e-6 / PUMP_SLICE_S / 2

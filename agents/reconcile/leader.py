"""The leaders' broker-side state, published where the reconcilers read it.

Why from the ingest worker: it already holds the leader sessions (``agents/ingest``), and the
executors that own the follower sessions may run on other hosts. Each leader's snapshot goes
to ``leader.snapshots`` (one compacted partition, key = leader account): on every (re)connect
of the leader's session, on a schedule and on a reconcile request. A snapshot that fails or
times out is published too, as a failure with its reason, so the reconcilers report
``RECONCILE_UNAVAILABLE`` instead of correcting from an older state.

The schedule is jittered only to spread the leaders' snapshot calls over time (many leaders on
one login would otherwise ask at the same instant): each leader's pause is the interval ± a
fraction, never longer than the freshness bound the reconcilers enforce.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable

from ...brokers.base import BrokerAdapter
from ...brokers.model import ConnectionEvent, ConnectionState
from ...core.reconcile import BrokerState
from ...core.schemas.reconcile import ReconcileIn

log = logging.getLogger(__name__)
Publish = Callable[[str, bytes], Awaitable[None]]
OnState = Callable[[BrokerState], Awaitable[None]]
AdapterFor = Callable[[str], Awaitable[BrokerAdapter]]


async def take_snapshot(adapter_for: AdapterFor, account_id: str, timeout_s: float) -> BrokerState:
    """The account's broker state, or a failed state saying why (never raises)."""
    started = time.time()
    try:
        adapter = await asyncio.wait_for(adapter_for(account_id), timeout_s)
        snapshot = await asyncio.wait_for(adapter.snapshot(account_id), timeout_s)
    except TimeoutError:
        return BrokerState.failed(account_id, started, f"snapshot timed out after {timeout_s:g} s")
    except Exception as exc:  # noqa: BLE001 - any failure is reported, and nothing is corrected from it
        return BrokerState.failed(account_id, started, f"{type(exc).__name__}: {exc}"[:256])
    return BrokerState.of(snapshot)


class LeaderSnapshots:
    """Publishes each leader's snapshot on (re)connect, on schedule and on request."""

    def __init__(self, leaders: list[str], adapter_for: AdapterFor, publish: Publish, settings: ReconcileIn) -> None:
        self.leaders = leaders
        self.adapter_for = adapter_for
        self.publish = publish
        self.settings = settings
        self.published = 0
        self.on_state: OnState | None = None  # the leader's broker truth for the dashboard
        self._locks: dict[str, asyncio.Lock] = {}
        self._requests: set[asyncio.Future[None]] = set()

    def request(self, leaders: list[str]) -> None:
        """Snapshots of ``leaders`` now, in the background (a reconcile request)."""
        task = asyncio.ensure_future(self.publish_all("request", leaders))
        self._requests.add(task)
        task.add_done_callback(self._requests.discard)

    async def publish_one(self, leader: str, trigger: str) -> BrokerState:
        """One snapshot of one leader; concurrent triggers for the same leader run one by one."""
        lock = self._locks.setdefault(leader, asyncio.Lock())
        async with lock:
            state = await take_snapshot(self.adapter_for, leader, self.settings.snapshot_timeout_s)
            if state.error is not None:
                log.warning("leader %s snapshot failed (%s): %s", leader, trigger, state.error)
            await self.publish(leader, state.encode(trigger))
            self.published += 1
            if self.on_state is not None and state.error is None:
                await self.on_state(state)
            return state

    async def publish_all(self, trigger: str, leaders: list[str] | None = None) -> None:
        await asyncio.gather(*(self.publish_one(leader, trigger) for leader in leaders or self.leaders))

    def next_pause(self) -> float:
        """The interval, spread by ± ``jitter`` of itself (load spreading, nothing else)."""
        spread = self.settings.interval_s * self.settings.jitter
        return self.settings.interval_s + random.uniform(-spread, spread)  # load spreading, not security

    async def run_schedule(self, leader: str) -> None:
        while True:
            await asyncio.sleep(self.next_pause())
            await self.publish_one(leader, "schedule")

    async def watch_connection(self, leader: str) -> None:
        """A snapshot at once, then one after every reconnect of the leader's session: what
        the leader did while it was down is in the snapshot, not in any event we saw."""
        await self.publish_one(leader, "connect")
        adapter = await self.adapter_for(leader)
        events = adapter.events(ConnectionEvent)  # not the leader's every order and fill
        try:
            async for event in events:
                if isinstance(event, ConnectionEvent) and event.state is ConnectionState.CONNECTED:
                    await self.publish_one(leader, "reconnect")
        finally:
            events.close()

    async def run(self) -> None:
        """Every leader's connection watch and schedule, until cancelled."""
        jobs = [self.run_schedule(leader) for leader in self.leaders]
        jobs += [self._watch_forever(leader) for leader in self.leaders]
        await asyncio.gather(*jobs)

    async def _watch_forever(self, leader: str) -> None:
        while True:
            try:
                await self.watch_connection(leader)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - no session yet: the schedule reports it; retry later
                log.warning("leader %s: connection watch failed: %r", leader, exc)
            await asyncio.sleep(self.settings.interval_s)

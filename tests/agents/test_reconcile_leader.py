"""The leader side of reconciliation: snapshots published on connect, reconnect, schedule and
request; a snapshot that fails or times out is published as a failure with its reason."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

from waiting import wait_until

from copytrader.agents.reconcile.feed import LeaderSnapshotFeed
from copytrader.agents.reconcile.leader import LeaderSnapshots, take_snapshot
from copytrader.brokers.base import BrokerAdapter, SessionConfig
from copytrader.brokers.model import AccountSnapshot, Capabilities, ConnectionState, OrderAck, PositionEvent
from copytrader.core.reconcile import BrokerState, leader_report
from copytrader.core.schemas.reconcile import ReconcileIn


class ScriptedLeader(BrokerAdapter):
    """A leader session whose snapshot the test scripts: a position, a failure, a stall."""

    platform = "scripted"
    capabilities = Capabilities()

    def __init__(self) -> None:
        super().__init__(SessionConfig("scripted", "s", {"lead": "LEAD"}))
        self.net = 0
        self.fail: Exception | None = None
        self.stall = False

    async def connect(self) -> None:
        self._set_state(ConnectionState.CONNECTED)

    async def disconnect(self) -> None:
        self._set_state(ConnectionState.DISCONNECTED)

    async def place(self, command: Any) -> OrderAck:
        raise AssertionError("a leader snapshot is read, never traded: no order call is expected")

    modify = cancel = flatten = place

    async def snapshot(self, account_id: str) -> AccountSnapshot:
        if self.stall:
            await asyncio.sleep(60)
        if self.fail is not None:
            raise self.fail
        return AccountSnapshot(account_id, Decimal(0), (), (PositionEvent(account_id, "ESZ6", self.net, None),))


def publisher(adapter: ScriptedLeader, **settings: Any) -> tuple[LeaderSnapshots, list[BrokerState]]:
    published: list[BrokerState] = []

    async def adapter_for(account_id: str) -> BrokerAdapter:
        return adapter

    async def publish(leader: str, value: bytes) -> None:
        assert leader == "lead"
        published.append(BrokerState.decode(value))

    config = ReconcileIn(**{"snapshot_timeout_s": 0.2, **settings})
    return LeaderSnapshots(["lead"], adapter_for, publish, config), published


async def test_connect_then_every_reconnect_publishes_a_snapshot() -> None:
    adapter = ScriptedLeader()
    leaders, published = publisher(adapter)
    adapter.net = 2
    watch = asyncio.ensure_future(leaders.watch_connection("lead"))
    await wait_until(lambda: len(published) == 1, timeout_s=5, what="the connect snapshot")
    assert dict(published[0].positions) == {"ESZ6": 2}
    adapter.net = -1  # the leader traded while its session was down
    adapter._set_state(ConnectionState.DISCONNECTED)
    adapter._set_state(ConnectionState.CONNECTED)
    await wait_until(lambda: len(published) == 2, timeout_s=5, what="the reconnect snapshot")
    assert dict(published[1].positions) == {"ESZ6": -1}
    watch.cancel()


async def test_a_failed_or_stalled_snapshot_is_published_as_a_failure() -> None:
    adapter = ScriptedLeader()
    leaders, published = publisher(adapter)
    adapter.fail = ConnectionResetError("gateway gone")
    state = await leaders.publish_one("lead", "schedule")
    assert state.error == "ConnectionResetError: gateway gone" and published[-1].error == state.error
    adapter.fail, adapter.stall = None, True
    state = await leaders.publish_one("lead", "schedule")
    assert state.error == "snapshot timed out after 0.2 s" and dict(state.positions) == {}


async def test_a_request_publishes_at_once_and_the_schedule_is_jittered_within_bounds() -> None:
    adapter = ScriptedLeader()
    leaders, published = publisher(adapter, interval_s=10, jitter=0.2)
    leaders.request(["lead"])
    await wait_until(lambda: len(published) == 1, timeout_s=5, what="the requested snapshot")
    pauses = [leaders.next_pause() for _ in range(200)]
    assert all(8.0 <= p <= 12.0 for p in pauses) and len(set(pauses)) > 1


async def test_take_snapshot_never_raises() -> None:
    async def no_session(account_id: str) -> BrokerAdapter:
        raise KeyError(account_id)

    state = await take_snapshot(no_session, "lead", 0.5)
    assert state.error is not None and "KeyError" in state.error


async def test_the_feed_skips_records_the_schema_refuses() -> None:
    seen: list[BrokerState] = []

    async def apply(state: BrokerState) -> None:
        seen.append(state)

    feed = LeaderSnapshotFeed("127.0.0.1:1", "", apply)
    assert not await feed.handle(0, b'{"leader":"lead","taken_at":"soon"}')
    assert not await feed.handle(1, b'{"leader":"lead","taken_at":1,"positions":{"ESZ6":1.5}}')
    assert await feed.handle(2, BrokerState("lead", 1.0, {"ESZ6": 1}).encode())
    assert feed.refused == 2 and [s.account_id for s in seen] == ["lead"]


async def test_a_good_snapshot_is_also_handed_on_as_the_leaders_broker_truth() -> None:
    adapter = ScriptedLeader()
    leaders, _ = publisher(adapter)
    truths: list[BrokerState] = []

    async def on_state(state: BrokerState) -> None:
        truths.append(state)

    leaders.on_state = on_state
    adapter.net = 3
    await leaders.publish_one("lead", "schedule")
    adapter.fail = ConnectionResetError("down")
    await leaders.publish_one("lead", "schedule")  # a failure is no truth: the grid keeps the last
    assert [dict(s.positions) for s in truths] == [{"ESZ6": 3}]
    body = leader_report(truths[0])
    assert (body["state"], body["positions"], body["open_orders"]) == ("leader", {"ESZ6": 3}, 0)

"""The kill switch in an executor's lane: its flatten goes first, entries still queued (never
sent) are dropped and reported, queued exits stay; the in-flight call is not interrupted."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from copytrader.agents.execution.router import AccountLanes
from copytrader.agents.shared import kill_switch
from copytrader.core.config import parse_config
from copytrader.core.records import OrderIntent
from copytrader.demo.configgen import demo_config


def intent(n: int, action: str, account: str = "f001", signal: str | None = None) -> OrderIntent:
    return OrderIntent(
        client_order_id=f"c{n}",
        signal_id=signal or f"leader-1:{n}:{action}",
        account_id=account,
        platform="paper",
        leader_account="leader-1",
        action=action,
        symbol="ESZ6",
        side="buy",
        quantity=1,
        target_client_order_id="c0" if action in ("modify", "cancel") else None,
    )


async def test_a_kill_jumps_the_queue_and_drops_unsent_entries() -> None:
    ran: list[str] = []  # the lane of f001 only: another account's lane interleaves freely
    skipped: list[tuple[str, str]] = []
    acked: list[str] = []
    release = asyncio.Event()

    async def run(item: OrderIntent, redelivered: bool) -> None:
        if item.account_id == "f001":
            ran.append(item.client_order_id)
        if item.client_order_id == "c1":
            await release.wait()  # the broker call in flight when the switch is pulled

    async def on_skip(item: OrderIntent, reason: str) -> None:
        skipped.append((item.client_order_id, reason))

    lanes = AccountLanes(run, on_skip=on_skip)

    def done_for(cid: str) -> Callable[[], Awaitable[None]]:
        async def done() -> None:
            acked.append(cid)

        return done

    queued = [intent(1, "place"), intent(2, "place"), intent(3, "modify"), intent(4, "cancel"), intent(5, "place")]
    for each in queued:
        lanes.submit(each, done_for(each.client_order_id))
    lanes.submit(intent(9, "place", account="f002"), done_for("c9"))  # another account's lane
    await asyncio.sleep(0)
    config = parse_config(demo_config(2), env={})
    switch = kill_switch.plan(config, "test")
    (kill,) = [k for k in kill_switch.intents(config, switch) if k.account_id == "f001"]
    lanes.submit(kill, done_for("kill"))
    release.set()
    await lanes.join()
    await asyncio.sleep(0)
    assert ran == ["c1", kill.client_order_id, "c4"]
    assert [cid for cid, _ in skipped] == ["c2", "c3", "c5"]
    assert all("kill switch" in reason for _, reason in skipped)
    assert sorted(acked) == sorted(["c1", "c2", "c3", "c4", "c5", "c9", "kill"])  # every offset acknowledged
    await lanes.close()


async def test_without_a_kill_the_lane_stays_fifo() -> None:
    ran: list[str] = []

    async def run(item: OrderIntent, redelivered: bool) -> None:
        ran.append(item.client_order_id)

    lanes = AccountLanes(run)
    for n, action in enumerate(["place", "modify", "place", "cancel"], start=1):
        lanes.submit(intent(n, action))
    await lanes.join()
    assert ran == ["c1", "c2", "c3", "c4"]
    await lanes.close()

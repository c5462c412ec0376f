"""Transport faults: token expiry, 429s, the request budget, hub drops, and the leader feed."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import aiohttp
from projectx_helpers import next_event, poll_until, session_config

from copytrader.brokers.model import (
    ConnectionEvent,
    ConnectionState,
    FillEvent,
    OrderEvent,
    OrderStatus,
    OrderType,
    PlaceOrder,
    Side,
)
from copytrader.brokers.projectx.adapter import ProjectXAdapter
from copytrader.brokers.projectx.simulator import create_simulator

SYMBOL = "ESZ6"


def _place(cid: str, account: str = "f1", quantity: int = 1) -> PlaceOrder:
    return PlaceOrder(account_id=account, client_order_id=cid, symbol=SYMBOL, side=Side.BUY, quantity=quantity)


async def test_expired_token_mid_session_is_renewed_without_doubling(adapter: ProjectXAdapter, sim) -> None:
    """A 401 renews the same session (Auth/validate) instead of logging in again."""
    logins, renewals = adapter.session.logins, adapter.session.renewals
    sim.faults("PX-FOLLOWER-1").expire_token = True
    ack = await adapter.place(_place("exp-1"))
    assert adapter.session.renewals == renewals + 1 and adapter.session.logins == logins
    orders = [o for o in sim.exchange.account("PX-FOLLOWER-1").orders.values() if o.client_order_id == "exp-1"]
    assert len(orders) == 1 and orders[0].order_id == ack.broker_order_id


async def test_token_is_renewed_by_validate_before_expiry() -> None:
    sim = create_simulator(tick_ms=0, token_ttl=1.0)
    await sim.start()
    adapter = ProjectXAdapter(session_config(sim))
    try:
        await adapter.connect()
        first = adapter.session.token
        await asyncio.wait_for(poll_until(lambda: adapter.session.renewals >= 2), 5)
        assert adapter.session.token != first and adapter.session.logins == 1
        await adapter.place(_place("renewed-1"))  # the renewed token works
    finally:
        await adapter.disconnect()
        await sim.stop()


async def test_429_is_honoured_then_retried(adapter: ProjectXAdapter, sim) -> None:
    sim.faults("PX-FOLLOWER-1").rate_limit_next = 2
    ack = await adapter.place(_place("rl-1"))
    assert ack.broker_order_id and sim.faults("PX-FOLLOWER-1").rate_limit_next == 0
    assert adapter.budget.headroom == 0.0 or adapter.budget.wait_time() >= 0.0  # a penalty was applied
    assert len([o for o in sim.exchange.account("PX-FOLLOWER-1").orders.values() if o.client_order_id == "rl-1"]) == 1


async def test_adapter_stays_within_the_budget_and_reports_headroom() -> None:
    sim = create_simulator(tick_ms=0, rate_limit=(12, 1.0))
    await sim.start()
    adapter = ProjectXAdapter(session_config(sim, rate_limit=(12, 1.0), max_429_retries=0))
    try:
        await adapter.connect()  # login + account search
        await asyncio.gather(*(adapter.place(_place(f"burst-{i}")) for i in range(15)))
        assert adapter.health().rate_headroom < 1.0
        assert len(sim.exchange.account("PX-FOLLOWER-1").orders) == 15  # no 429 ever reached us
    finally:
        await adapter.disconnect()
        await sim.stop()


async def test_hub_drop_reconnects_resubscribes_and_reconciles(adapter: ProjectXAdapter, sim) -> None:
    events = adapter.events()
    connects = adapter.hub.connects
    sim.exchange.prices.set_price(SYMBOL, Decimal("5000"))
    await adapter.place(PlaceOrder("f1", "gap-1", SYMBOL, Side.BUY, 1, OrderType.LIMIT, limit_price=Decimal("4990")))
    await next_event(events, lambda e: isinstance(e, OrderEvent) and e.client_order_id == "gap-1")
    sim.tick_ms = 0
    sim.faults("PX-FOLLOWER-1").drop_connection = True
    await next_event(events, lambda e: isinstance(e, ConnectionEvent) and e.state is ConnectionState.DEGRADED)
    # While the hub is down the order fills: only reconciliation can tell us.
    sim.exchange.prices.set_price(SYMBOL, Decimal("4985"))
    sim.exchange.advance()
    fill = await next_event(events, lambda e: isinstance(e, FillEvent) and e.client_order_id == "gap-1")
    assert fill.price == Decimal("4990")
    await next_event(events, lambda e: isinstance(e, ConnectionEvent) and e.state is ConnectionState.CONNECTED)
    assert adapter.hub.connects == connects + 1
    # Resubscribed: a new order's events arrive over the hub again.
    await adapter.place(_place("after-1"))
    await next_event(events, lambda e: isinstance(e, FillEvent) and e.client_order_id == "after-1")


async def test_leader_feed_sees_orders_placed_by_other_clients(adapter: ProjectXAdapter, sim) -> None:
    """A leader trades in the platform's own UI: the copier sees it with broker order ids."""
    events = adapter.events()
    creds = sim.demo_credentials()
    async with aiohttp.ClientSession() as http:
        async with http.post(
            f"{sim.base_url}/api/Auth/loginKey", json={"userName": creds["userName"], "apiKey": creds["apiKey"]}
        ) as r:
            token = (await r.json())["token"]
        front = sim.state.front["ES"]
        body = {
            "accountId": creds["accounts"]["PX-LEADER"],
            "contractId": front.contract_id,
            "type": 2,
            "side": 1,
            "size": 2,
        }
        async with http.post(
            f"{sim.base_url}/api/Order/place", json=body, headers={"Authorization": f"Bearer {token}"}
        ) as r:
            order_id = str((await r.json())["orderId"])
    placed = await next_event(events, lambda e: isinstance(e, OrderEvent) and e.broker_order_id == order_id)
    assert placed.account_id == "leader" and placed.client_order_id is None and placed.side is Side.SELL
    final = await next_event(
        events, lambda e: isinstance(e, OrderEvent) and e.broker_order_id == order_id and e.status is OrderStatus.FILLED
    )
    assert final.filled_quantity == 2
    fill = await next_event(events, lambda e: isinstance(e, FillEvent) and e.broker_order_id == order_id)
    assert fill.account_id == "leader" and fill.quantity == 2 and fill.symbol == front.symbol


async def test_a_silent_hub_counts_as_dropped_and_is_reconnected() -> None:
    """No frame (not even a SignalR ping) for server_timeout_s: the socket is dead, whatever TCP says."""
    sim = create_simulator(tick_ms=0, keepalive_s=60.0)  # a server that never pings
    await sim.start()
    adapter = ProjectXAdapter(session_config(sim, keepalive_s=0.05, server_timeout_s=0.3))
    try:
        events = adapter.events()
        await adapter.connect()
        connects = adapter.hub.connects
        await next_event(events, lambda e: isinstance(e, ConnectionEvent) and e.state is ConnectionState.DEGRADED)
        await next_event(events, lambda e: isinstance(e, ConnectionEvent) and e.state is ConnectionState.CONNECTED)
        assert adapter.hub.connects > connects
    finally:
        await adapter.disconnect()
        await sim.stop()


async def test_a_hub_that_pings_is_not_dropped() -> None:
    """The other side of the silent hub: a server that pings every 0.1 s keeps a socket whose
    server timeout is 0.3 s (the watchdog counts every frame, pings included)."""
    sim = create_simulator(tick_ms=0, keepalive_s=0.1)
    await sim.start()
    adapter = ProjectXAdapter(session_config(sim, keepalive_s=0.05, server_timeout_s=0.3))
    try:
        await adapter.connect()
        connects = adapter.hub.connects
        await asyncio.sleep(1.2)  # an absence: no reconnect may happen in this window
        assert adapter.hub.connects == connects
    finally:
        await adapter.disconnect()
        await sim.stop()

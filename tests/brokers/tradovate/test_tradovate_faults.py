"""Transport faults: token expiry, penalty tickets, 429, dropped socket, slow acks, bad logins."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import aiohttp
import pytest
from tradovate_helpers import next_event, poll_until, session_config

from copytrader.brokers.errors import AuthenticationFailed, RateLimited
from copytrader.brokers.model import (
    ConnectionEvent,
    ConnectionState,
    FillEvent,
    OrderEvent,
    PlaceOrder,
    Side,
)
from copytrader.brokers.tradovate import codec
from copytrader.brokers.tradovate.adapter import TradovateAdapter
from copytrader.brokers.tradovate.simulator import TradovateSimulator, create_simulator

ACCT = "DEMO1001"


def orders_with(sim: TradovateSimulator, client_order_id: str) -> int:
    return sum(1 for o in sim.exchange.account(ACCT).orders.values() if o.client_order_id == client_order_id)


async def test_bad_credentials_fail_authentication(make_adapter, sim: TradovateSimulator) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(AuthenticationFailed):
        await make_adapter(password="wrong")
    async with aiohttp.ClientSession() as http:
        reply = await http.post(f"{sim.base_url}/auth/accesstokenrequest", json={"name": "x", "password": "y"})
        assert reply.status == 200 and "errorText" in await reply.json()  # docs: failure is HTTP 200
        denied = await http.get(f"{sim.base_url}/account/list", headers={"Authorization": "Bearer nope"})
        assert denied.status == 401
        ws = await http.ws_connect(sim.ws_url)
        assert await ws.receive_str() == "o"
        await ws.send_str("authorize\n0\n\nnot-a-token")
        frame = codec.decode_server_frame(await ws.receive_str())
        assert isinstance(frame, codec.DataFrame) and frame.items[0].status == 401  # type: ignore[union-attr]
        await ws.close()


async def test_token_expiry_mid_session_neither_loses_nor_doubles(
    adapter: TradovateAdapter, sim: TradovateSimulator
) -> None:
    sub = adapter.events()
    sim.faults(ACCT).expire_token = True
    ack = await adapter.place(PlaceOrder("f1", "exp-1", "ESZ6", Side.BUY, 1))
    assert adapter.rest is not None and adapter.rest.reauths == 1
    assert orders_with(sim, "exp-1") == 1
    fill = await next_event(sub, lambda e: isinstance(e, FillEvent) and e.client_order_id == "exp-1")
    assert fill.broker_order_id == ack.broker_order_id


@pytest.fixture
async def short_token_sim() -> AsyncIterator[TradovateSimulator]:
    simulator = create_simulator(tick_ms=20, token_ttl=2.0)
    await simulator.start()
    yield simulator
    await simulator.stop()


async def test_token_renewed_before_expiry(short_token_sim: TradovateSimulator) -> None:
    adapter = TradovateAdapter(session_config(short_token_sim, renew_margin_s=1.5))
    await adapter.connect()
    try:
        assert adapter.rest is not None
        first = adapter.rest.token

        calls = short_token_sim.api.calls
        rest = adapter.rest

        # The simulator logs the call on receipt; the adapter swaps the token once it read the answer.
        def renewed() -> bool:
            return any(ep == "auth/renewaccesstoken" for ep, _ in calls) and rest.token != first

        await asyncio.wait_for(poll_until(renewed), 3.0)
        assert adapter.rest.reauths == 0
        await asyncio.wait_for(poll_until(lambda: short_token_sim.tokens.lookup(first) is None), 3.0)
        await adapter.place(PlaceOrder("f1", "ren-1", "ESZ6", Side.BUY, 1))
        assert adapter.rest.reauths == 0
    finally:
        await adapter.disconnect()


async def test_penalty_ticket_waits_and_resends_with_ticket(adapter: TradovateAdapter, sim: TradovateSimulator) -> None:
    sim.faults(ACCT).rate_limit_next = 1
    started = time.monotonic()
    await adapter.place(PlaceOrder("f1", "pen-1", "ESZ6", Side.BUY, 1))
    assert time.monotonic() - started >= 0.9  # p-time is 1 s
    placed = [body for ep, body in sim.api.calls if ep == "order/placeorder"]
    assert len(placed) == 2 and "p-ticket" not in placed[0] and placed[1]["p-ticket"]
    assert {k: v for k, v in placed[1].items() if k != "p-ticket"} == placed[0]
    assert orders_with(sim, "pen-1") == 1


async def test_429_surfaces_as_rate_limited_and_zero_headroom() -> None:
    simulator = create_simulator(tick_ms=20, rate_limit_reply="429")
    await simulator.start()
    adapter = TradovateAdapter(session_config(simulator))
    try:
        await adapter.connect()
        assert adapter.health().rate_headroom > 0.9
        simulator.faults(ACCT).rate_limit_next = 1
        with pytest.raises(RateLimited) as info:
            await adapter.place(PlaceOrder("f1", "429-1", "ESZ6", Side.BUY, 1))
        assert info.value.retry_after and info.value.retry_after >= 3600
        assert adapter.health().rate_headroom == 0.0
    finally:
        await adapter.disconnect()
        await simulator.stop()


async def test_drop_connection_reconnects_resyncs_and_reports_missed_events(
    make_adapter,
    sim: TradovateSimulator,  # type: ignore[no-untyped-def]
) -> None:
    adapter: TradovateAdapter = await make_adapter(reconnect_initial_s=0.5)
    sub, fills, orders = adapter.events(), adapter.events(), adapter.events()
    await adapter.place(PlaceOrder("f1", "before-drop", "ESZ6", Side.BUY, 1))
    sim.faults(ACCT).drop_connection = True
    await next_event(sub, lambda e: isinstance(e, ConnectionEvent) and e.state is ConnectionState.CONNECTING)
    # While the socket is down, the order still goes through REST; its pushes are lost.
    ack = await adapter.place(PlaceOrder("f1", "during-drop", "ESZ6", Side.SELL, 1))
    await next_event(sub, lambda e: isinstance(e, ConnectionEvent) and e.state is ConnectionState.CONNECTED)
    assert sim.connections_opened == 2
    missed = await next_event(fills, lambda e: isinstance(e, FillEvent) and e.client_order_id == "during-drop")
    assert missed.broker_order_id == ack.broker_order_id
    accepted = await next_event(orders, lambda e: isinstance(e, OrderEvent) and e.client_order_id == "during-drop")
    assert accepted.broker_order_id == ack.broker_order_id
    # The clOrdId map survived: cancel-by-client-id still resolves after the resync.
    assert adapter.cache.order_for(sim.account_id(ACCT), "during-drop") is not None


async def test_ack_delay_is_waited_out(adapter: TradovateAdapter, sim: TradovateSimulator) -> None:
    sim.faults(ACCT).ack_delay_ms = 300
    started = time.monotonic()
    await adapter.place(PlaceOrder("f1", "slow-1", "ESZ6", Side.BUY, 1))
    assert time.monotonic() - started >= 0.29
    assert orders_with(sim, "slow-1") == 1


async def test_penalised_resync_waits_p_time_and_resends_with_the_ticket(
    make_adapter,
    sim: TradovateSimulator,  # type: ignore[no-untyped-def]
) -> None:
    adapter: TradovateAdapter = await make_adapter(reconnect_initial_s=0.1)
    sub = adapter.events()
    before = len(sim.api.calls)
    sim.faults(ACCT).rate_limit_next = 1  # the next request (the resync) answers a penalty ticket
    sim.faults(ACCT).drop_connection = True
    await next_event(sub, lambda e: isinstance(e, ConnectionEvent) and e.state is ConnectionState.CONNECTING)
    await next_event(sub, lambda e: isinstance(e, ConnectionEvent) and e.state is ConnectionState.CONNECTED)
    syncs = [body for endpoint, body in sim.api.calls[before:] if endpoint == "user/syncrequest"]
    assert len(syncs) == 2 and "p-ticket" not in syncs[0] and syncs[1]["p-ticket"]
    assert sim.connections_opened == 2  # waited out on the same socket, not by reconnecting

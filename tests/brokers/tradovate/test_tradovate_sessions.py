"""Sessions and logins: two sessions per user, renewal before re-login, per-user visibility,
credential shapes, both bad-login answers, the WebSocket limit and the heartbeat TTL."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import aiohttp
import pytest
from tradovate_helpers import next_event, poll_until, session_config

from copytrader.brokers.deadline import copy_deadline
from copytrader.brokers.errors import AuthenticationFailed, BrokerUnavailable
from copytrader.brokers.model import ConnectionEvent, ConnectionState, FillEvent, PlaceOrder, Side
from copytrader.brokers.simkernel.logins import SimLogin
from copytrader.brokers.tradovate import codec
from copytrader.brokers.tradovate.adapter import TradovateAdapter
from copytrader.brokers.tradovate.simulator import TradovateSimulator, create_simulator

ACCT = "DEMO1001"
LOGIN_FIELDS = ("name", "password", "appId", "appVersion", "cid", "sec", "deviceId")


async def wait_until(check: Callable[[], bool], within: float = 5.0) -> None:
    await asyncio.wait_for(poll_until(check), within)


async def token_request(http: aiohttp.ClientSession, sim: TradovateSimulator, **override: Any) -> tuple[int, Any]:
    creds = sim.demo_credentials()
    body = {**{k: creds[k] for k in LOGIN_FIELDS}, **override}
    reply = await http.post(f"{sim.base_url}/auth/accesstokenrequest", json=body)
    return reply.status, await reply.json(content_type=None) if reply.status == 200 else await reply.text()


async def authorized_socket(
    http: aiohttp.ClientSession, sim: TradovateSimulator, token: str
) -> aiohttp.ClientWebSocketResponse:
    ws = await http.ws_connect(sim.ws_url)
    assert await ws.receive_str() == "o"
    await ws.send_str(f"authorize\n0\n\n{token}")
    while True:
        frame = codec.decode_server_frame(await asyncio.wait_for(ws.receive_str(), 5))
        if isinstance(frame, codec.DataFrame):
            assert frame.items[0].status == 200  # type: ignore[union-attr]
            return ws


async def closes(ws: aiohttp.ClientWebSocketResponse, within: float = 5.0) -> None:
    """Read (server ``h`` beats and all) until the server closes the socket."""

    async def read() -> None:
        while (await ws.receive()).type not in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED):
            pass

    await asyncio.wait_for(read(), within)


async def test_third_token_request_ends_the_oldest_session(sim: TradovateSimulator) -> None:
    async with aiohttp.ClientSession() as http:
        tokens = [(await token_request(http, sim))[1]["accessToken"] for _ in range(2)]
        ws = await authorized_socket(http, sim, tokens[0])
        assert all(sim.tokens.lookup(t) for t in tokens)
        third = (await token_request(http, sim))[1]["accessToken"]
        assert sim.tokens.lookup(tokens[0]) is None  # the oldest session's token stops working
        assert sim.tokens.lookup(tokens[1]) and sim.tokens.lookup(third)
        denied = await http.get(f"{sim.base_url}/account/list", headers={"Authorization": f"Bearer {tokens[0]}"})
        assert denied.status == 401
        await closes(ws)  # and its socket is closed
        assert len(sim.open_sessions("demo-trader")) == 2


async def test_renewal_keeps_the_session(sim: TradovateSimulator) -> None:
    async with aiohttp.ClientSession() as http:
        first = (await token_request(http, sim))[1]["accessToken"]
        renewed = await (
            await http.get(f"{sim.base_url}/auth/renewaccesstoken", headers={"Authorization": f"Bearer {first}"})
        ).json()
        assert renewed["accessToken"] != first
        assert sim.tokens.sessions_opened == 1 and len(sim.open_sessions("demo-trader")) == 1


async def test_adapter_recovers_its_session_without_a_login_loop(make_adapter, sim: TradovateSimulator) -> None:  # type: ignore[no-untyped-def]
    adapter: TradovateAdapter = await make_adapter()
    sub, fills = adapter.events(), adapter.events()
    assert adapter.rest is not None and adapter.rest.logins == 1
    async with aiohttp.ClientSession() as http:  # the trader's other app logs in twice
        for _ in range(2):
            assert (await token_request(http, sim))[0] == 200
    await next_event(sub, lambda e: isinstance(e, ConnectionEvent) and e.state is ConnectionState.CONNECTING)
    await next_event(sub, lambda e: isinstance(e, ConnectionEvent) and e.state is ConnectionState.CONNECTED)
    ack = await adapter.place(PlaceOrder("f1", "sess-1", "ESZ6", Side.BUY, 1))
    fill = await next_event(fills, lambda e: isinstance(e, FillEvent) and e.client_order_id == "sess-1")
    assert fill.broker_order_id == ack.broker_order_id
    # One recovery: a renewal was tried first (the session was gone), then exactly one login.
    calls = [ep for ep, _ in sim.api.calls if ep.startswith("auth/")]
    assert calls.count("auth/renewaccesstoken") == 1 and adapter.rest.logins == 2
    assert sim.tokens.sessions_opened == 4


async def test_401_renews_before_logging_in_again(adapter: TradovateAdapter, sim: TradovateSimulator) -> None:
    sim.faults(ACCT).expire_token = True
    before = len(sim.api.calls)
    await adapter.place(PlaceOrder("f1", "r401-1", "ESZ6", Side.BUY, 1))
    after = [ep for ep, _ in sim.api.calls[before:]]
    assert after.index("auth/renewaccesstoken") < after.index("auth/accesstokenrequest")
    assert after.count("order/placeorder") == 2  # the 401'd request did not run; resent once
    assert sum(1 for o in sim.exchange.account(ACCT).orders.values() if o.client_order_id == "r401-1") == 1


async def test_login_budget_stops_relogin_within_a_copy_deadline(make_adapter, sim: TradovateSimulator) -> None:  # type: ignore[no-untyped-def]
    adapter: TradovateAdapter = await make_adapter(login_budget=[1, 60])
    sim.faults(ACCT).expire_token = True
    with copy_deadline(1.0), pytest.raises(BrokerUnavailable) as info:
        await adapter.place(PlaceOrder("f1", "budget-1", "ESZ6", Side.BUY, 1))
    assert info.value.sent is False and info.value.code == "login-budget"
    assert sim.tokens.sessions_opened == 1  # no second session was opened
    assert not sim.exchange.account(ACCT).orders


@pytest.mark.parametrize(
    "override", [{"deviceId": "my-laptop"}, {"sec": "not-a-uuid"}, {"cid": "eight"}, {"password": "wrong"}]
)
async def test_credentials_are_checked_in_the_real_shapes(sim: TradovateSimulator, override: dict[str, Any]) -> None:
    async with aiohttp.ClientSession() as http:
        status, body = await token_request(http, sim, **override)
        assert status == 200 and body["errorText"] and "accessToken" not in body
        status, body = await token_request(http, sim, cid=str(sim.demo_credentials()["cid"]))
        assert status == 200 and body["accessToken"]  # a numeric string cid is still an integer


@pytest.mark.parametrize("reply", ["errorText", "401"])
async def test_both_bad_login_answers_raise_authentication_failed(reply: str) -> None:
    simulator = create_simulator(tick_ms=20, bad_login_reply=reply)
    await simulator.start()
    adapter = TradovateAdapter(session_config(simulator, password="wrong"))
    try:
        with pytest.raises(AuthenticationFailed) as info:
            await adapter.connect()
        assert "Incorrect username or password" in str(info.value)
        assert info.value.retriable is False
    finally:
        await adapter.disconnect()
        await simulator.stop()


async def test_each_login_sees_and_trades_only_its_accounts() -> None:
    logins = [SimLogin("firm-a", "pw-a", ("A-1",)), SimLogin("firm-b", "pw-b", ("B-1", "B-2"))]
    simulator = create_simulator(tick_ms=20, logins=logins)
    await simulator.start()
    try:
        async with aiohttp.ClientSession() as http:
            creds = simulator.credentials_for("firm-a")
            body = {k: creds[k] for k in LOGIN_FIELDS}
            token = await (await http.post(f"{simulator.base_url}/auth/accesstokenrequest", json=body)).json()
            headers = {"Authorization": f"Bearer {token['accessToken']}"}
            listed = await (await http.get(f"{simulator.base_url}/account/list", headers=headers)).json()
            assert [a["name"] for a in listed] == ["A-1"] and listed[0]["userId"] == token["userId"]
            foreign = {
                "accountSpec": "B-1",
                "accountId": simulator.account_id("B-1"),
                "action": "Buy",
                "symbol": "ESZ6",
                "orderQty": 1,
                "orderType": "Market",
                "isAutomated": True,
            }
            refused = await (
                await http.post(f"{simulator.base_url}/order/placeorder", json=foreign, headers=headers)
            ).json()
            assert refused["failureReason"] == "Unauthorized" and not simulator.exchange.account("B-1").orders
        config = replace(
            session_config(simulator), username="firm-a", secret="pw-a", accounts={"f1": "A-1", "f2": "B-1"}
        )
        adapter = TradovateAdapter(config)
        with pytest.raises(AuthenticationFailed, match="B-1"):  # not visible to firm-a's login
            await adapter.connect()
        await adapter.disconnect()
    finally:
        await simulator.stop()


async def test_websocket_limit_closes_the_oldest_and_revokes_its_token() -> None:
    simulator = create_simulator(tick_ms=20, max_sockets_per_user=2)
    await simulator.start()
    try:
        async with aiohttp.ClientSession() as http:
            tokens = [(await token_request(http, simulator))[1]["accessToken"] for _ in range(2)]
            first = await authorized_socket(http, simulator, tokens[0])
            others = [await authorized_socket(http, simulator, tokens[1]) for _ in range(2)]
            await closes(first, within=2.0)  # well before the heartbeat TTL
            assert simulator.tokens.lookup(tokens[0]) is None and simulator.tokens.lookup(tokens[1])
            assert not any(ws.closed for ws in others)
    finally:
        await simulator.stop()


async def test_silent_socket_is_closed_after_the_ttl_and_a_beating_one_is_not() -> None:
    simulator = create_simulator(tick_ms=20, heartbeat_s=0.2, client_ttl_s=0.6)
    await simulator.start()
    try:
        async with aiohttp.ClientSession() as http:
            token = (await token_request(http, simulator))[1]["accessToken"]
            silent = await authorized_socket(http, simulator, token)
            beating = await authorized_socket(http, simulator, token)

            async def beat() -> None:
                while True:
                    await beating.send_str("[]")
                    await asyncio.sleep(0.1)

            beats = asyncio.get_running_loop().create_task(beat())
            try:
                await closes(silent)
            finally:
                beats.cancel()
            assert simulator.closed_for_silence == 1 and not beating.closed
    finally:
        await simulator.stop()


async def test_lost_heartbeats_close_the_socket_and_the_adapter_resyncs() -> None:
    simulator = create_simulator(tick_ms=20, heartbeat_s=0.2, client_ttl_s=0.8)
    await simulator.start()
    adapter = TradovateAdapter(session_config(simulator, heartbeat_s=0.2))
    try:
        await adapter.connect()
        sub, fills = adapter.events(), adapter.events()
        simulator.faults(ACCT).lose_heartbeats = True
        await next_event(sub, lambda e: isinstance(e, ConnectionEvent) and e.state is ConnectionState.CONNECTING)
        ack = await adapter.place(PlaceOrder("f1", "hb-1", "ESZ6", Side.BUY, 1))  # REST while the socket is down
        await next_event(sub, lambda e: isinstance(e, ConnectionEvent) and e.state is ConnectionState.CONNECTED)
        fill = await next_event(fills, lambda e: isinstance(e, FillEvent) and e.client_order_id == "hb-1")
        assert fill.broker_order_id == ack.broker_order_id
        assert simulator.closed_for_silence == 1 and adapter.socket is not None and adapter.socket.connects == 2
        assert adapter.rest is not None and adapter.rest.logins == 1  # the token was reused
    finally:
        await adapter.disconnect()
        await simulator.stop()


async def test_reconnecting_the_adapter_reuses_its_session(adapter: TradovateAdapter, sim: TradovateSimulator) -> None:
    await adapter.disconnect()
    await adapter.connect()
    await adapter.place(PlaceOrder("f1", "again-1", "ESZ6", Side.BUY, 1))
    assert sim.tokens.sessions_opened == 1 and adapter.rest is not None and adapter.rest.logins == 1

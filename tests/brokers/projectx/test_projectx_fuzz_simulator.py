"""Fuzzing the ProjectX simulator from the client side: garbage never takes it down.

REST bodies of any bytes or shape get an answer (a 400 for what cannot be read, as ASP.NET
Core's model binding answers, never a 500). On the user hub, a record that cannot be parsed
ends that connection with a Close record ("Connection closed with an error.", as ASP.NET Core's
HubConnectionHandler sends it); an invocation whose arguments do not bind fails that invocation
only; unknown message types are ignored. The next client connects, subscribes and trades.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from projectx_helpers import next_event, session_config

from copytrader.brokers.model import FillEvent, PlaceOrder, Side
from copytrader.brokers.projectx import codec
from copytrader.brokers.projectx import schemas as px
from copytrader.brokers.projectx.adapter import ProjectXAdapter
from copytrader.brokers.projectx.simulator import ProjectXSimulator, create_simulator
from copytrader.brokers.simkernel.exchange import SimExchange

FUZZ = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
RS = codec.RS
PATHS = [
    px.ORDER_PLACE,
    px.ORDER_CANCEL,
    px.ORDER_MODIFY,
    px.ORDER_SEARCH,
    px.ORDER_SEARCH_OPEN,
    px.POSITION_SEARCH_OPEN,
    px.ACCOUNT_SEARCH,
    px.CONTRACT_SEARCH,
    px.TRADE_SEARCH,
    px.LOGIN_KEY,
]
SIMPLE = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=12))
JSON_VALUES = st.recursive(
    SIMPLE,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)),
    max_leaves=12,
)
FIELDS = ["accountId", "contractId", "type", "side", "size", "limitPrice", "orderId", "customTag", "startTimestamp"]
BODIES = st.one_of(
    st.binary(max_size=200),
    st.dictionaries(st.sampled_from(FIELDS), JSON_VALUES, max_size=6).map(lambda b: json.dumps(b).encode()),
    JSON_VALUES.map(lambda v: json.dumps(v).encode()),
    st.sampled_from([b"NaN", b"[" * 3000 + b"]" * 3000, b'{"size":1e999999}', b"9" * 5000, b"\xff\xfe"]),
)
IDS = itertools.count(1)


@pytest.fixture
async def roomy_sim() -> AsyncIterator[ProjectXSimulator]:
    """A simulator whose request budget does not get in the way of many garbage requests."""
    simulator = create_simulator(SimExchange(seed=11), tick_ms=10, keepalive_s=1.0, rate_limit=[100_000, 60])
    await simulator.start()
    yield simulator
    await simulator.stop()


async def token_of(http: aiohttp.ClientSession, sim: ProjectXSimulator) -> str:
    creds = sim.demo_credentials()
    reply = await http.post(
        sim.base_url + px.LOGIN_KEY, json={"userName": creds["userName"], "apiKey": creds["apiKey"]}
    )
    return str((await reply.json())["token"])


async def the_next_client_trades(sim: ProjectXSimulator) -> None:
    adapter = ProjectXAdapter(session_config(sim))
    await adapter.connect()
    try:
        events = adapter.events()
        await adapter.place(PlaceOrder("f1", f"after-garbage-{next(IDS)}", "ESZ6", Side.BUY, 1))
        await next_event(events, lambda e: isinstance(e, FillEvent) and (e.client_order_id or "").startswith("after"))
    finally:
        await adapter.disconnect()


@FUZZ
@given(path=st.sampled_from(PATHS), body=BODIES)
async def test_rest_garbage_is_answered_never_a_500(roomy_sim: ProjectXSimulator, path: str, body: bytes) -> None:
    async with aiohttp.ClientSession() as http:
        token = await token_of(http, roomy_sim)
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        reply = await http.post(roomy_sim.base_url + path, data=body, headers=headers)
        assert reply.status in (200, 400), (reply.status, await reply.text())
        good = await http.post(
            roomy_sim.base_url + px.ACCOUNT_SEARCH, json={"onlyActiveAccounts": True}, headers=headers
        )
        assert good.status == 200 and (await good.json())["success"]


async def hub_client(http: aiohttp.ClientSession, sim: ProjectXSimulator) -> aiohttp.ClientWebSocketResponse:
    token = await token_of(http, sim)
    ws = await http.ws_connect(f"{sim.user_hub_url}?access_token={token}")
    await ws.send_str(codec.handshake_request())
    decoder = codec.Decoder(expect_handshake="response")
    while not decoder.handshake_done:
        decoder.feed(await asyncio.wait_for(ws.receive_str(), 5))
    return ws


async def completion_or_close(ws: aiohttp.ClientWebSocketResponse, invocation_id: str) -> codec.Message:
    """The completion of ``invocation_id``, or the Close record the server sent instead."""
    decoder = codec.Decoder()
    while True:
        frame = await asyncio.wait_for(ws.receive(), 5)
        assert frame.type is aiohttp.WSMsgType.TEXT, frame
        for message in decoder.feed(frame.data):
            if message.type is codec.MessageType.CLOSE:
                return message
            if message.type is codec.MessageType.COMPLETION and message.invocation_id == invocation_id:
                return message


FRAMES: st.SearchStrategy[Any] = st.one_of(
    st.text(max_size=200).map(lambda t: t + RS),
    st.binary(max_size=100),
    JSON_VALUES.map(lambda v: json.dumps(v) + RS),
    st.builds(
        lambda target, arguments: codec.invocation(target, arguments, f"g{next(IDS)}"),
        st.sampled_from([px.SUBSCRIBE_ORDERS, px.SUBSCRIBE_TRADES, px.SUBSCRIBE_ACCOUNTS, "NoSuchMethod", ""]),
        st.lists(JSON_VALUES, max_size=3),
    ),
    st.sampled_from(['{"type":99}' + RS, '{"type":1,"target":"SubscribeOrders","arguments":7}' + RS, "[" * 3000 + RS]),
)


@FUZZ
@given(frame=FRAMES)
async def test_hub_garbage_fails_the_invocation_or_closes_that_connection_only(
    roomy_sim: ProjectXSimulator, frame: str | bytes
) -> None:
    async with aiohttp.ClientSession() as http:
        ws = await hub_client(http, roomy_sim)
        if isinstance(frame, bytes):
            await ws.send_bytes(frame)
        else:
            await ws.send_str(frame)
        await ws.send_str(codec.invocation(px.SUBSCRIBE_ACCOUNTS, [], "good"))
        answer = await completion_or_close(ws, "good")
        if answer.type is codec.MessageType.CLOSE:  # the garbage could not be parsed
            assert (answer.error or "").startswith("Connection closed with an error.")
            assert answer.allow_reconnect is False
            ws = await hub_client(http, roomy_sim)  # the next connection works
            await ws.send_str(codec.invocation(px.SUBSCRIBE_ACCOUNTS, [], "again"))
            answer = await completion_or_close(ws, "again")
        assert answer.type is codec.MessageType.COMPLETION and answer.error is None
        await ws.close()


async def test_after_all_that_garbage_the_next_client_connects_and_trades(roomy_sim: ProjectXSimulator) -> None:
    async with aiohttp.ClientSession() as http:
        token = await token_of(http, roomy_sim)
        headers = {"Authorization": f"Bearer {token}"}
        for body in (b"[" * 3000 + b"]" * 3000, b"\xff"):
            reply = await http.post(roomy_sim.base_url + px.ORDER_PLACE, data=body, headers=headers)
            assert reply.status == 400
        refused = await http.post(
            roomy_sim.base_url + px.ORDER_PLACE, data=b'{"accountId":[1],"size":"x"}', headers=headers
        )
        assert refused.status == 200 and not (await refused.json())["success"]  # no such account
        ws = await hub_client(http, roomy_sim)
        await ws.send_bytes(b"\xff\x00" + RS.encode())
        await ws.close()
    await the_next_client_trades(roomy_sim)

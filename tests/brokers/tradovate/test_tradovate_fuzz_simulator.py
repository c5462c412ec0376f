"""Fuzzing the Tradovate simulator from the client side: garbage never takes it down.

REST bodies of any bytes or shape get an answer (a 400 for what cannot be read, never a 500);
WebSocket lines that are not requests are ignored and a request with a garbage body is answered
400, on the same socket, which goes on answering; and the next client logs in and trades.
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
from tradovate_helpers import next_event, session_config

from copytrader.brokers.model import FillEvent, PlaceOrder, Side
from copytrader.brokers.tradovate import codec
from copytrader.brokers.tradovate.adapter import TradovateAdapter
from copytrader.brokers.tradovate.simulator import TradovateSimulator, create_simulator

FUZZ = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
ENDPOINTS = [
    "order/placeorder",
    "order/modifyorder",
    "order/cancelorder",
    "order/placeoso",
    "order/liquidateposition",
    "user/syncrequest",
    "auth/accesstokenrequest",
    "order/deps",
    "command/ldeps",
    "contract/find",
]
SIMPLE = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=12))
JSON_VALUES = st.recursive(
    SIMPLE,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)),
    max_leaves=12,
)
FIELDS = ["accountId", "accountSpec", "orderId", "action", "symbol", "orderQty", "orderType", "price", "accounts"]
BODY_OBJECTS = st.dictionaries(st.sampled_from(FIELDS), JSON_VALUES, max_size=6)
BODIES = st.one_of(
    st.binary(max_size=200),
    BODY_OBJECTS.map(lambda b: json.dumps(b).encode()),
    JSON_VALUES.map(lambda v: json.dumps(v).encode()),
    st.sampled_from([b"NaN", b"[" * 3000 + b"]" * 3000, b'{"orderQty":1e999999}', b"9" * 5000, b"\xff\xfe"]),
)
IDS = itertools.count(100)


@pytest.fixture
async def roomy_sim() -> AsyncIterator[TradovateSimulator]:
    """A simulator whose request limits do not get in the way of many garbage requests."""
    simulator = create_simulator(tick_ms=20, heartbeat_s=0.5, rate_limits=[[100_000, 60]], endpoint_limits={})
    await simulator.start()
    yield simulator
    await simulator.stop()


async def token_of(http: aiohttp.ClientSession, sim: TradovateSimulator) -> str:
    reply = await http.post(f"{sim.base_url}/auth/accesstokenrequest", json=sim.demo_credentials())
    return str((await reply.json())["accessToken"])


async def the_next_client_trades(sim: TradovateSimulator) -> None:
    adapter = TradovateAdapter(session_config(sim))
    await adapter.connect()
    try:
        events = adapter.events()
        await adapter.place(PlaceOrder("f1", "after-garbage", "ESZ6", Side.BUY, 1))
        await next_event(events, lambda e: isinstance(e, FillEvent) and e.client_order_id == "after-garbage")
    finally:
        await adapter.disconnect()


@FUZZ
@given(endpoint=st.sampled_from(ENDPOINTS), body=BODIES, method=st.sampled_from(["POST", "GET"]))
async def test_rest_garbage_is_answered_never_a_500(
    roomy_sim: TradovateSimulator, endpoint: str, body: bytes, method: str
) -> None:
    async with aiohttp.ClientSession() as http:
        token = await token_of(http, roomy_sim)
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        reply = await http.request(method, f"{roomy_sim.base_url}/{endpoint}", data=body, headers=headers)
        assert reply.status in (200, 400, 401, 404), (reply.status, await reply.text())
        good = await http.get(f"{roomy_sim.base_url}/account/list", headers=headers)
        assert good.status == 200 and await good.json()


async def reply_to(ws: aiohttp.ClientWebSocketResponse, request_id: int) -> codec.Response:
    while True:
        frame = codec.decode_server_frame(await asyncio.wait_for(ws.receive_str(), 5))
        for item in frame.items if isinstance(frame, codec.DataFrame) else ():
            if isinstance(item, codec.Response) and item.request_id == request_id:
                return item


LINES: st.SearchStrategy[Any] = st.one_of(
    st.text(max_size=200),
    st.binary(max_size=100),
    st.builds(
        lambda endpoint, body: f"{endpoint}\n{next(IDS)}\n\n{body}",
        st.sampled_from(ENDPOINTS),
        BODIES.map(lambda b: b.decode("utf-8", "replace")),
    ),
)


@FUZZ
@given(line=LINES)
async def test_socket_garbage_is_ignored_or_answered_and_the_socket_goes_on(
    roomy_sim: TradovateSimulator, line: str | bytes
) -> None:
    async with aiohttp.ClientSession() as http:
        token = await token_of(http, roomy_sim)
        async with http.ws_connect(roomy_sim.ws_url) as ws:
            assert await ws.receive_str() == "o"
            await ws.send_str(codec.encode_request("authorize", 0, "", token))
            assert (await reply_to(ws, 0)).status == 200
            if isinstance(line, bytes):
                await ws.send_bytes(line)
            else:
                await ws.send_str(line)
            request_id = next(IDS)
            await ws.send_str(codec.encode_request("account/list", request_id))
            reply = await reply_to(ws, request_id)
            assert reply.status == 200 and reply.data


async def test_after_all_that_garbage_the_next_client_logs_in_and_trades(roomy_sim: TradovateSimulator) -> None:
    async with aiohttp.ClientSession() as http:
        token = await token_of(http, roomy_sim)
        headers = {"Authorization": f"Bearer {token}"}
        for body in (b"[" * 3000 + b"]" * 3000, b'{"accountId":[1],"orderQty":"x"}', b"\xff"):
            reply = await http.post(f"{roomy_sim.base_url}/order/placeorder", data=body, headers=headers)
            assert reply.status == 400
        async with http.ws_connect(roomy_sim.ws_url) as ws:
            await ws.send_str('order/placeorder\n1\n\n{"accountId":{"a":1},"orderQty":[]}')
            await ws.send_bytes(b"\x00\xff")
    await the_next_client_trades(roomy_sim)

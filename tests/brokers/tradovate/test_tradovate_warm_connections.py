"""A copy finds its REST connection open (#16 item 3; ``brokers/warm_http.py``).

Measured before: the sign-in's idle REST connection was taken and upgraded by the WebSocket,
so every session's first order opened a connection (TCP, and TLS on the real platform); and
aiohttp dropped idle connections after 15 s, so did the first order after a quiet spell.
The simulator names the client connection of each REST request (``rest_requests``).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import aiohttp
import pytest
from tradovate_helpers import next_event, session_config

from copytrader.brokers.model import FillEvent, PlaceOrder, Side
from copytrader.brokers.options import check_options
from copytrader.brokers.simkernel.tls import self_signed, server_context
from copytrader.brokers.tradovate.adapter import TradovateAdapter
from copytrader.brokers.tradovate.config import TradovateConfig
from copytrader.brokers.tradovate.simulator import TradovateSimulator, create_simulator
from copytrader.brokers.warm_http import KEEPALIVE_S, WARM_EVERY_S

AdapterFactory = Callable[..., Awaitable[TradovateAdapter]]


def _connections(sim: TradovateSimulator, endpoint: str | None = None) -> set[object]:
    return {peer for name, peer in sim.rest_requests if endpoint is None or name == endpoint}


async def test_the_first_order_uses_the_connection_the_sign_in_opened(
    adapter: TradovateAdapter, sim: TradovateSimulator
) -> None:
    signed_in = _connections(sim)
    fills = adapter.events()
    await adapter.place(PlaceOrder("f1", "warm-1", "ESZ6", Side.BUY, 1))
    assert _connections(sim, "order/placeorder") <= signed_in  # no new connection for the order
    await next_event(fills, lambda e: isinstance(e, FillEvent) and e.client_order_id == "warm-1")


async def test_an_idle_session_keeps_its_connection_with_a_cheap_read(
    make_adapter: AdapterFactory, sim: TradovateSimulator
) -> None:
    adapter = await make_adapter(warm_every_s=0.3)
    await adapter.place(PlaceOrder("f1", "warm-2", "ESZ6", Side.BUY, 1))
    before = _connections(sim)
    await asyncio.sleep(1.0)  # idle: about three warming reads
    reads = [peer for name, peer in sim.rest_requests if name == "auth/me"]
    assert 2 <= len(reads) <= 4
    await adapter.place(PlaceOrder("f1", "warm-3", "ESZ6", Side.BUY, 1))
    assert _connections(sim) == before  # the reads and the next order: the same connection


async def test_a_busy_session_sends_no_warming_reads(make_adapter: AdapterFactory, sim: TradovateSimulator) -> None:
    adapter = await make_adapter(warm_every_s=0.4)
    for n in range(6):  # an order every 0.15 s: never idle 0.4 s
        await adapter.place(PlaceOrder("f1", f"busy-{n}", "ESZ6", Side.BUY, 1))
        await asyncio.sleep(0.15)
    assert not [name for name, _ in sim.rest_requests if name == "auth/me"]


async def test_warming_can_be_switched_off(make_adapter: AdapterFactory, sim: TradovateSimulator) -> None:
    await make_adapter(warm_every_s=0)
    await asyncio.sleep(0.3)
    assert not [name for name, _ in sim.rest_requests if name == "auth/me"]


@pytest.mark.parametrize("bad", [math.nan, math.inf, -1.0, 1e308, "abc", True, None])
def test_a_warming_interval_that_is_not_a_bounded_number_is_refused(bad: object) -> None:
    """Through the platform's settings schema (text numbers read as numbers there, on purpose)."""
    with pytest.raises(ValueError, match="warm_every_s"):
        check_options("tradovate", {"warm_every_s": bad})


def test_the_pool_outlives_the_warming_interval() -> None:
    """A pooled connection must still be there when the warming read comes."""
    assert WARM_EVERY_S < KEEPALIVE_S
    assert TradovateConfig("https://x/v1", "wss://x/v1/websocket", "u", "p").warm_every_s == WARM_EVERY_S


@contextlib.asynccontextmanager
async def _idle_past_the_server(
    warm_every_s: float,
) -> AsyncIterator[tuple[TradovateSimulator, TradovateAdapter, set[object]]]:
    """A simulator that closes a REST connection idle 0.6 s (a load balancer's 60 s) and an
    adapter that placed one order, then sat idle 1.5 s; with the connections used before."""
    sim = create_simulator(tick_ms=20, heartbeat_s=0.5, idle_close_s=0.6)
    await sim.start()
    adapter = TradovateAdapter(session_config(sim, warm_every_s=warm_every_s))
    try:
        await adapter.connect()
        await adapter.place(PlaceOrder("f1", "lb-1", "ESZ6", Side.BUY, 1))
        before = _connections(sim)
        await asyncio.sleep(1.5)
        yield sim, adapter, before
    finally:
        await adapter.disconnect()
        await sim.stop()


async def test_warming_reads_keep_a_connection_the_server_would_close() -> None:
    async with _idle_past_the_server(warm_every_s=0.2) as (sim, adapter, before):
        await adapter.place(PlaceOrder("f1", "lb-2", "ESZ6", Side.BUY, 1))
        assert _connections(sim) == before


async def test_a_connection_the_server_closed_is_replaced_without_doubt() -> None:
    """Warming off: the server closes the idle connection; the pool drops it, and the next
    order goes out on a new one, placed once (not a lost answer to look up)."""
    async with _idle_past_the_server(warm_every_s=0) as (sim, adapter, before):
        ack = await adapter.place(PlaceOrder("f1", "lb-2", "ESZ6", Side.BUY, 1))
        assert ack.broker_order_id and not ack.duplicate
        assert _connections(sim, "order/placeorder") - before  # a new connection
        assert [name for name, _ in sim.rest_requests].count("order/placeorder") == 2


async def test_the_simulator_speaks_tls_as_the_real_platform(tmp_path: Path) -> None:
    """HTTPS and WSS with a self-signed certificate (``scripts/rest_warmth.py`` measures a copy's
    connection cost over it); a client that does not trust it is refused."""
    cert, key = self_signed(tmp_path)
    sim = create_simulator(tick_ms=20, tls=server_context(cert, key))
    await sim.start()
    try:
        assert sim.base_url.startswith("https://") and sim.ws_url.startswith("wss://")
        trusting = ssl.create_default_context(cafile=str(cert))
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{sim.base_url}/auth/me", ssl=trusting) as answer:
                assert answer.status == 401  # spoke HTTP over TLS; no token
            with pytest.raises(aiohttp.ClientConnectorCertificateError):
                await http.get(f"{sim.base_url}/auth/me")
    finally:
        await sim.stop()

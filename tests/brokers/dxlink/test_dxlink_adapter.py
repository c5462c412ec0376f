"""The dxLink adapter: a market-data session with no order entry, and ``copytrader sim dxlink``."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import pytest
from waiting import wait_until

from copytrader.brokers import registry
from copytrader.brokers.base import SessionConfig
from copytrader.brokers.dxlink.adapter import DxLinkAdapter
from copytrader.brokers.dxlink.client import DxLinkClient
from copytrader.brokers.dxlink.events import Quote
from copytrader.brokers.dxlink.simulator import DEMO_SYMBOLS, MarketDataSimulator, create_simulator
from copytrader.brokers.errors import AuthenticationFailed, BrokerUnavailable, UnsupportedOperation
from copytrader.brokers.model import (
    CancelOrder,
    ConnectionEvent,
    ConnectionState,
    FlattenPosition,
    ModifyOrder,
    PlaceOrder,
    Side,
)
from copytrader.brokers.simkernel.exchange import SimExchange

ES = "/ESZ26:XCME"


@pytest.fixture
async def server() -> AsyncIterator[MarketDataSimulator]:
    simulator = create_simulator(SimExchange(seed=3), tick_ms=20, latency="0", logins=[])
    await simulator.start()
    try:
        yield simulator
    finally:
        await simulator.stop()


def config(server: MarketDataSimulator, **overrides: object) -> SessionConfig:
    fields: dict[str, object] = {
        "platform": "dxlink",
        "session_id": "md",
        "accounts": {},
        "endpoint": server.base_url,
        "secret": server.demo_credentials()["token"],
        "options": {"symbols": [ES], "reconnect_min_s": 0.02, "reconnect_max_s": 0.1},
    }
    fields.update(overrides)
    return SessionConfig(**fields)  # type: ignore[arg-type]  # test-built config


def test_registry_knows_the_adapter_and_its_capabilities() -> None:
    cls = registry.adapter_class("dxlink")
    assert cls is DxLinkAdapter
    caps = cls.capabilities
    assert caps.market_data and not caps.order_entry
    assert not any((caps.modify, caps.brackets, caps.oco, caps.flatten, caps.lookup, caps.partial_fills))
    assert not any((caps.snapshot, caps.fill_corrections, caps.client_id_dedupe)) and not caps.order_types
    assert registry.simulator_factory("dxlink") is create_simulator


async def test_connect_subscribes_and_reports_health(server: MarketDataSimulator) -> None:
    adapter = registry.create_adapter(config(server))
    events = adapter.events()
    try:
        await adapter.connect()
        assert adapter.health().state is ConnectionState.CONNECTED and adapter.health().platform == "dxlink"
        seen = [await asyncio.wait_for(events.__anext__(), 5) for _ in range(2)]
        assert [e.state for e in seen if isinstance(e, ConnectionEvent)] == [
            ConnectionState.CONNECTING,
            ConnectionState.CONNECTED,
        ]
        assert ("Quote", ES) in server.subscriptions() and ("Trade", ES) in server.subscriptions()
        assert isinstance(adapter, DxLinkAdapter) and adapter.client is not None
        async with asyncio.timeout(5):
            async for event in adapter.client.events():
                if isinstance(event, Quote):
                    assert event.symbol == ES and isinstance(event.bid, Decimal)
                    break
    finally:
        await adapter.disconnect()
        events.close()
    assert adapter.health().state is ConnectionState.DISCONNECTED


async def test_health_follows_the_clients_reconnects(server: MarketDataSimulator) -> None:
    adapter = registry.create_adapter(config(server))
    events = adapter.events()
    try:
        await adapter.connect()
        assert adapter.health().state is ConnectionState.CONNECTED
        server.mute_all()  # nothing more from the server: no data, no KEEPALIVE
        await server.drop_all()
        states = []
        async with asyncio.timeout(10):
            async for event in events:
                assert isinstance(event, ConnectionEvent)
                states.append(event.state)
                if states[-3:] == [ConnectionState.CONNECTED, ConnectionState.CONNECTING, ConnectionState.CONNECTED]:
                    break
        assert states[:2] == [ConnectionState.CONNECTING, ConnectionState.CONNECTED] and adapter.health().last_error
        await wait_until(lambda: ("Quote", ES) in server.subscriptions(), timeout_s=5, what="resubscribed")
    finally:
        await adapter.disconnect()
        events.close()


async def test_a_refused_token_is_authentication_failed(server: MarketDataSimulator) -> None:
    adapter = registry.create_adapter(config(server, secret="wrong"))
    with pytest.raises(AuthenticationFailed) as raised:
        await adapter.connect()
    assert not raised.value.retriable and adapter.client is None


async def test_an_unreachable_server_is_unavailable_not_sent() -> None:
    probe = create_simulator()
    await probe.start()
    url = probe.base_url
    await probe.stop()  # the port is free again: nothing listens there
    adapter = DxLinkAdapter(
        SessionConfig("dxlink", "md", {}, endpoint=url, secret="t", options={"connect_timeout_s": 0.3})
    )
    with pytest.raises(BrokerUnavailable) as raised:
        await adapter.connect()
    assert raised.value.sent is False and adapter.client is None


def test_bad_options_are_refused_when_built() -> None:
    with pytest.raises(ValueError, match="endpoint"):
        DxLinkAdapter(SessionConfig("dxlink", "md", {}))
    with pytest.raises(ValueError, match="data_format"):
        DxLinkAdapter(SessionConfig("dxlink", "md", {}, endpoint="ws://x", options={"data_format": "CSV"}))


async def test_every_order_request_is_refused_as_market_data_only() -> None:
    adapter = DxLinkAdapter(SessionConfig("dxlink", "md", {"A": "x"}, endpoint="ws://127.0.0.1:1/dxlink-ws"))
    calls = [
        adapter.place(PlaceOrder("A", "c1", "ESZ6", Side.BUY, 1)),
        adapter.modify(ModifyOrder("A", "c1", quantity=2)),
        adapter.cancel(CancelOrder("A", "c1")),
        adapter.flatten(FlattenPosition("A", "c1", "ESZ6")),
        adapter.lookup("A", "c1"),
        adapter.snapshot("A"),
    ]
    for call in calls:
        with pytest.raises(UnsupportedOperation, match="market data only"):
            await call


def test_sim_dxlink_prints_one_json_line_a_client_can_use(tmp_path: Path) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "copytrader.app.cli", "sim", "dxlink"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={"PATH": "/usr/bin:/bin", "COPYTRADER_DATA_DIR": str(tmp_path), "HOME": str(tmp_path)},
    )
    try:
        assert process.stdout is not None
        info = json.loads(process.stdout.readline())
        assert info["platform"] == "dxlink" and info["base_url"].startswith("ws://127.0.0.1:")
        assert info["symbols"] == list(DEMO_SYMBOLS) and info["token"]

        async def first_quote() -> Quote:
            async with DxLinkClient(info["base_url"], info["token"]) as client:
                await client.subscribe(info["symbols"][:1])
                async with asyncio.timeout(10):
                    async for event in client.events():
                        if isinstance(event, Quote):
                            return event
            raise AssertionError("no quote")

        quote = asyncio.run(first_quote())
        assert quote.symbol == info["symbols"][0] and quote.bid is not None
    finally:
        process.terminate()
        process.wait(10)

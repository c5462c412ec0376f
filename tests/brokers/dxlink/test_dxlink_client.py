"""Our asyncio client against the simulator: auth, keepalive, both formats, reconnects."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from dxlink_helpers import eventually

from copytrader.brokers.dxlink import protocol as p
from copytrader.brokers.dxlink.client import AuthError, DxLinkClient
from copytrader.brokers.dxlink.events import MarketEvent, Quote, Trade
from copytrader.brokers.dxlink.simulator import DEFAULT_TOKEN, DxLinkSimulator
from copytrader.brokers.instruments import instrument_for

ES, NQ, EU = "/ESZ26:XCME", "/NQZ26:XCME", "/6EZ26:XCME"


async def take(
    events: AsyncIterator[MarketEvent], count: int, where: Any = lambda e: True, timeout_s: float = 10.0
) -> list[MarketEvent]:
    """The next ``count`` events matching ``where``; fails after ``timeout_s``."""
    got: list[MarketEvent] = []
    async with asyncio.timeout(timeout_s):
        async for event in events:
            if where(event):
                got.append(event)
                if len(got) == count:
                    return got
    raise AssertionError("event stream ended")


@pytest.mark.parametrize("data_format", ["COMPACT", "FULL"])
async def test_quotes_and_trades_on_tick_in_both_formats(sim: DxLinkSimulator, data_format: p.DataFormat) -> None:
    async with DxLinkClient(sim.url, DEFAULT_TOKEN, data_format=data_format) as client:
        await client.subscribe([ES, EU])
        await client.connected()
        assert client.config is not None and client.config.dataFormat == data_format
        events = await take(client.events(), 12)
        assert {type(e) for e in events} == {Quote, Trade} and {e.symbol for e in events} == {ES, EU}
        for event in events:
            tick = instrument_for(event.symbol.strip("/").split(":")[0]).tick_size
            prices = [event.bid, event.ask] if isinstance(event, Quote) else [event.price]
            for price in prices:
                assert price is not None and price % tick == 0, (event, tick)  # Decimal, on tick
            if isinstance(event, Quote):
                assert event.bid is not None and event.ask is not None and event.bid < event.ask


async def test_requested_fields_only(sim: DxLinkSimulator) -> None:
    fields = {"Quote": ["eventSymbol", "bidPrice"], "Trade": ["eventSymbol", "price"]}
    async with DxLinkClient(sim.url, DEFAULT_TOKEN, event_fields=fields) as client:
        await client.subscribe([ES], types=["Quote"])
        quote = (await take(client.events(), 1))[0]
        assert isinstance(quote, Quote) and quote.bid is not None and quote.ask is None


async def test_bad_token_is_fatal_not_retried(sim: DxLinkSimulator) -> None:
    async with DxLinkClient(sim.url, "stolen", first_retry_s=0.01) as client:
        with pytest.raises(AuthError, match="invalid token"):
            await client.connected()
        assert client.connects == 1


async def test_missing_token_is_fatal(sim: DxLinkSimulator) -> None:
    async with DxLinkClient(sim.url, None) as client:
        with pytest.raises(AuthError, match="requires a token"):
            await client.connected()


async def test_subscribe_and_unsubscribe_while_connected(sim: DxLinkSimulator) -> None:
    async with DxLinkClient(sim.url, DEFAULT_TOKEN) as client:
        await client.connected()
        await client.subscribe([ES, NQ])
        await eventually(lambda: sim.subscriptions() == {(t, s) for t in ("Quote", "Trade") for s in (ES, NQ)})
        await take(client.events(), 1, lambda e: e.symbol == NQ)
        await client.unsubscribe([NQ])
        await eventually(lambda: sim.subscriptions() == {("Quote", ES), ("Trade", ES)})
        await client.unsubscribe([ES], types=["Trade"])
        await eventually(lambda: sim.subscriptions() == {("Quote", ES)})
        later = await take(client.events(), 20)
        assert later[-1].symbol == ES and all(isinstance(e, Quote) for e in later[-10:])


async def test_reconnect_resubscribes_everything(sim: DxLinkSimulator) -> None:
    async with DxLinkClient(sim.url, DEFAULT_TOKEN, first_retry_s=0.01, max_retry_s=0.05) as client:
        await client.subscribe([ES, EU])
        await client.connected()
        before = sim.subscriptions()
        await sim.drop_all()
        await eventually(lambda: client.connects == 2 and sim.subscriptions() == before)
        await take(client.events(), 1, lambda e: e.symbol == EU)


async def test_client_keepalives_outlive_the_timeout(sim: DxLinkSimulator) -> None:
    async with DxLinkClient(sim.url, DEFAULT_TOKEN, keepalive_s=0.5) as client:
        await client.connected()
        session = next(iter(sim.sessions))
        assert session.client_timeout_s == 0.5
        await eventually(lambda: sum(isinstance(m, p.Keepalive) for m in session.received) >= 4)
        assert client.connects == 1 and session in sim.sessions


async def test_silent_server_is_left_and_reconnected() -> None:
    async with (
        DxLinkSimulator(tick_ms=0, keepalive_s=0.5) as quiet,
        DxLinkClient(quiet.url, DEFAULT_TOKEN, keepalive_s=0.5, first_retry_s=0.01) as client,
    ):
        await client.subscribe([ES])
        await client.connected()
        quiet.mute_all()  # no data, no KEEPALIVE: after 0.5 s of silence the client gives up
        await eventually(lambda: client.connects == 2 and len(quiet.sessions) >= 1)
        await client.connected()
        assert quiet.subscriptions() == {("Quote", ES), ("Trade", ES)}


async def test_token_expiring_mid_session_is_fatal(sim: DxLinkSimulator) -> None:
    async with DxLinkClient(sim.url, DEFAULT_TOKEN, first_retry_s=0.01) as client:
        await client.subscribe([ES])
        await client.connected()
        await sim.expire_token(DEFAULT_TOKEN)
        with pytest.raises(AuthError, match="withdrew"):
            await take(client.events(), 1000)
        assert client.connects == 1  # not retried with a token the server refuses


async def test_a_bad_frame_from_the_server_is_reported_and_skipped(sim: DxLinkSimulator) -> None:
    async with DxLinkClient(sim.url, DEFAULT_TOKEN) as client:
        await client.subscribe([ES])
        await client.connected()
        await sim.send_raw_all('{"type": "FEED_DATA", "channel": 1}')  # no data
        await sim.send_raw_all('{"type": "FEED_DATA", "channel": 1, "data": ["Quote", [1]]}')  # short values
        session = next(iter(sim.sessions))
        await eventually(lambda: any(isinstance(m, p.Error) and m.error == "INVALID_MESSAGE" for m in session.received))
        await take(client.events(), 3)  # still delivering, on the same connection
        assert client.connects == 1

"""The simulator spoken to by hand: the wire order, keepalive, auth and FEED rules of the spec."""

from __future__ import annotations

import aiohttp
from dxlink_helpers import SETUP, authorized, closed, eventually, expect, feed_channel, send

from copytrader.brokers.dxlink import protocol as p
from copytrader.brokers.dxlink.simulator import DEFAULT_TOKEN, DxLinkSimulator
from copytrader.brokers.dxlink.simulator.feed import MarketData, kernel_symbol
from copytrader.brokers.simkernel.pricepath import PricePath

ES = "/ESZ26:XCME"


async def test_setup_answers_setup_then_unprompted_auth_state(
    sim: DxLinkSimulator, http: aiohttp.ClientSession
) -> None:
    async with http.ws_connect(sim.url) as ws:
        await send(ws, p.Setup(channel=0, version="0.1-DXF-JS/0.3.0", keepaliveTimeout=30, acceptKeepaliveTimeout=20))
        first = p.decode((await ws.receive()).data)
        second = p.decode((await ws.receive()).data)
        assert isinstance(first, p.Setup) and first.version.startswith("0.1")
        assert (first.keepaliveTimeout, first.acceptKeepaliveTimeout) == (20, 30)  # each side's wish honoured
        assert second == p.AuthState(channel=0, state="UNAUTHORIZED")


async def test_unsupported_version_is_refused_and_closed(sim: DxLinkSimulator, http: aiohttp.ClientSession) -> None:
    async with http.ws_connect(sim.url) as ws:
        await send(ws, p.Setup(channel=0, version="2.0-future"))
        seen = await closed(ws)
        assert [m.error for m in seen if isinstance(m, p.Error)] == ["UNSUPPORTED_PROTOCOL"]


async def test_anything_before_setup_is_a_bad_action(sim: DxLinkSimulator, http: aiohttp.ClientSession) -> None:
    async with http.ws_connect(sim.url) as ws:
        await send(ws, p.Auth(channel=0, token=DEFAULT_TOKEN))
        assert (await expect(ws, p.Error)).error == "BAD_ACTION"


async def test_bad_token_gets_error_and_stays_unauthorized(sim: DxLinkSimulator, http: aiohttp.ClientSession) -> None:
    async with http.ws_connect(sim.url) as ws:
        await send(ws, SETUP)
        await expect(ws, p.AuthState)
        await send(ws, p.Auth(channel=0, token="wrong"))
        error = await expect(ws, p.Error)
        assert error.error == "UNAUTHORIZED"
        assert (await expect(ws, p.AuthState)).state == "UNAUTHORIZED"
        await send(ws, p.ChannelRequest(channel=1, service="FEED"))
        assert (await expect(ws, p.Error)).error == "UNAUTHORIZED"


async def test_auth_not_required_still_sends_auth_state(http: aiohttp.ClientSession) -> None:
    async with DxLinkSimulator(auth_required=False, tick_ms=0) as open_sim, http.ws_connect(open_sim.url) as ws:
        await send(ws, SETUP)
        assert (await expect(ws, p.AuthState)).state == "AUTHORIZED"


async def test_silent_client_is_dropped_after_its_keepalive_timeout(
    sim: DxLinkSimulator, http: aiohttp.ClientSession
) -> None:
    async with http.ws_connect(sim.url) as ws:
        await send(ws, p.Setup(channel=0, version="0.1", keepaliveTimeout=1, acceptKeepaliveTimeout=60))
        seen = await closed(ws, timeout_s=5)
        errors = [m for m in seen if isinstance(m, p.Error)]
        assert [e.error for e in errors] == ["TIMEOUT"]


async def test_keepalives_keep_a_client_connected(http: aiohttp.ClientSession) -> None:
    async with DxLinkSimulator(tick_ms=0, keepalive_s=0.4) as quick, http.ws_connect(quick.url) as ws:
        await authorized(ws, DEFAULT_TOKEN)
        for _ in range(6):  # 6 × the server's keepalive answer ≥ 3 × its timeout of 0.4 s
            await expect(ws, p.Keepalive, timeout_s=1)  # the server keeps itself alive too
            await send(ws, p.Keepalive(channel=0))
        assert not ws.closed and len(quick.sessions) == 1


async def test_client_without_setup_is_dropped(http: aiohttp.ClientSession) -> None:
    async with DxLinkSimulator(tick_ms=0, setup_timeout_s=0.3) as strict, http.ws_connect(strict.url) as ws:
        seen = await closed(ws)
        assert [m.error for m in seen if isinstance(m, p.Error)] == ["TIMEOUT"]


async def test_invalid_frames_are_answered_and_survived(sim: DxLinkSimulator, http: aiohttp.ClientSession) -> None:
    async with http.ws_connect(sim.url) as ws:
        await ws.send_str('{"type": "PLACE_ORDER", "channel": 0}')
        assert "unknown message type" in (await expect(ws, p.Error)).message
        await ws.send_bytes(b"\x00")
        assert (await expect(ws, p.Error)).error == "INVALID_MESSAGE"
        await authorized(ws, DEFAULT_TOKEN)  # the connection is still usable


async def test_only_feed_on_odd_channels(sim: DxLinkSimulator, http: aiohttp.ClientSession) -> None:
    async with http.ws_connect(sim.url) as ws:
        await authorized(ws, DEFAULT_TOKEN)
        await send(ws, p.ChannelRequest(channel=2, service="FEED"))
        assert (await expect(ws, p.Error)).channel == 2
        await send(ws, p.ChannelRequest(channel=3, service="DOM"))
        assert (await expect(ws, p.Error)).error == "BAD_ACTION"
        await send(ws, p.ChannelRequest(channel=5, service="FEED"))
        assert (await expect(ws, p.ChannelOpened)).channel == 5
        await send(ws, p.ChannelCancel(channel=5))
        assert (await expect(ws, p.ChannelClosed)).channel == 5


async def test_compact_sends_one_event_type_per_message_in_config_order(
    sim: DxLinkSimulator, http: aiohttp.ClientSession
) -> None:
    async with http.ws_connect(sim.url) as ws:
        await authorized(ws, DEFAULT_TOKEN)
        fields = {"Quote": ["eventSymbol", "bidPrice", "noSuchField", "askPrice"], "Trade": ["eventSymbol", "price"]}
        config = await feed_channel(ws, "COMPACT", fields)
        assert config.dataFormat == "COMPACT"
        assert config.eventFields is not None and config.eventFields["Quote"] == ["eventSymbol", "bidPrice", "askPrice"]
        await send(
            ws, p.FeedSubscription(channel=1, add=[p.Subscription(type=t, symbol=ES) for t in ("Quote", "Trade")])
        )
        kinds: set[str] = set()
        while kinds != {"Quote", "Trade"}:
            data = (await expect(ws, p.FeedData)).data
            assert len(data) == 2 and data[0] in ("Quote", "Trade")
            width = len(config.eventFields[data[0]])
            assert len(data[1]) % width == 0 and data[1][0] == ES
            kinds.add(data[0])


async def test_full_events_and_reset_unsubscribes(sim: DxLinkSimulator, http: aiohttp.ClientSession) -> None:
    async with http.ws_connect(sim.url) as ws:
        await authorized(ws, DEFAULT_TOKEN)
        await feed_channel(ws, "FULL")
        await send(ws, p.FeedSubscription(channel=1, add=[p.Subscription(type="Trade", symbol=ES)]))
        event = (await expect(ws, p.FeedData)).data[0]
        assert event["eventType"] == "Trade" and event["eventSymbol"] == ES and event["price"] > 0
        assert sim.subscriptions() == {("Trade", ES)}
        await send(ws, p.FeedSubscription(channel=1, reset=True, add=[p.Subscription(type="Quote", symbol=ES)]))
        await eventually(lambda: sim.subscriptions() == {("Quote", ES)})  # reset first, then add
        await send(ws, p.FeedSubscription(channel=1, remove=[p.Subscription(type="Quote", symbol=ES)]))
        await eventually(lambda: sim.subscriptions() == set())


def test_dxfeed_futures_symbols_map_to_the_instrument_table() -> None:
    assert kernel_symbol("/ESZ26:XCME") == "ESZ26"
    assert kernel_symbol("/6EZ26:XCME") == "6EZ26"
    assert kernel_symbol("/YMZ26") == "YMZ26"
    assert kernel_symbol("AAPL") is None and kernel_symbol("/ES Z26") is None


def test_price_path_is_deterministic_per_seed() -> None:
    def walk(seed: int) -> list[object]:
        market = MarketData(PricePath(seed=seed), lambda: 0)
        return [e["price"] for _ in range(20) for e in market.step({ES}) if e["eventType"] == "Trade"]

    assert walk(3) == walk(3)
    assert walk(3) != walk(4)
    assert all(price % 0.25 == 0 for price in walk(3))


async def test_unknown_symbols_get_no_data(http: aiohttp.ClientSession) -> None:
    async with DxLinkSimulator(tick_ms=0) as still, http.ws_connect(still.url) as ws:
        await authorized(ws, DEFAULT_TOKEN)
        await feed_channel(ws, "FULL")
        subs = [p.Subscription(type="Trade", symbol=s) for s in ("AAPL", ES)]
        await send(ws, p.FeedSubscription(channel=1, add=subs))
        data = (await expect(ws, p.FeedData)).data
        assert [e["eventSymbol"] for e in data] == [ES]  # the snapshot names only the listed future
        await still.tick()
        assert [e["eventSymbol"] for e in (await expect(ws, p.FeedData)).data] == [ES]


async def test_expired_token_unauthorizes_live_sessions(sim: DxLinkSimulator, http: aiohttp.ClientSession) -> None:
    async with http.ws_connect(sim.url) as ws:
        await authorized(ws, DEFAULT_TOKEN)
        await feed_channel(ws, "FULL")
        await sim.expire_token(DEFAULT_TOKEN)
        assert (await expect(ws, p.AuthState)).state == "UNAUTHORIZED"
        await send(ws, p.FeedSubscription(channel=1, add=[p.Subscription(type="Quote", symbol=ES)]))
        assert (await expect(ws, p.Error)).error == "BAD_ACTION"  # its channels are gone
        await send(ws, p.Auth(channel=0, token=DEFAULT_TOKEN))
        assert (await expect(ws, p.Error)).error == "UNAUTHORIZED"  # and the token no longer works

"""The worker's price feed against the dxLink simulator: quotes under our symbols, health
reported once per state change (not per retry), a refused token survived."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import pytest
from waiting import wait_until

from copytrader.agents.shared.outbox import MemoryOutbox
from copytrader.agents.shared.price_feed import PriceFeed, feed_account, health_reporter
from copytrader.brokers.dxlink.client import BadFrameListener, DxLinkClient, StateListener
from copytrader.brokers.dxlink.simulator import DEFAULT_TOKEN, DxLinkSimulator
from copytrader.brokers.instruments import instrument_for
from copytrader.brokers.model import ConnectionState
from copytrader.core.config import MarketDataConfig
from copytrader.core.quotes import QuoteBook

C, D = ConnectionState.CONNECTING, ConnectionState.CONNECTED


@pytest.fixture
async def sim() -> AsyncIterator[DxLinkSimulator]:
    simulator = DxLinkSimulator(tick_ms=20, seed=11)
    await simulator.start()
    try:
        yield simulator
    finally:
        await simulator.stop()


def fast_client(config: MarketDataConfig, on_state: StateListener, on_bad: BadFrameListener) -> DxLinkClient:
    return DxLinkClient(
        config.endpoint, config.token, on_state=on_state, on_bad_frame=on_bad, first_retry_s=0.05, max_retry_s=0.1
    )


def market(url: str, token: str | None = DEFAULT_TOKEN) -> MarketDataConfig:
    # Two of our symbols priced from one dxFeed symbol, and one of their own.
    return MarketDataConfig(
        "dxlink", url, token, {"ESZ6": "/ESZ26:XCME", "ESH7": "/ESZ26:XCME", "NQZ6": "/NQZ26:XCME"}, 5.0
    )


async def running(feed: PriceFeed) -> asyncio.Task[None]:
    return asyncio.get_running_loop().create_task(feed.run())


async def stop(task: asyncio.Task[None]) -> None:
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_quotes_and_trades_reach_the_book_under_our_symbols(sim: DxLinkSimulator) -> None:
    book = QuoteBook()
    feed = PriceFeed(market(sim.url), book, client_factory=fast_client)
    task = await running(feed)
    try:
        for symbol in ("ESZ6", "ESH7", "NQZ6"):
            quote = await wait_until(
                lambda s=symbol: (q := book.fresh(s)) and q.bid and q.ask and q.last and q,  # type: ignore[misc]
                timeout_s=10,
                what=f"a full quote for {symbol}",
            )
            tick = instrument_for(symbol).tick_size
            assert isinstance(quote.bid, Decimal) and quote.bid < quote.ask and quote.last % tick == 0
        assert book.latest("/ESZ26:XCME") is None  # only our symbols are kept
    finally:
        await stop(task)


async def test_health_is_reported_once_per_state_change_not_per_retry(
    sim: DxLinkSimulator, caplog: pytest.LogCaptureFixture
) -> None:
    reports: list[tuple[ConnectionState, str | None]] = []
    feed = PriceFeed(market(sim.url), QuoteBook(), lambda s, r: reports.append((s, r)), client_factory=fast_client)
    task = await running(feed)
    try:
        await wait_until(lambda: [s for s, _ in reports] == [C, D], timeout_s=10, what="connected")
        port = sim.port
        caplog.set_level(logging.WARNING, logger="copytrader.common.retrying")
        await sim.stop()  # the server is gone: every reconnect attempt is refused
        await wait_until(
            lambda: sum("retrying" in r.getMessage() for r in caplog.records) >= 3, timeout_s=10, what="3 retries"
        )
        assert [s for s, _ in reports] == [C, D, C] and reports[-1][1]  # one report for all those retries
        again = DxLinkSimulator(port=port, tick_ms=20)
        await again.start()
        try:
            await wait_until(lambda: [s for s, _ in reports] == [C, D, C, D], timeout_s=10, what="reconnected")
            book_before = feed.quotes.latest("ESZ6")
            await wait_until(
                lambda: (q := feed.quotes.latest("ESZ6")) is not None and q is not book_before,
                timeout_s=10,
                what="prices again",
            )
        finally:
            await again.stop()
    finally:
        await stop(task)


async def test_a_refused_token_is_reported_once_and_retried(sim: DxLinkSimulator) -> None:
    reports: list[tuple[ConnectionState, str | None]] = []
    attempts: list[DxLinkClient] = []

    def counting(config: MarketDataConfig, on_state: StateListener, on_bad: BadFrameListener) -> DxLinkClient:
        attempts.append(fast_client(config, on_state, on_bad))
        return attempts[-1]

    feed = PriceFeed(
        market(sim.url, "wrong"), QuoteBook(), lambda s, r: reports.append((s, r)), client_factory=counting
    )
    feed.retry_after_s = 0.05
    task = await running(feed)
    try:
        await wait_until(lambda: len(attempts) >= 3, timeout_s=10, what="three tries")
        # Three tries, one report of the failure: retries that fail the same way are not news.
        assert [s for s, _ in reports] == [C, ConnectionState.DISCONNECTED]
        assert "AuthError" in (reports[1][1] or "")
        sim.tokens.add("wrong")  # the issuer's token is valid again: the next try succeeds
        await wait_until(lambda: reports[-1][0] is D, timeout_s=10, what="connected at last")
        assert [s for s, _ in reports] == [C, ConnectionState.DISCONNECTED, D]
    finally:
        await stop(task)


async def test_health_reports_travel_the_sessions_health_path() -> None:
    outbox = MemoryOutbox()
    ctx = SimpleNamespace(settings=SimpleNamespace(app_id="copytrader-front"), outbox=outbox)
    report = health_reporter(ctx, "dxlink")  # type: ignore[arg-type]  # the two fields it reads
    report(ConnectionState.CONNECTING, "ConnectionLost: gone")
    await wait_until(lambda: outbox.sent["health"], timeout_s=5, what="a health record")
    status = outbox.sent["health"][0]
    assert status.account_id == feed_account("copytrader-front") == "market-data@copytrader-front"
    assert (status.platform, status.connection, status.last_error) == ("dxlink", "connecting", "ConnectionLost: gone")


MARKET = {"platform": "dxlink", "endpoint": "ws://127.0.0.1:1/dxlink-ws", "symbols": {"ESZ6": "/ESZ26:XCME"}}


@pytest.mark.parametrize("role", ["fanout", "track", "web"])
def test_every_price_reading_role_gets_a_book_and_a_feed(make_app: Any, role: str) -> None:
    config = {"sessions": [], "accounts": [], "copy_groups": [], "market_data": {**MARKET, "max_age_s": 2}}
    app = make_app(config, (role,))
    assert app.runtime.quotes is not None and app.runtime.quotes.max_age_s == 2
    assert any(getattr(task, "__name__", "") == "price_feed" for task in app._app_tasks)


@pytest.mark.parametrize(("roles", "market"), [(("execute", "ingest", "store"), MARKET), (("fanout", "web"), None)])
def test_no_book_where_no_prices_are_read_or_configured(make_app: Any, roles: tuple[str, ...], market: Any) -> None:
    config: dict[str, Any] = {"sessions": [], "accounts": [], "copy_groups": []}
    if market:
        config["market_data"] = market
    app = make_app(config, roles)
    assert app.runtime.quotes is None
    assert not any(getattr(task, "__name__", "") == "price_feed" for task in app._app_tasks)


class NotStartedYet(MemoryOutbox):
    """A producer that refuses the first sends, as Faust's does before it has started."""

    def __init__(self, refusals: int) -> None:
        super().__init__()
        self.refusals = refusals

    async def health(self, status: Any) -> None:
        if self.refusals:
            self.refusals -= 1
            raise RuntimeError("Producer service not yet started")
        await super().health(status)


async def test_a_report_the_producer_refused_is_sent_later_as_the_latest_state() -> None:
    outbox = NotStartedYet(refusals=3)
    ctx = SimpleNamespace(settings=SimpleNamespace(app_id="front"), outbox=outbox)
    report = health_reporter(ctx, "dxlink", retry_s=0.01)  # type: ignore[arg-type]
    report(ConnectionState.CONNECTING, None)
    report(ConnectionState.CONNECTED, None)  # newer: supersedes the one not sent yet
    await wait_until(lambda: outbox.sent["health"], timeout_s=5, what="a health record")
    await wait_until(lambda: outbox.refusals == 0, timeout_s=5, what="refusals used up")
    assert [s.connection for s in outbox.sent["health"]] == ["connected"]


async def test_a_malformed_frame_is_reported_with_its_raw_text_and_the_feed_goes_on(sim: DxLinkSimulator) -> None:
    reports: list[tuple[ConnectionState, str | None]] = []
    clock = [0.0]
    book = QuoteBook()
    feed = PriceFeed(
        market(sim.url), book, lambda s, r: reports.append((s, r)), client_factory=fast_client, clock=lambda: clock[0]
    )
    task = await running(feed)
    try:
        await wait_until(lambda: reports and reports[-1][0] is D, timeout_s=10, what="connected")
        await sim.send_raw_all('{"type": "FEED_DATA", "channel": 1, "data": ["Quote", [1, 2, 3]]}' + "x" * 500)
        await wait_until(lambda: len(reports) == 3, timeout_s=5, what="a bad-frame report")
        state, reason = reports[-1]
        assert state is D and reason is not None and "bad frame #1 from dxlink" in reason
        assert '{"type": "FEED_DATA"' in reason and reason.endswith("…)") and len(reason) < 600  # raw, truncated
        await sim.send_raw_all("not json at all")  # within the minute: counted, not reported
        await wait_until(lambda: feed.bad_frames == 2, timeout_s=5, what="the second bad frame counted")
        clock[0] += 61
        await sim.send_raw_all('{"type": "FEED_DATA", "channel": 1, "data": ["Quote", [1]]}')
        await wait_until(lambda: len(reports) == 4, timeout_s=5, what="the next minute's report")
        assert "bad frame #3" in (reports[-1][1] or "")
        # The connection survived: prices still arrive.
        before = book.latest("ESZ6")
        await wait_until(lambda: book.latest("ESZ6") is not before, timeout_s=5, what="prices after bad frames")
        assert sim.connections == 1
    finally:
        await stop(task)

"""The worker's price feed: one dxLink connection that keeps ``ctx.quotes`` current.

Every role that reads prices (fan-out's price band, tracking, the web's marks and chart) runs
one, so no stage waits on another process for a price. The feed is its own task: the copy path
never awaits it, and a lost connection costs only freshness (readers ask
:meth:`QuoteBook.fresh`, which goes ``None`` once quotes age past ``max_age_s``). The client
reconnects and resubscribes by itself; the feed reports its health on the sessions' health
path (``broker.health`` → tracker → ``account.status``) once per change of state, never per
retry, under the id ``market-data@<app id>``.

A refused token is not retried by the client (the same token cannot succeed). The feed reports
it and starts over after ``retry_after_s``: a server that refused during its own restart is
tried again, and the report is not repeated while the state stays the same.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

import faust

from ...brokers.dxlink.client import BadFrameListener, DxLinkClient, StateListener
from ...brokers.dxlink.events import EVENT_TYPES, MarketEvent, Quote, Trade
from ...brokers.model import ConnectionState
from ...core.config import MarketDataConfig
from ...core.quotes import QuoteBook
from ...core.records import AccountStatus
from . import jobs
from .context import StageContext

log = logging.getLogger(__name__)
FEED_ACCOUNT_PREFIX = "market-data@"


ClientFactory = Callable[[MarketDataConfig, StateListener, BadFrameListener], DxLinkClient]


def dxlink_client(config: MarketDataConfig, on_state: StateListener, on_bad_frame: BadFrameListener) -> DxLinkClient:
    return DxLinkClient(config.endpoint, config.token, on_state=on_state, on_bad_frame=on_bad_frame)


def feed_account(app_id: str) -> str:
    """The id the feed's health is reported under (one per worker group)."""
    return f"{FEED_ACCOUNT_PREFIX}{app_id}"


class PriceFeed:
    """Feeds ``quotes`` from the configured symbols; ``report`` hears each state change once."""

    def __init__(
        self,
        config: MarketDataConfig,
        quotes: QuoteBook,
        report: Callable[[ConnectionState, str | None], None] | None = None,
        *,
        client_factory: ClientFactory = dxlink_client,
        retry_after_s: float = 60.0,
        bad_frame_every_s: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self.quotes = quotes
        self.retry_after_s = retry_after_s
        self.bad_frame_every_s = bad_frame_every_s
        self.bad_frames = 0
        self._clock = clock
        self._bad_reported_at: float | None = None
        self._report = report
        self._client_factory = client_factory
        self.state = ConnectionState.DISCONNECTED
        self.failed = False  # the last report was a failure (set until a connection succeeds)
        # One feed symbol may price several of ours (ESZ6 and MESZ6 from /ESZ26:XCME).
        self.ours: dict[str, list[str]] = {}
        for ours, theirs in config.symbols.items():
            self.ours.setdefault(theirs, []).append(ours)

    async def run(self) -> None:
        """Until cancelled: connect, subscribe, apply every event; start over after a fatal error."""
        while True:
            client = self._client_factory(self.config, self._changed, self._bad_frame)
            try:
                await client.start()
                await client.subscribe(sorted(self.ours), EVENT_TYPES)
                async for event in client.events():
                    self.apply(event)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - the feed outlives any one failure
                log.warning("price feed %s stopped: %s; retrying in %gs", self.config.endpoint, exc, self.retry_after_s)
            finally:
                await client.close()
            await asyncio.sleep(self.retry_after_s)

    def apply(self, event: MarketEvent) -> None:
        """One dxLink event into the book, under each of our symbols it prices."""
        for symbol in self.ours.get(event.symbol, ()):
            if isinstance(event, Quote):
                self.quotes.update(symbol, bid=event.bid, ask=event.ask)
            elif isinstance(event, Trade):
                self.quotes.update(symbol, last=event.price)

    def _bad_frame(self, detail: str) -> None:
        """A malformed frame (dropped by the client, the connection goes on) is reported with its
        raw text on the health path; a flood is one report per ``bad_frame_every_s`` with a count."""
        self.bad_frames += 1
        now = self._clock()
        if self._bad_reported_at is not None and now - self._bad_reported_at < self.bad_frame_every_s:
            return
        self._bad_reported_at = now
        if self._report is not None:
            self._report(self.state, f"bad frame #{self.bad_frames} from {self.config.platform}: {detail}")

    def _changed(self, state: ConnectionState, reason: str | None) -> None:
        # A new client trying again after a fatal failure is a retry, not news: the feed stays
        # reported as disconnected until a connection succeeds.
        retrying = state is ConnectionState.CONNECTING and self.state is ConnectionState.DISCONNECTED and self.failed
        if state is self.state or retrying:
            return
        self.failed = state is ConnectionState.DISCONNECTED
        self.state = state
        log.info("price feed %s: %s%s", self.config.endpoint, state.value, f" ({reason})" if reason else "")
        if self._report is not None:
            self._report(state, reason)


def health_reporter(
    ctx: StageContext, platform: str, retry_s: float = 1.0
) -> Callable[[ConnectionState, str | None], None]:
    """State changes → ``broker.health`` records, sent from their own task (never awaited by
    the feed, so a slow producer cannot hold prices up). A send that fails (the worker's
    producer is not started yet when the feed first connects) is retried every ``retry_s``
    with the latest state: only the newest report matters, so none queue behind it."""
    account_id = feed_account(ctx.settings.app_id)
    latest: list[AccountStatus] = []
    sender: list[asyncio.Task[None]] = []

    async def send() -> None:
        while latest:
            status = latest[-1]
            try:
                await ctx.outbox.health(status)
            except Exception as exc:  # noqa: BLE001 - a report not sent yet is retried, never fatal
                log.info("price feed: health report not sent yet (%s); retrying", type(exc).__name__)
                await asyncio.sleep(retry_s)
                continue
            if latest[-1] is status:
                latest.clear()

    def report(state: ConnectionState, reason: str | None) -> None:
        latest[:] = [AccountStatus(account_id=account_id, platform=platform, connection=state.value, last_error=reason)]
        if not sender or sender[0].done():
            sender[:] = [asyncio.get_running_loop().create_task(send())]

    return report


def install(app: faust.App, ctx: StageContext) -> PriceFeed | None:
    """Start the feed with the worker when ``market_data`` is configured and ``ctx.quotes`` set."""
    config = ctx.config.market_data
    if config is None or ctx.quotes is None:
        return None
    feed = PriceFeed(config, ctx.quotes, health_reporter(ctx, config.platform))

    @jobs.task(app)
    async def price_feed() -> None:
        await feed.run()

    return feed

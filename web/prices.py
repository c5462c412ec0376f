"""Prices to the browser: the chart's quotes and the marks, over Socket.IO, coalesced.

Why sampling instead of a :meth:`QuoteBook.listen` queue: a listener queue is unbounded and
gets every tick; a web worker that fell behind (a slow browser, a busy loop) would let it grow
without limit. Sampling the book every ``interval_s`` coalesces by construction: whatever
number of ticks arrived in between, each symbol is sent at most once per interval with its
latest quote, and nothing queues in between. The chart's history is a ring per symbol at one
point per second (the chart's resolution) for ``history_s`` seconds, so memory stays bounded too.

Browsers join with ``prices`` (the same session check as the row streams) and get the history
and the marks at once, then ``quotes`` batches and a ``marks`` snapshot every ``marks_every_s``.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from datetime import datetime
from typing import Any

from ..core.quotes import PriceQuote, QuoteBook
from .marks import Marks
from .realtime import SocketHub

log = logging.getLogger(__name__)
ROOM = "prices"
#: At most this many pushes per symbol per second (the chart draws one point per second).
DEFAULT_INTERVAL_S = 0.25
#: What the chart can show: the last 15 minutes.
DEFAULT_HISTORY_S = 15 * 60.0


def quote_row(quote: PriceQuote) -> dict[str, Any]:
    reference = quote.reference()
    return {
        "symbol": quote.symbol,
        "t": round(quote.at.timestamp(), 3),
        "bid": _text(quote.bid),
        "ask": _text(quote.ask),
        "last": _text(quote.last),
        "price": _text(reference),
    }


def _text(value: object) -> str | None:
    return None if value is None else str(value)


class PricePush:
    """Samples ``quotes`` every ``interval_s``, keeps a bounded history, pushes what changed."""

    def __init__(
        self,
        hub: SocketHub,
        quotes: QuoteBook | None,
        marks: Marks,
        *,
        interval_s: float = DEFAULT_INTERVAL_S,
        history_s: float = DEFAULT_HISTORY_S,
        marks_every_s: float = 1.0,
    ) -> None:
        self.hub = hub
        self.quotes = quotes
        self.marks = marks
        self.interval_s = interval_s
        self.marks_every = max(1, round(marks_every_s / interval_s))
        self._points = max(1, int(history_s))
        self.history: dict[str, deque[dict[str, Any]]] = {}
        self._sent: dict[str, datetime] = {}
        self.pushes = 0
        hub.sio.on(ROOM, self._join)

    def sample(self) -> list[dict[str, Any]]:
        """The quotes that changed since the last sample (one per symbol), added to the history."""
        if self.quotes is None:
            return []
        changed = []
        for symbol in self.quotes.symbols():
            quote = self.quotes.latest(symbol)
            if quote is None or self._sent.get(symbol) == quote.at:
                continue
            self._sent[symbol] = quote.at
            row = quote_row(quote)
            history = self.history.setdefault(symbol, deque(maxlen=self._points))
            if history and int(history[-1]["t"]) == int(row["t"]):
                history[-1] = row  # one point per second: the second's last quote
            else:
                history.append(row)
            changed.append(row)
        return changed

    def snapshot(self) -> dict[str, Any]:
        return {
            "market_data": self.quotes is not None,
            "symbols": sorted(self.history),
            "history": {symbol: list(rows) for symbol, rows in self.history.items()},
            "marks": self.marks.snapshot(),
        }

    def watched(self) -> bool:
        """Is a socket of this worker in the prices room? The pushes skip the message queue,
        so no other worker's socket could receive them."""
        return bool(self.hub.sio.manager.rooms.get("/", {}).get(ROOM))

    async def run(self) -> None:
        """Until cancelled: sample (the history a later viewer gets), and while a socket
        watches push quotes, and marks every ``marks_every`` rounds. Nobody watching, no marks
        are computed: a walk over every position each second, most of the trading day with
        the dashboard closed (#16, session 31)."""
        rounds = 0
        while True:
            await asyncio.sleep(self.interval_s)
            rounds += 1
            try:
                changed = self.sample()
                if not self.watched():
                    continue
                if changed:
                    await self.hub.sio.emit("quotes", {"quotes": changed}, room=ROOM, ignore_queue=True)
                    self.pushes += 1
                if rounds % self.marks_every == 0:
                    await self.hub.sio.emit("marks", self.marks.snapshot(), room=ROOM, ignore_queue=True)
            except Exception:  # noqa: BLE001 - one bad round must not end the chart
                log.exception("price push failed")

    async def _join(self, sid: str, data: Any = None) -> dict[str, Any]:
        """The same check as the row streams: a socket of a live session, else disconnected."""
        token = self.hub.connected.get(sid)
        if token is None or await self.hub.auth.sessions.get(token) is None:
            await self.hub.sio.disconnect(sid)
            return {"error": "unauthorized"}
        await self.hub.sio.enter_room(sid, ROOM)
        return self.snapshot()

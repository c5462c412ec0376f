"""Marks (unrealised P&L at the latest price) and the chart's price push: unknown is never 0,
pushes are coalesced and memory bounded, and only a logged-in socket gets them."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
import socketio
from waiting import wait_until
from webtest_helpers import Web

from copytrader.core.quotes import QuoteBook
from copytrader.core.records import AccountStatus, Position
from copytrader.web.marks import Marks, mark_position
from copytrader.web.prices import PricePush

NOW = datetime(2026, 11, 30, 15, 0, tzinfo=UTC)


def book_at(now: datetime = NOW) -> QuoteBook:
    return QuoteBook(clock=lambda: now)


def row(account: str, symbol: str, net: int, average: str | None) -> dict[str, Any]:
    return {"account_id": account, "symbol": symbol, "net_quantity": net, "average_price": average}


def test_a_mark_is_quantity_times_move_times_point_value() -> None:
    book = book_at()
    book.update("ESZ6", bid=Decimal("5001.00"), ask=Decimal("5002.00"), at=NOW - timedelta(seconds=2))
    quote = book.latest("ESZ6")
    long = mark_position(row("a", "ESZ6", 2, "5000.000000"), quote, NOW)
    assert long == {"mark": "5001.50", "quote_age_s": 2.0, "unrealized_pnl": "150.00"}  # 2 × 1.5 × $50
    short = mark_position(row("a", "ESZ6", -3, "5003"), quote, NOW)
    assert Decimal(short["unrealized_pnl"]) == Decimal(225)  # −3 × −1.5 × $50
    book.update("MESZ6", last=Decimal("4990.25"), at=NOW)  # no bid/ask: the last trade
    mes = mark_position(row("a", "MESZ6", 1, "5000"), book.latest("MESZ6"), NOW)
    assert Decimal(mes["unrealized_pnl"]) == Decimal("-48.75")  # 1 × −9.75 × $5


def test_unknown_is_never_zero() -> None:
    book = book_at()
    book.update("ESZ6", bid=Decimal(5001), ask=Decimal(5002), at=NOW)
    assert mark_position(row("a", "NQZ6", 1, "18000"), None, NOW)["unrealized_pnl"] is None  # no quote
    assert mark_position(row("a", "ESZ6", 1, None), book.latest("ESZ6"), NOW)["unrealized_pnl"] is None
    assert mark_position(row("a", "ZZZZ6", 1, "10"), book.latest("ESZ6"), NOW)["unrealized_pnl"] is None
    flat = mark_position(row("a", "NQZ6", 0, None), None, NOW)
    assert flat == {"mark": None, "quote_age_s": None, "unrealized_pnl": "0"}  # flat: a known 0


def test_account_and_total_are_unknown_when_any_open_position_is() -> None:
    book = book_at()
    book.update("ESZ6", bid=Decimal(5001), ask=Decimal(5001), at=NOW - timedelta(seconds=1))
    positions = {
        "f1|ESZ6": row("f1", "ESZ6", 1, "5000"),
        "f1|NQZ6": row("f1", "NQZ6", 0, None),
        "f2|ESZ6": row("f2", "ESZ6", -2, "5000"),
        "f3|NQZ6": row("f3", "NQZ6", 1, "18000"),
    }
    marks = Marks(positions, book, clock=lambda: NOW).snapshot()
    assert marks["accounts"]["f1"] == {"unrealized_pnl": "50.00", "open_positions": 1, "quote_age_s": 1.0}
    assert Decimal(marks["accounts"]["f2"]["unrealized_pnl"]) == -100
    assert marks["accounts"]["f3"] == {"unrealized_pnl": None, "open_positions": 1, "quote_age_s": None}
    assert marks["unrealized_pnl"] is None
    del positions["f3|NQZ6"]
    assert Decimal(Marks(positions, book, clock=lambda: NOW).snapshot()["unrealized_pnl"]) == -50
    assert Marks(positions, None).snapshot()["market_data"] is False


class FakeHub:
    def __init__(self) -> None:
        self.sio = self
        self.handlers: dict[str, Any] = {}

    def on(self, event: str, handler: Any) -> None:
        self.handlers[event] = handler


def test_sampling_coalesces_ticks_and_bounds_the_history() -> None:
    clock = [NOW]
    book = QuoteBook(clock=lambda: clock[0])
    push = PricePush(FakeHub(), book, Marks({}, book), history_s=30)  # type: ignore[arg-type]
    for n in range(500):  # 500 ticks between two samples: one push per symbol
        book.update("ESZ6", bid=Decimal(5000 + n), ask=Decimal(5001 + n))
        book.update("NQZ6", last=Decimal(18000 + n))
    sampled = push.sample()
    assert [(r["symbol"], r["bid"], r["price"]) for r in sampled] == [
        ("ESZ6", "5499", "5499.5"),
        ("NQZ6", None, "18499"),
    ]
    assert push.sample() == []  # nothing new: nothing pushed
    for second in range(1, 100):
        clock[0] = NOW + timedelta(seconds=second)
        for quarter in range(4):  # four samples a second: the history keeps one point per second
            book.update("ESZ6", last=Decimal(6000 + second), at=clock[0] + timedelta(seconds=quarter / 4))
            assert len(push.sample()) == 1
    history = push.history["ESZ6"]
    assert len(history) == 30 and history[-1]["last"] == "6099" and history[-1]["t"] == (clock[0].timestamp() + 0.75)
    assert [int(r["t"]) for r in history] == sorted({int(r["t"]) for r in history})


async def socket(web: Web) -> socketio.AsyncClient:
    client = socketio.AsyncClient(reconnection=False, http_session=web.client.session)
    await client.connect(str(web.client.make_url("/")), transports=["websocket"], wait_timeout=5)
    return client


async def test_prices_and_marks_reach_a_logged_in_socket(web: Web, monkeypatch: pytest.MonkeyPatch) -> None:
    book = QuoteBook()
    web.ctx.marks.quotes = web.ctx.prices.quotes = book
    web.ctx.prices.interval_s = 0.05
    web.ctx.live.apply_position(
        Position(account_id="f001", symbol="ESZ6", net_quantity=2, average_price=Decimal(5000)), 0, 0
    )
    web.ctx.live.apply_status(AccountStatus(account_id="market-data@front", platform="dxlink", connection="connected"))
    assert "market-data@front" not in web.ctx.live.accounts  # a feed is not an account row
    book.update("ESZ6", bid=Decimal("5010.00"), ask=Decimal("5010.50"))
    await web.login()
    client = await socket(web)
    got: dict[str, list[Any]] = {"quotes": [], "marks": []}
    client.on("quotes", lambda data: got["quotes"].append(data))
    client.on("marks", lambda data: got["marks"].append(data))
    pusher = asyncio.ensure_future(web.ctx.prices.run())
    try:
        first = await client.call("prices", {}, timeout=5)
        assert (
            first["market_data"] is True and first["marks"]["feeds"]["market-data@front"]["connection"] == "connected"
        )
        assert Decimal(first["marks"]["accounts"]["f001"]["unrealized_pnl"]) == 2 * Decimal("10.25") * 50
        book.update("ESZ6", last=Decimal("5020"), bid=Decimal("5019.75"), ask=Decimal("5020.25"))
        await wait_until(
            lambda: any(q["price"] == "5020.00" for batch in got["quotes"] for q in batch["quotes"]),
            timeout_s=5,
            what="the new quote pushed",
        )
        await wait_until(
            lambda: any(m["accounts"]["f001"]["unrealized_pnl"] == "2000.00" for m in got["marks"]),
            timeout_s=5,
            what="marks at the new price",
        )
        response = await web.client.get("/api/marks")
        assert response.status == 200 and (await response.json())["positions"]["f001|ESZ6"]["mark"] == "5020.00"
        positions = (await (await web.client.get("/api/positions")).json())["positions"]
        assert [(p["key"], p["mark"], p["unrealized_pnl"]) for p in positions] == [("f001|ESZ6", "5020.00", "2000.00")]
        prices = await (await web.client.get("/api/prices")).json()
        assert prices["symbols"] == ["ESZ6"] and prices["history"]["ESZ6"][-1]["last"] == "5020"
    finally:
        pusher.cancel()
        await client.disconnect()


async def test_prices_need_a_session(web: Web) -> None:
    anonymous = await web.client.get("/api/marks")
    assert anonymous.status == 401
    assert (await web.client.get("/api/prices")).status == 401
    # A socket whose session ended (logout elsewhere, expiry) is refused and disconnected.
    assert await web.ctx.prices._join("sid-without-a-session", {}) == {"error": "unauthorized"}


async def test_marks_are_computed_only_while_a_socket_watches(web: Web, monkeypatch: pytest.MonkeyPatch) -> None:
    """A walk over every position each second, for nobody, most of the day (#16, session 31)."""
    book = QuoteBook()
    web.ctx.marks.quotes = web.ctx.prices.quotes = book
    web.ctx.prices.interval_s = 0.02
    web.ctx.prices.marks_every = 1
    book.update("ESZ6", bid=Decimal("5010.00"), ask=Decimal("5010.50"))
    walks: list[int] = []
    snapshot = web.ctx.marks.snapshot

    def counted() -> dict[str, Any]:
        walks.append(1)
        return snapshot()

    monkeypatch.setattr(web.ctx.marks, "snapshot", counted)
    pusher = asyncio.ensure_future(web.ctx.prices.run())
    client = None
    try:
        await asyncio.sleep(0.2)  # about ten rounds, nobody in the room
        assert not web.ctx.prices.watched() and walks == []
        assert web.ctx.prices.history["ESZ6"]  # the history a later viewer gets still grows
        await web.login()
        client = await socket(web)
        got: list[Any] = []
        client.on("marks", lambda data: got.append(data))
        await client.call("prices", {}, timeout=5)  # joins the room (its snapshot is one walk)
        await wait_until(lambda: len(got) >= 2, timeout_s=5, what="marks pushed to the watching socket")
        await client.disconnect()
        client = None
        await wait_until(lambda: not web.ctx.prices.watched(), timeout_s=5, what="the room empty again")
        await asyncio.sleep(0.05)
        settled = len(walks)
        await asyncio.sleep(0.2)
        assert len(walks) == settled
    finally:
        pusher.cancel()
        if client is not None:
            await client.disconnect()

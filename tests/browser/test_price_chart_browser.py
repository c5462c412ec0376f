"""The dashboard's price chart and marks in real headless Chromium, fed by a dxLink simulator.

A web worker (role ``web``, served in-process) runs the product's price feed against the
dxLink simulator: the page must draw the selected symbol's prices as they arrive, switch
symbols, show unrealised P&L per account and in total with the quote's age, and show
"unknown" (never $0.00) for a position whose symbol has no quote. Screenshots land in
``tests/browser/artifacts`` (``price-*.png``).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from aiohttp.test_utils import TestServer
from ci_skips import require, require_module

from copytrader.agents.shared.outbox import MemoryOutbox
from copytrader.agents.shared.price_feed import PriceFeed
from copytrader.app.factory import create_app
from copytrader.brokers.dxlink.simulator import DEFAULT_TOKEN, DxLinkSimulator
from copytrader.core.config import parse_config
from copytrader.core.records import AccountStatus, Position
from copytrader.core.settings import Settings
from copytrader.demo.configgen import demo_config
from copytrader.web.server import WebContext

CHROMIUM = os.environ.get("COPYTRADER_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"]
ARTIFACTS = Path(__file__).parent / "artifacts"
VENDOR = Path(__file__).resolve().parents[2] / "web" / "static" / "vendor"
PASSWORD = "price-chart-pass-1"

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="module")]

require("chromium", f"no chromium at {CHROMIUM} (apt-get install -y chromium)", available=Path(CHROMIUM).exists())
require(
    "browser libraries",
    "not vendored: run scripts/vendor-web.sh",
    available=(VENDOR / "lightweight-charts.standalone.production.js").exists(),
)
playwright_api = require_module("playwright.async_api", "chromium", "Playwright drives it (pip extra `test`)")


@dataclass
class Served:
    url: str
    ctx: WebContext
    sim: DxLinkSimulator


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def served(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Served]:
    saved = {k: os.environ.get(k) for k in ("COPYTRADER_ADMIN_USER", "COPYTRADER_ADMIN_PASSWORD")}
    os.environ.update(COPYTRADER_ADMIN_USER="admin", COPYTRADER_ADMIN_PASSWORD=PASSWORD)
    sim = DxLinkSimulator(tick_ms=150, seed=4)
    await sim.start()
    data = demo_config(2)
    data["market_data"] = {
        "platform": "dxlink",
        "endpoint": sim.url,
        "token_env": "PRICE_TEST_DXLINK_TOKEN",
        "symbols": {"ESZ6": "/ESZ26:XCME", "NQZ6": "/NQZ26:XCME"},
    }
    config = parse_config(data, env={"PRICE_TEST_DXLINK_TOKEN": DEFAULT_TOKEN})
    settings = Settings(data_dir=tmp_path_factory.mktemp("prices"), roles=("web",), app_id="pricechart")
    app = create_app(settings, config, outbox=MemoryOutbox())
    ctx: WebContext = app.runtime.web  # type: ignore[assignment]
    assert config.market_data is not None and app.runtime.quotes is not None
    # What the worker's price_feed and price_push tasks run (Faust is not started here).
    tasks = [
        asyncio.ensure_future(PriceFeed(config.market_data, app.runtime.quotes).run()),
        asyncio.ensure_future(ctx.prices.run()),
    ]
    # Two followers long ES (priced) and one long CL (no feed symbol: unknown).
    for n, (account, symbol, net, average) in enumerate(
        [("f001", "ESZ6", 2, "5000"), ("f002", "ESZ6", -1, "5000"), ("f002", "CLZ6", 1, "75")]
    ):
        position = Position(account_id=account, symbol=symbol, net_quantity=net, average_price=Decimal(average))
        ctx.live.apply_position(position, 0, n)
    # The feed's health as the tracker republishes it on account.status.
    ctx.live.apply_status(AccountStatus(account_id="market-data@pricechart", platform="dxlink", connection="connected"))
    server = TestServer(app.web.web_app, host="127.0.0.1")
    await server.start_server()
    try:
        yield Served(str(server.make_url("")).rstrip("/"), ctx, sim)
    finally:
        await server.close()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await sim.stop()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def page(served: Served) -> AsyncIterator[Any]:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    async with playwright_api.async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        context = await browser.new_context(viewport={"width": 1440, "height": 1100})
        tab = await context.new_page()
        tab.console_errors = []  # type: ignore[attr-defined]
        tab.on("console", lambda m: m.type == "error" and tab.console_errors.append(m.text))
        await tab.goto(served.url + "/login?next=/")
        await tab.fill("#username", "admin")
        await tab.fill("#password", PASSWORD)
        await tab.click("#login-submit")
        await tab.wait_for_selector("#price-chart")
        yield tab
        await browser.close()


async def points(page: Any) -> int:
    return int(await page.get_attribute("#price-chart", "data-points") or 0)


async def test_the_chart_draws_prices_as_they_arrive(served: Served, page: Any) -> None:
    await page.wait_for_function(
        "() => Number(document.querySelector('#price-chart').dataset.points) >= 3", timeout=20_000
    )
    symbol = await page.get_attribute("#price-chart", "data-symbol")
    assert symbol in ("ESZ6", "NQZ6")
    before = await points(page)
    last_before = await page.get_attribute("#price-chart", "data-last")
    # The simulator keeps ticking: new seconds become new points.
    await page.wait_for_function(
        f"() => Number(document.querySelector('#price-chart').dataset.points) > {before}", timeout=20_000
    )
    quote = served.ctx.prices.quotes.latest(symbol) if served.ctx.prices.quotes else None
    assert quote is not None and last_before is not None
    label = await page.inner_text("#price-last")
    assert symbol in label and "bid" in label and "ask" in label
    # The canvas the chart draws on exists and has a size (lightweight-charts rendered).
    size = await page.evaluate(
        "() => { const c = document.querySelector('#price-chart canvas'); return c ? c.width * c.height : 0; }"
    )
    assert size > 0
    await page.screenshot(path=str(ARTIFACTS / "price-dashboard.png"), full_page=True)


async def test_switching_symbol_redraws_its_own_history(served: Served, page: Any) -> None:
    current = await page.get_attribute("#price-chart", "data-symbol")
    other = "NQZ6" if current == "ESZ6" else "ESZ6"
    await page.select_option("#price-symbol", other)
    await page.wait_for_function(
        f"() => document.querySelector('#price-chart').dataset.symbol === '{other}'"
        " && Number(document.querySelector('#price-chart').dataset.points) >= 2",
        timeout=10_000,
    )
    assert other in await page.inner_text("#price-last")
    reference = float(str(served.ctx.prices.quotes.latest(other).reference()))  # type: ignore[union-attr]
    shown = float(await page.get_attribute("#price-chart", "data-last") or "nan")
    assert abs(shown - reference) < reference * 0.01  # the same market, a tick or two apart


async def test_marks_per_account_and_total_with_unknown_never_zero(served: Served, page: Any) -> None:
    row = "#pnl-today tr[data-account='{}'] td.unrealized"
    await page.wait_for_function(
        f"() => {{ const c = document.querySelector(\"{row.format('f001')}\"); return c && c.textContent.includes('$'); }}",
        timeout=20_000,
    )
    assert await page.inner_text(row.format("f002")) == "unknown"  # its CL position has no quote
    total = await page.inner_text("#card-unrealized")
    assert "unknown" in total and "$0.00" not in total
    marks = served.ctx.marks.snapshot()
    assert marks["accounts"]["f002"]["unrealized_pnl"] is None and marks["accounts"]["f001"]["unrealized_pnl"]
    assert "s old" in await page.inner_text("#pnl-today tr[data-account='f001']")
    assert await page.inner_text("#price-feed") == "feed connected"
    served.ctx.live.apply_status(
        AccountStatus(
            account_id="market-data@pricechart", platform="dxlink", connection="connecting", last_error="gone"
        )
    )
    await page.wait_for_function("() => document.querySelector('#price-feed').textContent === 'feed connecting'")
    assert await page.get_attribute("#price-feed", "title") == "gone"
    assert page.console_errors == []  # type: ignore[attr-defined]

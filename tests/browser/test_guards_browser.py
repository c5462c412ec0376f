"""The risk guards' form in real headless Chromium (issue #18 item 1): a trader edits a
follower's rule on the Accounts page, sees it in the follower's standing there and on the
dashboard's grid, and a rule that does not parse is refused under its field.

One web worker in this process (aiohttp's test server on a loopback port), its copy.controls
sends recorded: what the workers do with the record is the executor and web tests' subject.
Needs Debian's ``chromium`` and the vendored browser libraries, like the dashboard's test.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from aiohttp.test_utils import TestServer
from ci_skips import require, require_module

from copytrader.app.factory import create_app
from copytrader.core.config import parse_config
from copytrader.core.control_records import GuardsCommand, decode_command
from copytrader.core.settings import Settings
from copytrader.web.auth import User
from copytrader.web.server import WebContext

CHROMIUM = os.environ.get("COPYTRADER_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"]
VENDOR = Path(__file__).resolve().parents[2] / "web" / "static" / "vendor"
PASSWORD = "guards-browser-pass-1"
CONFIG = {
    "sessions": [{"id": "p", "platform": "paper"}],
    "accounts": [{"id": "L", "session": "p"}, {"id": "f1", "session": "p"}, {"id": "f2", "session": "p"}],
    "copy_groups": [
        {"leader": "L", "followers": [{"account": "f1", "guards": {"max_contracts_per_symbol": 4}}, {"account": "f2"}]}
    ],
}

pytestmark = [pytest.mark.browser]

require("chromium", f"no chromium at {CHROMIUM} (apt-get install -y chromium)", available=Path(CHROMIUM).exists())
require(
    "browser libraries",
    "not vendored: run scripts/vendor-web.sh",
    available=(VENDOR / "lightweight-charts.standalone.production.js").exists(),
)
playwright_api = require_module("playwright.async_api", "chromium", "Playwright drives it (pip extra `test`)")


class Users:
    """The admin, without scrypt's cost: the form is under test, not password hashing."""

    async def verify(self, username: str, password: str) -> User | None:
        return User(username) if (username, password) == ("admin", PASSWORD) else None


class Recorded:
    def __init__(self) -> None:
        self.sent: list[tuple[bytes, bytes]] = []

    async def send(self, key: bytes, value: bytes) -> None:
        self.sent.append((key, value))


@pytest_asyncio.fixture
async def served(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[tuple[str, WebContext, Recorded]]:
    monkeypatch.setenv("COPYTRADER_ADMIN_USER", "admin")
    monkeypatch.setenv("COPYTRADER_ADMIN_PASSWORD", PASSWORD)
    app = create_app(
        Settings(data_dir=tmp_path, roles=("web",), app_id="guardsbrowser"), parse_config(CONFIG, env={}), outbox=None
    )
    ctx: WebContext = app.runtime.web  # type: ignore[assignment]
    ctx.auth.users = Users()  # type: ignore[assignment]  # see Users
    controls = Recorded()
    ctx.commands.controls_topic = controls  # type: ignore[assignment]  # records instead of producing
    server = TestServer(app.web.web_app, host="127.0.0.1")
    await server.start_server()
    try:
        yield f"http://127.0.0.1:{server.port}", ctx, controls
    finally:
        await server.close()


@pytest_asyncio.fixture
async def page() -> AsyncIterator[Any]:
    async with playwright_api.async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        tab = await (await browser.new_context(viewport={"width": 1280, "height": 900})).new_page()
        tab.console_errors = []  # type: ignore[attr-defined]  # collected, checked at the end
        tab.on("console", lambda m: m.type == "error" and tab.console_errors.append(m.text))
        yield tab
        await browser.close()


async def open_accounts_page(page: Any, base: str) -> None:
    await page.goto(base + "/login")
    await page.fill("#username", "admin")
    await page.fill("#password", PASSWORD)
    await page.click("#login-submit")
    await page.wait_for_url("**/trading")
    await page.goto(base + "/accounts")


async def test_a_trader_edits_a_followers_guard_and_sees_it_in_the_standing(
    served: tuple[str, WebContext, Recorded], page: Any
) -> None:
    base, ctx, controls = served
    await open_accounts_page(page, base)
    form = page.locator("#guards-form")
    await form.locator('input[name="max_contracts_per_symbol"]').wait_for()
    assert await page.locator("#guards-account").input_value() == "f1"
    assert await form.locator('input[name="max_contracts_per_symbol"]').input_value() == "4"
    assert await page.locator("#guards-standing li").count() == 0  # no total rule yet

    # A rule that does not parse: refused under its field, nothing published.
    await form.locator('input[name="window.start"]').fill("09:30")
    await form.locator('input[name="window.end"]').fill("16:00")
    await form.locator('input[name="window.tz"]').fill("Mars/Base")
    await page.click("#guards-save")
    error = page.locator('#guards-form .field-error[data-for="window.tz"]')
    await page.wait_for_function(
        "() => document.querySelector('#guards-form .field-error[data-for=\"window.tz\"]').textContent !== ''"
    )
    assert "unknown time zone" in await error.text_content()
    assert controls.sent == []
    page.console_errors.clear()  # type: ignore[attr-defined]  # the browser logs the expected 422

    # The edit: a total of 3 contracts, the window in New York time.
    await form.locator('input[name="window.tz"]').fill("America/New_York")
    await form.locator('input[name="max_contracts_total"]').fill("3")
    await page.click("#guards-save")
    await page.wait_for_function(
        "() => [...document.querySelectorAll('#guards-standing li')].some((li) => li.textContent === 'total 0/3')"
    )
    rules = await page.locator("#guards-rules li").all_text_contents()
    assert "max 3 contracts in total" in rules and any("America/New_York" in r for r in rules)
    assert "Set here by admin" in await page.locator("#guards-source").text_content()
    ((key, value),) = controls.sent
    record = decode_command(value)
    assert key == b"guards:f1" and isinstance(record, GuardsCommand) and record.guards is not None
    assert record.guards.max_contracts_total == 3 and record.guards.max_contracts_per_symbol == 4

    # The trading page's grid shows the same standing under the follower's name.
    await page.click('#nav a[href="/trading"]')
    row = page.locator('#account-grid tr[data-account="f1"] .guards')
    await page.wait_for_function(
        "() => (document.querySelector('#account-grid tr[data-account=\"f1\"] .guards') || {}).textContent?.includes('total 0/3')"
    )
    assert "total 0/3" in await row.text_content()
    assert page.console_errors == []  # type: ignore[attr-defined]


async def test_a_misspelt_platform_setting_is_refused_under_the_settings_field(
    served: tuple[str, WebContext, Recorded], page: Any
) -> None:
    """The account form: a setting its platform does not have is named under the settings
    input, nothing is published; corrected, the account is added (``brokers/options.py``)."""
    base, _, controls = served
    await open_accounts_page(page, base)
    form = page.locator("#account-form")
    await form.locator('input[name="id"]').fill("tv9")
    await form.locator('select[name="platform"]').select_option("tradovate")
    await form.locator('input[name="broker_account"]').fill("DEMO9")
    await form.locator('input[name="options"]').fill("cid=8, heartbeat_sec=1")
    await form.locator('button[type="submit"]').click()
    error = form.locator('.field-error[data-for="options"]')
    await page.wait_for_function(
        "() => document.querySelector('#account-form .field-error[data-for=\"options\"]').textContent !== ''"
    )
    assert await error.text_content() == "heartbeat_sec: unknown field"
    assert controls.sent == []
    page.console_errors.clear()  # the browser logs the expected 422
    await form.locator('input[name="options"]').fill("cid=8, heartbeat_s=1")
    await form.locator('button[type="submit"]').click()
    await page.wait_for_function(
        "() => document.querySelector('#account-form .field-error[data-for=\"options\"]').textContent === ''"
    )
    for _ in range(50):
        if controls.sent:
            break
        await page.wait_for_timeout(100)
    assert [key for key, _ in controls.sent] == [b"account:tv9"]
    assert page.console_errors == []  # type: ignore[attr-defined]

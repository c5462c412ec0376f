"""What is shipped works as installed: the built wheel, in a clean virtualenv, serves a
dashboard whose live push and chart libraries load in Chromium.

The clean virtualenv gets only the wheel; its dependencies come from the test environment's
site-packages through a ``.pth`` line, which adds that folder to ``sys.path`` after the venv's
own (so ``copytrader`` is imported from the wheel, never from this checkout).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import sysconfig
import urllib.request
import venv
from collections.abc import Iterator
from pathlib import Path

import pytest
from ci_skips import require, require_module
from waiting import wait_until_sync

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("COPYTRADER_CHROMIUM", "/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
PASSWORD = "wheel-test-pass-1"

pytestmark = [pytest.mark.browser, pytest.mark.kafka]
require("chromium", f"no chromium at {CHROMIUM} (apt-get install -y chromium)", available=Path(CHROMIUM).exists())
require_module("playwright.async_api", "chromium", "Playwright drives it (pip extra `test`)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A clean virtualenv holding only the wheel built from this checkout."""
    where = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(where / "dist"), str(ROOT)],
        check=True,
        cwd=where,
        timeout=600,
    )
    (wheel,) = (where / "dist").glob("copytrader-*.whl")
    env_dir = where / "venv"
    venv.create(env_dir, with_pip=False)
    site = next((env_dir / "lib").glob("python3*/site-packages"))
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(site), str(wheel)],
        check=True,
        timeout=300,
    )
    (site / "zz_test_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return env_dir


def test_the_package_comes_from_the_wheel(installed: Path) -> None:
    where = subprocess.run(
        [str(installed / "bin" / "python"), "-c", "import copytrader.web.views.pages as p; print(p.STATIC)"],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout.strip()
    static = Path(where)
    assert static.is_relative_to(installed) and (static / "app.html").exists()
    assert (static / "vendor" / "socket.io.min.js").exists()
    assert (static / "vendor" / "lightweight-charts.standalone.production.js").exists()


@pytest.fixture(scope="module")
def web_worker(installed: Path, kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = _free_port()
    data = tmp_path_factory.mktemp("wheel-data")
    env = {
        **os.environ,
        "COPYTRADER_KAFKA_BROKER": f"kafka://{kafka_bootstrap}",
        "COPYTRADER_ROLES": "web",
        "COPYTRADER_DATA_DIR": str(data),
        "COPYTRADER_WEB_PORT": str(port),
        "COPYTRADER_APP_ID": f"wheel-{port}",
        "COPYTRADER_TOPIC_PREFIX": f"wheel{port}.",
        "COPYTRADER_ADMIN_USER": "admin",
        "COPYTRADER_ADMIN_PASSWORD": PASSWORD,
        "COPYTRADER_CONFIG": "",
        "PYTHONPATH": "",
    }
    log = open(data / "worker.log", "wb")  # noqa: SIM115 - closed below
    worker = subprocess.Popen(
        [str(installed / "bin" / "python"), "-m", "copytrader.app.cli", "worker", "-l", "warn"],
        cwd=data,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:

        def up() -> bool:
            assert worker.poll() is None, (data / "worker.log").read_text()[-3000:]
            try:
                urllib.request.urlopen(base + "/healthz", timeout=2)
            except OSError:
                return False
            return True

        wait_until_sync(up, timeout_s=120, what="the installed web worker's /healthz")
        yield base
    finally:
        worker.terminate()
        try:
            worker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            worker.kill()
        log.close()


async def test_the_installed_dashboard_loads_its_libraries_in_chromium(web_worker: str) -> None:
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            page = await browser.new_page()
            await page.goto(web_worker + "/login")
            await page.fill("#username", "admin")
            await page.fill("#password", PASSWORD)
            await page.click("#login-submit")
            await page.wait_for_url("**/trading")
            await page.wait_for_selector("#chart canvas", timeout=30_000)
            loaded = await page.evaluate("() => [typeof window.io, typeof window.LightweightCharts]")
            assert loaded == ["function", "object"]
            assert await page.query_selector("#vendor-missing") is None
        finally:
            await browser.close()


async def test_without_its_libraries_the_dashboard_says_so(web_worker: str) -> None:
    """A build that lost them shows a banner on the page, not only an error in the console."""
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            page = await browser.new_page()
            await page.route("**/static/vendor/**", lambda route: route.fulfill(status=404, body=""))
            await page.goto(web_worker + "/login")
            await page.fill("#username", "admin")
            await page.fill("#password", PASSWORD)
            await page.click("#login-submit")
            banner = await page.wait_for_selector("#vendor-missing", timeout=30_000)
            text = await banner.inner_text()
            assert "socket.io-client" in text and "lightweight-charts" in text
        finally:
            await browser.close()

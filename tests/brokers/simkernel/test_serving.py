"""The simulators' shared lifecycle: a site on a free port that serves until stopped, and
background tasks that are cancelled and awaited together."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest
from aiohttp import web

from copytrader.brokers.simkernel.serving import Background, HttpSite


async def test_a_site_on_port_zero_serves_on_the_port_it_reports_until_stopped() -> None:
    app = web.Application()

    async def hello(_request: web.Request) -> web.Response:
        return web.Response(text="hi")

    app.router.add_get("/", hello)
    site = HttpSite()
    port = await site.start(app, "127.0.0.1", 0)
    assert port > 0 and site.port == port
    async with aiohttp.ClientSession() as http:
        async with http.get(f"http://127.0.0.1:{port}/") as response:
            assert await response.text() == "hi"
        await site.stop()
        with pytest.raises(aiohttp.ClientConnectorError):
            await http.get(f"http://127.0.0.1:{port}/")
    await site.stop()  # twice is harmless


async def test_background_tasks_are_cancelled_and_awaited_together() -> None:
    background = Background()
    finished: list[str] = []

    async def forever(name: str) -> None:
        try:
            await asyncio.Event().wait()
        finally:
            finished.append(name)

    background.spawn(forever("clock"), "clock")
    background.spawn(forever("faults"), "faults")
    await asyncio.sleep(0)  # let both start
    await background.cancel_all()
    assert sorted(finished) == ["clock", "faults"]
    await background.cancel_all()  # nothing left: a no-op

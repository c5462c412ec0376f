"""Open dashboards for the bench: N signed-in Socket.IO clients that subscribe to every live
stream, as N browser tabs on the dashboard would (``copytrader bench --viewers N``).

Why: a trader keeps the dashboard open while copying, but the bench had nobody watching, so
the web worker's cost of pushing rows to pages was never in its figures (#16). The viewers run
in their own process, so their CPU is not the bench's observer's and they reach the web worker
over a real WebSocket. Each counts the rows it is pushed; the count proves they watched.

Run by :class:`~copytrader.demo.runner.Scenario`: ``python -m copytrader.demo.viewers URL N``
with the admin password in ``COPYTRADER_ADMIN_PASSWORD``. It prints ``ready`` once every
viewer has its snapshots, and on SIGTERM one JSON line with the rows each one received.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from typing import Any

import aiohttp
import orjson
import socketio

from ..web.live import STREAMS

SUBSCRIBE_TIMEOUT_S = 15.0


class Viewer:
    """One dashboard page: signed in, subscribed to every stream, counting what is pushed."""

    def __init__(self, url: str, password: str) -> None:
        self.url, self.password = url, password
        self.rows = 0
        self.http: aiohttp.ClientSession | None = None
        self.client: socketio.AsyncClient | None = None

    async def open(self) -> None:
        # An IP address as host: aiohttp keeps its cookies only with an unsafe jar.
        self.http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
        async with self.http.get(f"{self.url}/login") as page:
            page.raise_for_status()
            csrf = page.cookies["ct_login"].value
        login = {"username": "admin", "password": self.password}
        async with self.http.post(f"{self.url}/api/session", json=login, headers={"X-CSRF-Token": csrf}) as answer:
            answer.raise_for_status()
        self.client = socketio.AsyncClient(reconnection=False, http_session=self.http)
        self.client.on("rows", self._rows)
        await self.client.connect(self.url, transports=["websocket"], wait_timeout=SUBSCRIBE_TIMEOUT_S)
        text = await self.client.call("subscribe", {"streams": list(STREAMS)}, timeout=SUBSCRIBE_TIMEOUT_S)
        answer = orjson.loads(text)  # JSON text, as a page gets it
        if not isinstance(answer, dict) or "snapshots" not in answer:
            raise RuntimeError(f"subscribe refused: {answer!r}")

    async def _rows(self, text: Any) -> None:
        """One message: a fetch's rows of one stream, as JSON text (parsed, as a page does)."""
        self.rows += len(orjson.loads(text)["rows"])

    async def close(self) -> None:
        if self.client is not None:
            await self.client.disconnect()
        if self.http is not None:
            await self.http.close()


async def watch(url: str, count: int, password: str) -> list[int]:
    viewers = [Viewer(url, password) for _ in range(count)]
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    try:
        await asyncio.gather(*(v.open() for v in viewers))
        print("ready", flush=True)
        await stop.wait()
    finally:
        await asyncio.gather(*(v.close() for v in viewers), return_exceptions=True)
    return [v.rows for v in viewers]


def main(argv: list[str]) -> int:
    url, count = argv[0], int(argv[1])
    password = os.environ.get("COPYTRADER_ADMIN_PASSWORD", "")
    rows = asyncio.run(watch(url, count, password))
    sys.stdout.write(orjson.dumps({"rows": rows}).decode() + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

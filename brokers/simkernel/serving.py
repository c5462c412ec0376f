"""How every HTTP/WebSocket simulator serves and stops: one aiohttp site, one set of background
tasks. Each simulator keeps its own routes and protocol; this is only the lifecycle they share.

The bound port comes from ``AppRunner.addresses`` (public aiohttp API), so ``port=0`` picks a
free port without reaching into aiohttp's private site attributes.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import Coroutine
from typing import Any

from aiohttp import web

__all__ = ["IDLE_CLOSE_S", "Background", "HttpSite"]


#: How long a simulator keeps an idle HTTP connection open. No platform documents its own; AWS's
#: load balancers close after 60 s by default (aiohttp's server after 75 s): the stricter one.
IDLE_CLOSE_S = 60.0


class HttpSite:
    """An aiohttp application served on ``host:port`` until :meth:`stop`."""

    def __init__(self) -> None:
        self._runner: web.AppRunner | None = None
        self.port = 0

    async def start(
        self,
        app: web.Application,
        host: str,
        port: int,
        *,
        shutdown_timeout: float = 0.5,
        idle_close_s: float = IDLE_CLOSE_S,
        ssl_context: ssl.SSLContext | None = None,
    ) -> int:
        """Serve ``app``; returns the bound port (a free one when ``port`` is 0). An HTTP
        connection idle ``idle_close_s`` is closed, as a platform's load balancer does; with
        ``ssl_context`` the site speaks TLS (HTTPS and WSS), as every real platform does."""
        runner = web.AppRunner(
            app, handle_signals=False, shutdown_timeout=shutdown_timeout, keepalive_timeout=idle_close_s
        )
        await runner.setup()
        await web.TCPSite(runner, host, port, ssl_context=ssl_context).start()
        self._runner = runner
        self.port = int(runner.addresses[0][1])
        return self.port

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None


class Background:
    """A simulator's long-running tasks (market clock, fault watcher, keepalive watchdog),
    cancelled and awaited together on stop."""

    def __init__(self) -> None:
        self._tasks: list[asyncio.Task[None]] = []

    def spawn(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        self._tasks.append(asyncio.get_running_loop().create_task(coro, name=name))

    async def cancel_all(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()

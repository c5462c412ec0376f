"""The simulated ProjectX Gateway: REST + user hub over the shared kernel, on an ephemeral port.

The kernel does the trading (matching, partial fills, brackets); this server only speaks the
gateway's protocol around it and adds the transport-level faults a real gateway shows: dropped
hub sockets, expired tokens, 429s and slow acks.
"""

from __future__ import annotations

import asyncio
import contextlib
from decimal import Decimal
from typing import Any

from aiohttp import web

from ...simkernel.exchange import KernelEvent, SimAccount, SimExchange
from ...simkernel.faults import FaultSwitches
from ...simkernel.latency import Latency
from .. import schemas as px
from .auth import SlidingWindow, TokenService
from .hub import UserHub
from .rest import build_routes
from .state import GatewayState

DEFAULT_ACCOUNTS = ("PX-LEADER", "PX-FOLLOWER-1", "PX-FOLLOWER-2")


class ProjectXSimulator:
    """Options: ``username``, ``api_key``, ``accounts`` (names), ``balance``, ``token_ttl`` (s),
    ``rate_limit`` ((requests, seconds)), ``latency`` (ms or ``"50+20"``), ``tick_ms`` (market
    clock; 0 = manual ``exchange.advance()``), ``keepalive_s`` (hub pings), ``wrap_events``
    (``{"action","data"}`` push envelope as the live gateway sends; False = bare docs shape),
    ``contract_month`` (e.g. ``"Z26"``; default the next quarterly expiry)."""

    def __init__(self, exchange: SimExchange | None = None, host: str = "127.0.0.1", port: int = 0,
                 **options: Any) -> None:
        self.exchange = exchange or SimExchange()
        self.host, self.port = host, port
        self.username = str(options.get("username", "sim-trader"))
        self.api_key = str(options.get("api_key", "sim-api-key"))
        self.tokens = TokenService(float(options.get("token_ttl", 86400.0)))
        limit, seconds = options.get("rate_limit", px.DEFAULT_LIMIT)
        self._limits = {"default": SlidingWindow(int(limit), float(seconds)),
                        "bars": SlidingWindow(*px.BARS_LIMIT)}
        self.latency = Latency.parse(options.get("latency", 0))
        self.tick_ms = float(options.get("tick_ms", 50.0))
        self.keepalive_s = float(options.get("keepalive_s", 15.0))
        self.wrap_events = bool(options.get("wrap_events", True))
        names = list(options.get("accounts", DEFAULT_ACCOUNTS))
        self.state = GatewayState(self.exchange, [], contract_month=options.get("contract_month"))
        for name in names:
            self.state.add_account(name, Decimal(str(options.get("balance", 50000))))
        self.hub = UserHub(self)
        self._runner: web.AppRunner | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self.base_url = ""
        self.user_hub_url = ""

    # -- lifecycle -------------------------------------------------------------------------
    async def start(self) -> None:
        routes, middleware = build_routes(self)
        app = web.Application(middlewares=[middleware])
        app.add_routes(routes)
        self.hub.add_routes(app)
        self._runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        server = site._server
        assert server is not None and server.sockets  # type: ignore[union-attr]  # aiohttp keeps it private
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.base_url = f"http://{self.host}:{self.port}"
        self.user_hub_url = f"{self.base_url}{px.USER_HUB_PATH}"
        self.exchange.add_listener(self._on_kernel_event)
        loop = asyncio.get_running_loop()
        self._tasks.append(loop.create_task(self._watch_faults(), name="projectx-sim-faults"))
        if self.tick_ms > 0:
            self._tasks.append(loop.create_task(self._clock(), name="projectx-sim-clock"))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        with contextlib.suppress(ValueError):
            self.exchange.remove_listener(self._on_kernel_event)
        await self.hub.drop_all()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> "ProjectXSimulator":
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- test hooks ----------------------------------------------------------------------
    def demo_credentials(self) -> dict[str, Any]:
        return {
            "userName": self.username,
            "apiKey": self.api_key,
            "accounts": {name: account.account_id for name, account in self.state.accounts.items()},
            "base_url": self.base_url,
            "user_hub_url": self.user_hub_url,
        }

    def faults(self, account_name: str) -> FaultSwitches:
        return self.exchange.account(account_name).faults

    def account_id(self, account_name: str) -> int:
        return self.state.accounts[account_name].account_id

    def kernel_accounts(self) -> list[SimAccount]:
        return [self.exchange.account(name) for name in self.state.accounts]

    def admit(self, path: str) -> bool:
        return self._limits["bars" if path == px.HISTORY_BARS else "default"].allow()

    # -- internals -------------------------------------------------------------------------
    def _on_kernel_event(self, event: KernelEvent) -> None:
        for target, account_id, payload in self.state.translate(event):
            self.hub.push(target, account_id, payload)

    async def _clock(self) -> None:
        while True:
            await asyncio.sleep(self.tick_ms / 1000.0)
            self.exchange.advance()

    async def _watch_faults(self) -> None:
        """Transport faults that act without a request: the drop switch closes hub sockets."""
        while True:
            await asyncio.sleep(0.01)
            if any(account.faults.take_drop() for account in self.kernel_accounts()):
                await self.hub.drop_all()

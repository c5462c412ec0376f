"""The simulated ProjectX Gateway: REST + user hub over the shared kernel, on an ephemeral port.

The kernel does the trading (matching, partial fills, brackets); this server only speaks the
gateway's protocol around it and adds the transport-level faults a real gateway shows: dropped
hub sockets, expired tokens, 429s and slow acks.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from decimal import Decimal
from typing import Any

from aiohttp import web

from ....common.ratewindow import SlidingWindow
from ...simkernel.exchange import KernelEvent, SimAccount, SimExchange
from ...simkernel.faults import FaultSwitches
from ...simkernel.latency import Latency
from ...simkernel.logins import SimLogin
from ...simkernel.serving import IDLE_CLOSE_S, Background, HttpSite
from .. import schemas as px
from .api import GatewayApi
from .auth import TokenService
from .hub import UserHub
from .state import GatewayState

DEFAULT_ACCOUNTS = ("PX-LEADER", "PX-FOLLOWER-1", "PX-FOLLOWER-2")


REPEATED_TAG_ANSWERS = ("new_order", "refuse", "first_order")
BRACKET_MODES = ("position", "auto_oco")


class ProjectXSimulator:
    """Options: ``logins`` (list of :class:`SimLogin`; default one demo login, ``username`` /
    ``api_key``, owning ``accounts``), ``balance``, ``token_ttl`` (s), ``rate_limit`` ((requests,
    seconds), per user), ``latency`` (ms or ``"50+20"``), ``tick_ms`` (market clock; 0 = manual
    ``exchange.advance()``), ``keepalive_s`` (hub pings), ``wrap_events`` (``{"action","data"}``
    push envelope as the live gateway sends; False = bare docs shape), ``contract_month`` (e.g.
    ``"Z26"``; default each root's front month).

    Undocumented behaviours default to the strictest plausible answer; kinder ones are options:
    ``repeated_tag`` — ``"new_order"`` (default: a repeated customTag is a second order),
    ``"refuse"`` (answer ``repeated_tag_error`` = (errorCode, message)) or ``"first_order"``
    (answer the first order's id, place nothing); ``bracket_mode`` — ``"position"`` (default, the
    platform's default: bracketed places refused, a rejected record kept) or ``"auto_oco"``, per
    account via ``auto_oco_accounts``; ``position_brackets_places_entry`` — the other reading of
    that refusal: the entry is placed anyway (without brackets) while the answer says refused; ``lose_response`` — how a lost answer looks: ``"reset"`` (default,
    the connection drops) or ``"timeout"`` (no answer for ``lose_response_hold_s``).
    """

    def __init__(
        self, exchange: SimExchange | None = None, host: str = "127.0.0.1", port: int = 0, **options: Any
    ) -> None:
        self.exchange = exchange or SimExchange()
        self.host, self.port = host, port
        logins: list[SimLogin] | None = options.get("logins")
        if not logins:
            names = tuple(options.get("accounts", DEFAULT_ACCOUNTS))
            logins = [
                SimLogin(str(options.get("username", "sim-trader")), str(options.get("api_key", "sim-api-key")), names)
            ]
        self.logins = {login.username: login for login in logins}
        self.username, self.api_key = logins[0].username, logins[0].secret
        self.tokens = TokenService(float(options.get("token_ttl", 86400.0)))
        self.rate_limit = tuple(options.get("rate_limit", px.DEFAULT_LIMIT))
        self._limits: dict[str, dict[str, SlidingWindow]] = {}
        self.latency = Latency.parse(options.get("latency", 0))
        self.tick_ms = float(options.get("tick_ms", 50.0))
        self.idle_close_s = float(options.get("idle_close_s", IDLE_CLOSE_S))  # an idle REST connection closes
        self.keepalive_s = float(options.get("keepalive_s", 15.0))
        self.wrap_events = bool(options.get("wrap_events", True))
        self.repeated_tag = str(options.get("repeated_tag", "new_order"))
        if self.repeated_tag not in REPEATED_TAG_ANSWERS:
            raise ValueError(f"repeated_tag must be one of {REPEATED_TAG_ANSWERS}")
        code, text = options.get("repeated_tag_error", (2, "Custom tag is already in use."))
        self.repeated_tag_error = (int(code), str(text))
        self.bracket_mode = str(options.get("bracket_mode", "position"))
        if self.bracket_mode not in BRACKET_MODES:
            raise ValueError(f"bracket_mode must be one of {BRACKET_MODES}")
        self.auto_oco_accounts = set(options.get("auto_oco_accounts", ()))
        self.position_brackets_places_entry = bool(options.get("position_brackets_places_entry", False))
        self.lose_response = str(options.get("lose_response", "reset"))
        self.lose_response_hold_s = float(options.get("lose_response_hold_s", 60.0))
        self.state = GatewayState(self.exchange, [], contract_month=options.get("contract_month"))
        self.owner: dict[str, str] = {}  # account name → the user who sees it
        for login in logins:
            for name in login.accounts:
                self.state.add_account(name, Decimal(str(options.get("balance", 50000))))
                self.owner.setdefault(name, login.username)
        self.hub = UserHub(self)
        #: The garbage-answer fault (:meth:`answer_garbage`): REST path → bodies to answer with.
        self.garbage_answers: dict[str, list[bytes]] = {}
        #: The latest REST requests as (path, client connection): which connection carried what,
        #: for tests of the client's connection reuse (address and port name a connection).
        self.rest_requests: deque[tuple[str, object]] = deque(maxlen=10_000)
        self.api = GatewayApi(self)
        self._site = HttpSite()
        self._background = Background()
        self.base_url = ""
        self.user_hub_url = ""

    # -- lifecycle -------------------------------------------------------------------------
    async def start(self) -> None:
        app = web.Application(middlewares=[self.api.middleware])
        app.add_routes(self.api.routes())
        self.port = await self._site.start(app, self.host, self.port, idle_close_s=self.idle_close_s)
        self.base_url = f"http://{self.host}:{self.port}"
        self.user_hub_url = f"{self.base_url}{px.USER_HUB_PATH}"
        self.exchange.add_listener(self._on_kernel_event)
        self.exchange.add_forget_listener(self.state.forget)
        self._background.spawn(self._watch_faults(), "projectx-sim-faults")
        if self.tick_ms > 0:
            self._background.spawn(self._clock(), "projectx-sim-clock")

    async def stop(self) -> None:
        await self._background.cancel_all()
        with contextlib.suppress(ValueError):
            self.exchange.remove_listener(self._on_kernel_event)
            self.exchange.remove_forget_listener(self.state.forget)
        await self.hub.drop_all()
        await self._site.stop()

    async def __aenter__(self) -> ProjectXSimulator:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- test hooks ----------------------------------------------------------------------
    def demo_credentials(self) -> dict[str, Any]:
        """The first login's credentials (``userName``/``apiKey``/``accounts``) plus every login."""
        first = self.logins[self.username]
        return {
            "userName": self.username,
            "apiKey": self.api_key,
            "accounts": {name: self.state.accounts[name].account_id for name in first.accounts},
            "logins": [
                {
                    "userName": login.username,
                    "apiKey": login.secret,
                    "accounts": {name: self.state.accounts[name].account_id for name in login.accounts},
                }
                for login in self.logins.values()
            ],
            "base_url": self.base_url,
            "user_hub_url": self.user_hub_url,
        }

    def answer_garbage(self, path: str, body: bytes) -> None:
        """The garbage-answer fault: the next request to ``path`` (e.g. ``/api/Order/place``) is
        carried out, and its answer is ``body`` exactly as given (HTTP 200, JSON content type)."""
        self.garbage_answers.setdefault(path, []).append(body)

    def send_raw(self, data: str | bytes) -> int:
        """The garbage fault on the user hub: ``data`` goes on every open connection exactly as
        given (text, or a binary frame for bytes), in order with the pushes."""
        return self.hub.send_raw(data)

    def faults(self, account_name: str) -> FaultSwitches:
        return self.exchange.account(account_name).faults

    def account_id(self, account_name: str) -> int:
        return self.state.accounts[account_name].account_id

    def kernel_accounts(self, user: str | None = None) -> list[SimAccount]:
        """Kernel accounts of every login, or of ``user``'s only."""
        return [
            self.exchange.account(name) for name in self.state.accounts if user is None or self.owner.get(name) == user
        ]

    def admit(self, user: str, path: str) -> bool:
        """The documented windows, counted per user as the gateway counts them."""
        windows = self._limits.get(user)
        if windows is None:
            limit, seconds = self.rate_limit
            windows = self._limits[user] = {
                "default": SlidingWindow(int(limit), float(seconds)),
                "bars": SlidingWindow(*px.BARS_LIMIT),
            }
        return windows["bars" if path == px.HISTORY_BARS else "default"].admit()

    def visible(self, user: str, account_name: str) -> bool:
        return self.owner.get(account_name) == user

    def brackets_allowed(self, account_name: str) -> bool:
        return self.bracket_mode == "auto_oco" or account_name in self.auto_oco_accounts

    # -- internals -------------------------------------------------------------------------
    def _on_kernel_event(self, event: KernelEvent) -> None:
        for target, account_id, payload in self.state.translate(event):
            self.hub.push(target, account_id, payload)

    async def _clock(self) -> None:
        while True:
            await asyncio.sleep(self.tick_ms / 1000.0)
            self.exchange.advance()
            self.state.follow_trailing()

    async def _watch_faults(self) -> None:
        """Transport faults that act without a request: the drop switch closes hub sockets."""
        while True:
            await asyncio.sleep(0.01)
            if any(account.faults.take_drop() for account in self.kernel_accounts()):
                await self.hub.drop_all()

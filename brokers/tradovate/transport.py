"""Tradovate wire clients: REST with token/penalty handling, and the user WebSocket.

Why commands go over REST while events come over the socket: a REST reply belongs to its own
request, so a socket that drops mid-order cannot swallow the order's acknowledgement. The
socket then only has to be *eventually* right, which the resync after a reconnect guarantees.
Tradovate does not dedupe ``clOrdId``, so a request that may have reached the broker (timeout,
reset, 5xx) is resent here only when it is a read; a write surfaces as
``BrokerUnavailable(sent=True)`` and its caller decides (an order is looked up, never resent). Every request, retries included, first takes a slot from the shared
:class:`RateBudget`, so a burst of follower entries queues behind cancels and exits instead of
earning a penalty ticket that would block them all.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta, timezone
from typing import Any

import aiohttp

from ..errors import AuthenticationFailed, BrokerError, BrokerUnavailable, RateLimited, TokenExpired
from ..ratebudget import Priority, RateBudget
from . import codec
from . import schemas as s
from .config import TradovateConfig

log = logging.getLogger(__name__)

Json = dict[str, Any]
#: Docs: a 429 or a captcha penalty cannot be cleared by a third-party app: wait about an hour.
LOCKOUT_S = 3600.0
_READS = ("/list", "/find", "/item", "/items", "/deps", "/ldeps", "/suggest")


def is_read(endpoint: str, method: str) -> bool:
    """Reads may be resent after any doubt; everything else may have run once already."""
    return method == "GET" or endpoint == "user/syncrequest" or endpoint.endswith(_READS)


class RestClient:
    """Authenticated JSON calls; owns the access token (request, renew, re-request on 401)."""

    def __init__(self, config: TradovateConfig, http: aiohttp.ClientSession, budget: RateBudget) -> None:
        self.config = config
        self.http = http
        self.budget = budget
        self.token: str | None = None
        self.expires: datetime | None = None
        self.user_id: int | None = None
        self._auth_lock = asyncio.Lock()
        self.reauths = 0

    # -- token ---------------------------------------------------------------------------------
    async def authenticate(self) -> None:
        """New session via accesstokenrequest; ``AuthenticationFailed`` on errorText."""
        c = self.config
        body = s.credentials(c.name, c.password, c.app_id, c.app_version, c.cid, c.sec, c.device_id)
        data = await self._send("auth/accesstokenrequest", body, method="POST", auth=False,
                                priority=Priority.CANCEL)
        self._take_token(data)

    def _take_token(self, data: Any) -> None:
        if not isinstance(data, dict) or data.get("errorText") or not data.get("accessToken"):
            text = data.get("errorText") if isinstance(data, dict) else None
            raise AuthenticationFailed(text or "no access token in reply", code="errorText")
        self.token = str(data["accessToken"])
        self.expires = s.parse_iso(data.get("expirationTime"))
        self.user_id = int(data.get("userId") or self.user_id or 0)

    def needs_renewal(self) -> bool:
        if self.token is None or self.expires is None:
            return True
        return datetime.now(timezone.utc) >= self.expires - timedelta(seconds=self.config.renew_margin_s)

    def seconds_to_renewal(self) -> float:
        if self.expires is None:
            return 0.0
        due = self.expires - timedelta(seconds=self.config.renew_margin_s)
        return max(0.0, (due - datetime.now(timezone.utc)).total_seconds())

    async def ensure_token(self) -> str:
        """A usable token: renew near expiry (keeps the session), re-request when renewal fails."""
        async with self._auth_lock:
            if self.token is None:
                await self.authenticate()
            elif self.needs_renewal():
                await self._renew()
            assert self.token is not None
            return self.token

    async def _renew(self) -> None:
        try:
            data = await self._send("auth/renewaccesstoken", None, method="GET", auth=True,
                                    priority=Priority.CANCEL, token=self.token)
            self._take_token(data)
        except (TokenExpired, AuthenticationFailed):
            await self.authenticate()

    async def _reauthenticate(self, stale: str | None) -> None:
        async with self._auth_lock:
            if self.token == stale:  # another caller may have refreshed it already
                self.reauths += 1
                self.token = None
                await self.authenticate()

    # -- requests ------------------------------------------------------------------------------
    async def call(self, endpoint: str, body: Json | None = None, *, method: str = "POST",
                   query: dict[str, Any] | None = None, priority: Priority = Priority.ENTRY) -> Any:
        """One logical request; re-authenticates on 401 and resends with the same body."""
        for _ in range(self.config.max_attempts):
            token = await self.ensure_token()
            try:
                return await self._send(endpoint, body, method=method, auth=True, query=query,
                                        priority=priority, token=token)
            except TokenExpired:
                await self._reauthenticate(token)
        raise TokenExpired(f"{endpoint}: token refused after {self.config.max_attempts} attempts")

    async def _send(self, endpoint: str, body: Json | None, *, method: str, auth: bool,
                    priority: Priority, query: dict[str, Any] | None = None, token: str | None = None) -> Any:
        """Send, honouring penalty tickets (wait p-time, resend with ``p-ticket``) and
        retrying transport failures with backoff; 401 surfaces as ``TokenExpired``."""
        url = f"{self.config.rest_url}/{endpoint}"
        payload = dict(body) if body is not None else None
        delay, failures, ever_sent = 0.05, 0, False
        while True:
            await self.budget.acquire(priority)
            headers = {"Accept": "application/json"}
            if auth and token:
                headers["Authorization"] = f"Bearer {token}"
            try:
                data = await self._once(method, url, payload, query, headers)
            except (aiohttp.ClientError, asyncio.TimeoutError, ConnectionError) as exc:
                failures += 1
                # Only a failed connect surely kept the request home.
                sent = not isinstance(exc, aiohttp.ClientConnectorError)
                ever_sent = ever_sent or sent
                if failures >= self.config.max_attempts or (sent and not is_read(endpoint, method)):
                    raise BrokerUnavailable(f"{endpoint}: {exc!r}", sent=ever_sent) from exc
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)
                continue
            if s.is_penalty(data):
                if data.get(s.PENALTY_CAPTCHA):
                    self.budget.penalize(LOCKOUT_S)
                    raise RateLimited(f"{endpoint}: captcha penalty", retry_after=LOCKOUT_S, code="p-captcha")
                wait = float(data.get(s.PENALTY_TIME) or 1)
                log.warning("tradovate penalty on %s: waiting %.1fs", endpoint, wait)
                self.budget.penalize(wait)  # every request waits, not just this one
                payload = {**(payload or {}), s.PENALTY_TICKET: data.get(s.PENALTY_TICKET)}
                continue
            return data

    async def _once(self, method: str, url: str, payload: Json | None, query: dict[str, Any] | None,
                    headers: dict[str, str]) -> Any:
        timeout = aiohttp.ClientTimeout(total=self.config.request_timeout_s)
        kwargs: dict[str, Any] = {"headers": headers, "timeout": timeout, "params": query}
        if method != "GET" and payload is not None:
            kwargs["json"] = payload
        async with self.http.request(method, url, **kwargs) as resp:
            if resp.status == 401:
                raise TokenExpired(f"{url}: 401 {await resp.text()}", code="401")
            if resp.status == 429:
                self.budget.penalize(LOCKOUT_S)
                raise RateLimited(f"{url}: 429 Too Many Requests", retry_after=LOCKOUT_S, code="429")
            if resp.status == 404:
                return None
            if resp.status >= 500:
                raise aiohttp.ClientResponseError(resp.request_info, (), status=resp.status)
            if resp.status != 200:
                raise BrokerError(f"{url}: HTTP {resp.status} {await resp.text()}", code=str(resp.status))
            return await resp.json(content_type=None)


StateHook = Callable[[str, str | None], None]
SyncHook = Callable[[Json, bool], Awaitable[None]]
PropsHook = Callable[[Json], Awaitable[None]]


class UserSocket:
    """The ``/websocket`` session: authorize, ``user/syncrequest``, heartbeats, reconnect.

    ``on_sync(snapshot, first)`` runs after every (re)sync before any push is handled, so the
    adapter can reconcile what it missed while the socket was down.
    """

    def __init__(self, config: TradovateConfig, http: aiohttp.ClientSession, rest: RestClient,
                 on_sync: SyncHook, on_props: PropsHook, on_state: StateHook) -> None:
        self.config = config
        self.http = http
        self.rest = rest
        self.on_sync, self.on_props, self.on_state = on_sync, on_props, on_state
        self.ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.connects = 0
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._ids = 2

    async def run(self) -> None:
        """Connect forever with exponential backoff; the first failure of auth is fatal."""
        delay = self.config.reconnect_initial_s
        while True:
            try:
                await self._session()
                delay = self.config.reconnect_initial_s
            except AuthenticationFailed as exc:
                if not self.ready.done():
                    self.ready.set_exception(exc)
                    return
                self.on_state("degraded", str(exc))
            except (aiohttp.ClientError, asyncio.TimeoutError, ConnectionError, codec.CodecError,
                    BrokerError) as exc:
                if not self.ready.done() and self.connects == 0 and isinstance(exc, aiohttp.ClientConnectorError):
                    self.ready.set_exception(BrokerUnavailable(f"websocket: {exc!r}"))
                    return
                self.on_state("connecting", f"websocket: {exc!r}")
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.config.reconnect_max_s)

    async def close(self) -> None:
        if self._ws is not None:
            await self._ws.close()

    async def _session(self) -> None:
        async with self.http.ws_connect(self.config.ws_url, heartbeat=None, autoping=True) as ws:
            self._ws = ws
            await self._expect_open(ws)
            token = await self.rest.ensure_token()
            await ws.send_str(codec.encode_request("authorize", 0, "", token))
            reply = await self._reply(ws, 0)
            if reply.status == 401:
                await self.rest._reauthenticate(token)
                raise BrokerUnavailable("websocket authorize refused the token; re-authenticated")
            if reply.status != 200:
                raise AuthenticationFailed(f"websocket authorize: status {reply.status}", code=str(reply.status))
            await ws.send_str(codec.encode_request("user/syncrequest", 1, "", s.sync_body(self.rest.user_id or 0)))
            sync = await self._reply(ws, 1)
            if sync.status != 200 or not isinstance(sync.data, dict):
                raise BrokerUnavailable(f"user/syncrequest failed: {sync.status}")
            first = self.connects == 0
            self.connects += 1
            await self.on_sync(sync.data, first)
            self.on_state("connected", None)
            if not self.ready.done():
                self.ready.set_result(None)
            beats = asyncio.get_running_loop().create_task(self._heartbeats(ws))
            try:
                await self._read(ws)
            finally:
                beats.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await beats
        raise ConnectionError("websocket closed")

    async def _frame(self, ws: aiohttp.ClientWebSocketResponse) -> codec.ServerFrame:
        msg = await ws.receive(timeout=self.config.stale_after_s)
        if msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.CLOSING,
                        aiohttp.WSMsgType.ERROR):
            raise ConnectionError(f"websocket {msg.type.name}")
        if msg.type is not aiohttp.WSMsgType.TEXT:
            raise codec.CodecError(f"unexpected {msg.type.name} message")
        return codec.decode_server_frame(msg.data)

    async def _expect_open(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        frame = await self._frame(ws)
        if not isinstance(frame, codec.OpenFrame):
            raise codec.CodecError(f"expected 'o', got {frame!r}")

    async def _reply(self, ws: aiohttp.ClientWebSocketResponse, request_id: int) -> codec.Response:
        """Wait for reply ``request_id``; pushes arriving first are queued for after the sync."""
        while True:
            frame = await self._frame(ws)
            if isinstance(frame, codec.CloseFrame):
                raise ConnectionError(f"server closed: {frame.code} {frame.reason}")
            if isinstance(frame, codec.DataFrame):
                for item in frame.items:
                    if isinstance(item, codec.Response) and item.request_id == request_id:
                        return item

    async def _read(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        while True:
            frame = await self._frame(ws)
            if isinstance(frame, codec.CloseFrame):
                return
            if isinstance(frame, codec.DataFrame):
                for item in frame.items:
                    if isinstance(item, codec.Push) and item.event == s.PROPS and isinstance(item.data, dict):
                        await self.on_props(item.data)

    async def _heartbeats(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        while not ws.closed:
            await asyncio.sleep(self.config.heartbeat_s)
            with contextlib.suppress(ConnectionError, RuntimeError):
                await ws.send_str(codec.HEARTBEAT)

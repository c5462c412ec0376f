"""Tradovate wire clients: REST with session, penalty and retry handling, and the user WebSocket.

Why commands go over REST while events come over the socket: a REST reply belongs to its own
request, so a socket that drops mid-order cannot swallow the order's acknowledgement. The
socket then only has to be *eventually* right, which the resync after a reconnect guarantees.

Sessions are precious: each ``accesstokenrequest`` opens a new one and a user may hold two, the
oldest closing when a third opens. So the token is reused and renewed (``renewaccesstoken``
keeps the session); a 401 renews once, and only then logs in again, spaced by a small login
budget so two clients of one user cannot push each other out in a loop.

What may be resent: a request refused before it ran — a penalty ticket (wait ``p-time``, resend
the same body plus ``p-ticket``), a 401, a connection that never opened. A request that may have
reached the broker (timeout, reset, 5xx) is resent only when it is a read; an order is reported
as ``BrokerUnavailable(sent=True)`` for the caller to look up, never placed twice blindly. Retries
run on the one retry policy module (:mod:`copytrader.common.retrying`) and stop at the copy's
deadline (:mod:`..deadline`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

import aiohttp
from tenacity import RetryCallState

from ...common.clock import utcnow
from ...common.ratewindow import SlidingWindow
from ...common.retrying import backoff, forever, until
from ...common.tasks import stop_task
from ..deadline import expired, remaining
from ..errors import AuthenticationFailed, BrokerError, BrokerUnavailable, RateLimited, TokenExpired
from ..ratebudget import Priority, RateBudget
from ..warm_http import LastUse
from ..wire import excerpt
from . import answers, codec
from . import schemas as s
from .config import TradovateConfig

log = logging.getLogger(__name__)

Json = dict[str, Any]
#: Docs: a 429 or a captcha penalty cannot be cleared by a third-party app: wait about an hour.
LOCKOUT_S = 3600.0
_READS = ("/list", "/find", "/item", "/items", "/deps", "/ldeps", "/suggest")
_NO_DEADLINE = float("inf")
#: Between attempts after a transient failure: 50 ms doubling to 2 s (a penalty says its own wait).
_TRANSIENT_BACKOFF = backoff(0.05, 2.0)


class PenaltyTicket(RateLimited):
    """The server answered a time penalty: nothing ran; resend after ``retry_after`` with the ticket."""

    def __init__(self, message: str, *, ticket: str, retry_after: float) -> None:
        super().__init__(message, retry_after=retry_after, code="p-ticket")
        self.ticket = ticket


def is_read(endpoint: str, method: str) -> bool:
    """Reads may be resent after any doubt; everything else may have run once already."""
    return method == "GET" or endpoint == "user/syncrequest" or endpoint.endswith(_READS)


def _backoff(state: RetryCallState) -> float:
    exc = state.outcome.exception() if state.outcome is not None else None
    if isinstance(exc, RateLimited) and exc.retry_after is not None:
        return max(0.0, float(exc.retry_after))
    return float(_TRANSIENT_BACKOFF(state))


def _past_deadline(state: RetryCallState) -> bool:
    """Stop when the copy's deadline has passed or the next wait would overrun it."""
    sleep = state.upcoming_sleep or 0.0
    return expired() or sleep > remaining(_NO_DEADLINE)


class RestClient:
    """Authenticated JSON calls; owns the session (log in once, renew, recover from a 401)."""

    def __init__(self, config: TradovateConfig, http: aiohttp.ClientSession, budget: RateBudget) -> None:
        self.config = config
        self.http = http
        self.budget = budget
        self.last_use = LastUse()  # what keep_warm watches (brokers/warm_http.py)
        self.token: str | None = None
        self.expires: datetime | None = None
        self.user_id: int | None = None
        self._auth_lock = asyncio.Lock()
        limit, window = config.login_budget
        self._login_window = SlidingWindow(limit, window)
        self.logins = 0  # accesstokenrequests answered with a token (sessions we opened)
        self.renewals = 0
        self.reauths = 0  # recoveries after a refused token

    # -- session ---------------------------------------------------------------------------
    def adopt(self, previous: RestClient) -> None:
        """Carry a live token (and the login budget) over from the client of an earlier
        ``connect``: reconnecting the adapter is not a reason to open a new session."""
        self.token, self.expires, self.user_id = previous.token, previous.expires, previous.user_id
        self._login_window = previous._login_window
        self.logins, self.renewals, self.reauths = previous.logins, previous.renewals, previous.reauths

    async def authenticate(self) -> None:
        """Open a session (accesstokenrequest) within the login budget.

        A refused login is ``AuthenticationFailed`` with the server's text, whether the server
        said it as HTTP 200 + ``errorText`` (reference page) or as HTTP 401 (conformance pages).
        """
        await self._login_slot()
        c = self.config
        body = s.credentials(c.name, c.password, c.app_id, c.app_version, c.cid, c.sec, c.device_id)
        try:
            # Not resent on doubt: a login whose answer was lost still opened a session, and a
            # second one would close the user's oldest (penalty tickets are still waited out).
            data = await self._request(
                "auth/accesstokenrequest", body, method="POST", token=None, priority=Priority.CANCEL, read=False
            )
        except TokenExpired as exc:  # 401 on a login is a bad login, not an expired token
            raise AuthenticationFailed(f"login refused: {exc.message}", code="401") from exc
        self._take_token(data)
        self.logins += 1

    async def _login_slot(self) -> None:
        """At most ``login_budget`` token requests per window: each opens a session and the
        oldest of the user's sessions closes, so logging in on every doubt logs the user out."""
        limit, window = self.config.login_budget
        wait = self._login_window.wait()
        if wait > 0:
            if wait > remaining(_NO_DEADLINE):
                raise BrokerUnavailable(
                    f"tradovate login budget ({limit}/{window:.0f}s) spent; next login in {wait:.1f}s",
                    code="login-budget",
                    sent=False,
                )
            log.warning("tradovate: login budget spent, next login in %.1fs", wait)
            await asyncio.sleep(wait)
        self._login_window.record()

    def _take_token(self, data: Any) -> None:
        grant = answers.token_grant(data)
        self.token, self.expires = grant.token, grant.expires or s.parse_iso(None)
        self.user_id = grant.user_id or self.user_id or 0

    def needs_renewal(self) -> bool:
        if self.token is None or self.expires is None:
            return True
        return utcnow() >= self.expires - timedelta(seconds=self.config.renew_margin_s)

    def seconds_to_renewal(self) -> float:
        if self.expires is None:
            return 0.0
        due = self.expires - timedelta(seconds=self.config.renew_margin_s)
        return max(0.0, (due - utcnow()).total_seconds())

    async def ensure_token(self) -> str:
        """A usable token: the current one, renewed near expiry; a login only when there is none."""
        token = self.token
        if token is not None and not self.needs_renewal():
            return token  # every request asks: the common answer takes no lock (#16)
        async with self._auth_lock:
            if self.token is None:
                await self.authenticate()
            elif self.needs_renewal():
                await self._renew_or_login()
            assert self.token is not None
            return self.token

    async def recover(self, stale: str | None) -> None:
        """After a 401 on ``stale``: renew once (keeps the session), else log in again."""
        async with self._auth_lock:
            if self.token != stale:  # another caller recovered already
                return
            self.reauths += 1
            await self._renew_or_login()

    async def _renew_or_login(self) -> None:
        try:
            data = await self._request(
                "auth/renewaccesstoken", None, method="GET", token=self.token, priority=Priority.CANCEL, read=True
            )
            self._take_token(data)
            self.renewals += 1
        except (TokenExpired, AuthenticationFailed) as exc:
            log.info("tradovate: renewal refused (%s); logging in again", exc)
            self.token = None
            await self.authenticate()

    # -- requests ----------------------------------------------------------------------------
    async def call(
        self,
        endpoint: str,
        body: Json | None = None,
        *,
        method: str = "POST",
        query: dict[str, Any] | None = None,
        priority: Priority = Priority.ENTRY,
    ) -> Any:
        """One logical request. A 401 was not carried out: recover the session, send once more."""
        read = is_read(endpoint, method)
        token = await self.ensure_token()
        try:
            return await self._request(
                endpoint, body, method=method, token=token, priority=priority, query=query, read=read
            )
        except TokenExpired:
            await self.recover(token)
        return await self._request(
            endpoint, body, method=method, token=self.token, priority=priority, query=query, read=read
        )

    async def _request(
        self,
        endpoint: str,
        body: Json | None,
        *,
        method: str,
        token: str | None,
        priority: Priority,
        query: dict[str, Any] | None = None,
        read: bool,
    ) -> Any:
        """Send with tenacity: penalty tickets are waited out and resent with the ticket;
        transport failures are retried when the request surely did not run, or is a read."""
        url = f"{self.config.rest_url}/{endpoint}"
        payload: list[Json | None] = [dict(body) if body is not None else None]

        def retry(exc: BaseException) -> bool:
            if isinstance(exc, PenaltyTicket):
                return True
            if isinstance(exc, BrokerUnavailable):
                return not exc.sent or read
            return False

        async def attempt() -> Any:
            data = await self._once(method, url, payload[0], query, token, priority, read)
            if s.is_penalty(data):
                self._penalty(endpoint, data, payload)
            return data

        retrying = until(
            retry,
            what=f"tradovate {endpoint}",
            attempts=self.config.max_attempts + self.config.max_penalties,
            deadline_s=_NO_DEADLINE,
            wait=_backoff,
            stop=_past_deadline,
        )
        async for state in retrying:
            with state:
                return await attempt()
        raise AssertionError("unreachable: tenacity returns or re-raises")  # pragma: no cover

    def _penalty(self, endpoint: str, data: Json, payload: list[Json | None]) -> None:
        if data.get(s.PENALTY_CAPTCHA):
            self.budget.penalize(LOCKOUT_S)
            message = (
                f"{endpoint}: Tradovate answered a captcha penalty, which an API client cannot "
                "solve; wait about an hour before logging in or sending again"
            )
            if endpoint.startswith("auth/"):
                raise AuthenticationFailed(message, code="p-captcha")
            raise RateLimited(message, retry_after=LOCKOUT_S, code="p-captcha")
        wait = float(data.get(s.PENALTY_TIME) or 1)
        ticket = str(data.get(s.PENALTY_TICKET))
        log.warning("tradovate penalty ticket on %s: resending in %.1fs", endpoint, wait)
        payload[0] = {**(payload[0] or {}), s.PENALTY_TICKET: ticket}
        raise PenaltyTicket(f"{endpoint}: time penalty {wait:.0f}s", ticket=ticket, retry_after=wait)

    async def _once(
        self,
        method: str,
        url: str,
        payload: Json | None,
        query: dict[str, Any] | None,
        token: str | None,
        priority: Priority,
        read: bool = True,
    ) -> Any:
        """One HTTP exchange, mapped to the broker errors (``sent`` says whether it may have run)."""
        left = remaining(_NO_DEADLINE)
        if left <= 0:
            raise BrokerUnavailable(f"{url}: copy deadline passed before sending", sent=False)
        if not self.budget.try_acquire():  # a free slot without a task and a loop turn
            try:
                await asyncio.wait_for(self.budget.acquire(priority), None if left == _NO_DEADLINE else left)
            except TimeoutError as exc:
                raise RateLimited(f"{url}: no request slot before the copy deadline", code="budget") from exc
        self.last_use.touch()
        headers = {"Accept": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        kwargs: dict[str, Any] = {
            "headers": headers,
            "params": query,
            "timeout": aiohttp.ClientTimeout(total=remaining(self.config.request_timeout_s)),
        }
        if method != "GET" and payload is not None:
            kwargs["json"] = payload
        try:
            async with self.http.request(method, url, **kwargs) as resp:
                return await self._answer(url, resp, read)
        except aiohttp.ClientConnectorError as exc:
            raise BrokerUnavailable(f"{url}: cannot connect: {exc!r}", sent=False) from exc
        except (TimeoutError, aiohttp.ClientError, ConnectionError) as exc:
            raise BrokerUnavailable(f"{url}: no answer: {exc!r}", sent=True) from exc

    async def _answer(self, url: str, resp: aiohttp.ClientResponse, read: bool = True) -> Any:
        if resp.status == 401:
            raise TokenExpired(f"{url}: 401 {await _text(resp)}", code="401")
        if resp.status == 429:
            self.budget.penalize(LOCKOUT_S)
            raise RateLimited(
                f"{url}: 429 Too Many Requests (Tradovate: wait about an hour)", retry_after=LOCKOUT_S, code="429"
            )
        if resp.status == 404:
            return None
        if resp.status >= 500:
            raise BrokerUnavailable(f"{url}: HTTP {resp.status}", code=str(resp.status), sent=True)
        if resp.status != 200:
            raise BrokerError(f"{url}: HTTP {resp.status} {await _text(resp)}", code=str(resp.status))
        # Read here, not by aiohttp's json(): an unreadable body is CodecError (BAD_ANSWER, raw
        # text inside), the one error the executor reports with the answer as sent.
        body = await resp.read()
        answer = codec.decode_answer(body)
        if answer is None and not read:
            # A write answered 200 with nothing: it ran, or not; that is not "not found" (404),
            # which would read as a final refusal of an order that may well exist.
            raise codec.CodecError(f"{url}: HTTP 200 without an answer", body)
        return answer


async def _text(resp: aiohttp.ClientResponse) -> str:
    """An error body for a message: whatever bytes came, shown, truncated."""
    return excerpt((await resp.read()).decode("utf-8", "replace"), 300)


StateHook = Callable[[str, str | None], None]
BadHook = Callable[[codec.CodecError], None]
SyncHook = Callable[[Json, bool], Awaitable[None]]
PropsHook = Callable[[Json], Awaitable[None]]


class UserSocket:
    """The ``/websocket`` session: authorize, ``user/syncrequest``, heartbeats, reconnect.

    ``on_sync(snapshot, first)`` runs after every (re)sync before any push is handled, so the
    adapter can reconcile what it missed while the socket was down. A frame or item that does
    not decode goes to ``on_bad`` and the socket reads on: the framing is one frame per message,
    so garbage cannot desynchronise what follows, and closing would only delay the next good
    push behind a reconnect and a resync.
    """

    def __init__(
        self,
        config: TradovateConfig,
        http: aiohttp.ClientSession,
        rest: RestClient,
        on_sync: SyncHook,
        on_props: PropsHook,
        on_state: StateHook,
        on_bad: BadHook | None = None,
    ) -> None:
        self.config = config
        self.http = http
        self.rest = rest
        self.on_sync, self.on_props, self.on_state = on_sync, on_props, on_state
        self.on_bad: BadHook = on_bad or _log_bad
        self.ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.connects = 0
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._ids = 2
        self._last_frame = time.monotonic()  # when the socket last sent anything (the watchdog's)
        self.stale_closes = 0  # sockets closed for silence

    async def run(self) -> None:
        """Connect forever. Tenacity spaces failed attempts (exponential backoff from
        ``reconnect_initial_s`` to ``reconnect_max_s``); a session that synced and later closed
        starts a fresh backoff. A refused first login or first connection is fatal."""
        while True:
            retrying = forever(
                self._worth_retrying,
                what="tradovate websocket",
                before_sleep=self._report,
                first_s=self.config.reconnect_initial_s,
                max_s=self.config.reconnect_max_s,
            )
            try:
                async for attempt in retrying:
                    with attempt:
                        reason = await self._session()
            except AuthenticationFailed as exc:
                self.ready.set_exception(exc)
                return
            except aiohttp.ClientConnectorError as exc:
                self.ready.set_exception(BrokerUnavailable(f"websocket: {exc!r}", sent=False))
                return
            if _stopping():
                raise asyncio.CancelledError
            self.on_state("connecting", f"websocket: {reason}")
            await asyncio.sleep(self.config.reconnect_initial_s)

    def _worth_retrying(self, exc: BaseException) -> bool:
        if _stopping():
            return False  # asked to stop: whatever the error, never reconnect (see _stopping)
        if isinstance(exc, AuthenticationFailed):
            return self.ready.done()  # fatal only before the first sync
        if isinstance(exc, aiohttp.ClientConnectorError) and not self.ready.done() and self.connects == 0:
            return False
        return isinstance(
            exc, (aiohttp.ClientError, asyncio.TimeoutError, ConnectionError, codec.CodecError, BrokerError)
        )

    def _report(self, state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome is not None else None
        if isinstance(exc, AuthenticationFailed):
            self.on_state("degraded", str(exc))
        else:
            self.on_state("connecting", f"websocket: {exc!r}")

    async def close(self) -> None:
        if self._ws is not None:
            await self._ws.close()

    async def _session(self) -> str:
        """One socket: open, authorize, sync, then read until it closes (returns why)."""
        async with self.http.ws_connect(self.config.ws_url, heartbeat=None, autoping=True) as ws:
            self._ws = ws
            await self._expect_open(ws)
            token = await self.rest.ensure_token()
            await ws.send_str(codec.encode_request("authorize", 0, "", token))
            reply = await self._reply(ws, 0)
            if reply.status == 401:  # e.g. our session was closed by a newer one: renew, else log in
                await self.rest.recover(token)
                raise ConnectionError("websocket authorize refused the token; session recovered")
            if reply.status != 200:
                raise AuthenticationFailed(f"websocket authorize: status {reply.status}", code=str(reply.status))
            sync = await self._sync(ws)
            first = self.connects == 0
            self.connects += 1
            await self.on_sync(sync.data, first)
            self.on_state("connected", None)
            if not self.ready.done():
                self.ready.set_result(None)
            beats = asyncio.get_running_loop().create_task(self._heartbeats(ws))
            reason = "closed by the server"
            try:
                await self._read(ws)
            except (TimeoutError, aiohttp.ClientError, ConnectionError, codec.CodecError) as exc:
                reason = repr(exc)
            finally:
                await stop_task(beats)
        return reason

    async def _sync(self, ws: aiohttp.ClientWebSocketResponse) -> codec.Response:
        """``user/syncrequest``, waiting out a penalty ticket (resent with the ticket) if one comes."""
        body: Json = dict(s.sync_body(self.rest.user_id or 0))

        async def attempt() -> codec.Response:
            nonlocal body
            request_id = self._ids = self._ids + 1
            await ws.send_str(codec.encode_request("user/syncrequest", request_id, "", body))
            sync = await self._reply(ws, request_id)
            if sync.status == 200 and s.is_penalty(sync.data):
                assert isinstance(sync.data, dict)
                if sync.data.get(s.PENALTY_CAPTCHA):
                    raise AuthenticationFailed(
                        "user/syncrequest: captcha penalty; wait about an hour", code="p-captcha"
                    )
                ticket = str(sync.data.get(s.PENALTY_TICKET))
                body = {**body, s.PENALTY_TICKET: sync.data.get(s.PENALTY_TICKET)}
                raise PenaltyTicket(
                    "user/syncrequest: time penalty",
                    ticket=ticket,
                    retry_after=float(sync.data.get(s.PENALTY_TIME) or 1),
                )
            if sync.status != 200 or not isinstance(sync.data, dict):
                raise BrokerUnavailable(f"user/syncrequest failed: {sync.status}")
            return sync

        try:
            async for state in until(
                lambda exc: isinstance(exc, PenaltyTicket),
                what="tradovate user/syncrequest",
                attempts=self.config.max_penalties + 1,
                deadline_s=_NO_DEADLINE,
                wait=_backoff,
            ):
                with state:
                    return await attempt()
        except PenaltyTicket as exc:
            raise BrokerUnavailable("user/syncrequest: still penalised after waiting") from exc
        raise AssertionError("unreachable: tenacity returns or re-raises")  # pragma: no cover

    async def _frame(self, ws: aiohttp.ClientWebSocketResponse, *, watched: bool = False) -> codec.ServerFrame:
        """The next frame that decodes; garbage is handed to ``on_bad`` and skipped.

        ``watched``: :meth:`_heartbeats` closes the socket once no frame came for
        ``stale_after_s``, so the read waits without a timer of its own. A timer per frame
        (``receive(timeout=...)``: a timeout context, a timer handle made and cancelled) was
        a twentieth of the executor's CPU per Tradovate copy at 200 followers (#16). The
        handshake, before the watchdog runs, keeps its timeout."""
        while True:
            msg = await ws.receive() if watched else await ws.receive(timeout=self.config.stale_after_s)
            self._last_frame = time.monotonic()
            if msg.type in (
                aiohttp.WSMsgType.CLOSE,
                aiohttp.WSMsgType.CLOSED,
                aiohttp.WSMsgType.CLOSING,
                aiohttp.WSMsgType.ERROR,
            ):
                raise ConnectionError(f"websocket {msg.type.name}")
            try:
                if msg.type is not aiohttp.WSMsgType.TEXT:
                    raise codec.CodecError(f"unexpected {msg.type.name} message", msg.data)
                frame = codec.decode_server_frame(msg.data)
            except codec.CodecError as exc:
                self.on_bad(exc)
                continue
            if isinstance(frame, codec.DataFrame):
                for bad in frame.bad:
                    self.on_bad(bad)
            return frame

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
            frame = await self._frame(ws, watched=True)
            if isinstance(frame, codec.CloseFrame):
                return
            if isinstance(frame, codec.DataFrame):
                for item in frame.items:
                    if isinstance(item, codec.Push) and item.event == s.PROPS:
                        if isinstance(item.data, dict):
                            await self.on_props(item.data)
                        else:
                            self.on_bad(codec.CodecError("props push without an object", answers.raw_text(item.data)))

    async def _heartbeats(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        """Our ``[]`` every ``heartbeat_s``, and the read's watchdog: a socket that sent no
        frame (the server's ``h`` comes every 2.5 s) for ``stale_after_s`` is presumed dead
        and closed, which ends the read (``websocket CLOSING``) and the session reconnects."""
        step = min(self.config.heartbeat_s, self.config.stale_after_s / 2)
        next_beat = time.monotonic() + self.config.heartbeat_s
        while not ws.closed:
            await asyncio.sleep(step)
            now = time.monotonic()
            if now - self._last_frame > self.config.stale_after_s:
                self.stale_closes += 1
                log.warning("tradovate websocket: no frame for %.1f s; closing it", now - self._last_frame)
                await ws.close(code=aiohttp.WSCloseCode.GOING_AWAY, message=b"stale")
                return
            if now >= next_beat:
                next_beat = now + self.config.heartbeat_s
                with contextlib.suppress(ConnectionError, RuntimeError):
                    await ws.send_str(codec.HEARTBEAT)


def _stopping() -> bool:
    """Whether the running task was asked to stop: then no error starts another attempt. The
    session's own cleanup no longer loses the request (``common.tasks.stop_task``; before it,
    a disconnect during a failing session's cleanup was swallowed and the socket reconnected
    forever against a user locked out for an hour), and this holds whatever code is between."""
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


def _log_bad(exc: codec.CodecError) -> None:
    log.error("tradovate websocket: %s; raw: %s", exc, exc.raw)

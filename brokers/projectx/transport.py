"""The authenticated REST session: one token, renewed before it expires, and one request budget.

What is retried here, and why only that: the gateway answers 401 and 429 before it runs the
endpoint, and a connection that was refused never carried the request, so those may be sent
again — even ``Order/place``. Anything ambiguous (a timeout, a reset after the request left, a
5xx) is retried only for idempotent reads; for an order request it surfaces as
``BrokerUnavailable(sent=True)`` and the executor looks the order up by its tag
(``ProjectXAdapter.lookup``) before deciding anything. Every wait and every timeout is sized by
the copy's deadline (:mod:`..deadline`), so retries never outlive the copy.

Tokens are reused and renewed, never thrown away: ``/api/Auth/validate`` renews ahead of expiry;
a 401 first tries one renewal, then a fresh ``loginKey`` with backoff. The session never calls
``/api/Auth/logout``, so the user's own sessions (their platform UI) are left alone.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import math
import time
from typing import Any

import aiohttp
from tenacity import RetryCallState

from ...common.retrying import backoff, keep_running, until
from ...common.tasks import stop_task
from ..deadline import expired, remaining
from ..errors import AuthenticationFailed, BrokerUnavailable, RateLimited, TokenExpired
from ..ratebudget import Priority, RateBudget
from ..warm_http import LastUse, keep_warm, rest_session, socket_session
from . import answers, codec
from . import schemas as px
from .config import ProjectXConfig

log = logging.getLogger(__name__)

_login_backoff = backoff(0.2, 5.0, jitter_s=0.1)
_NO_DEADLINE = float("inf")  # bounded by attempts and the copy's deadline instead


def token_expiry(token: str, fallback_s: float) -> float:
    """Wall-clock expiry from the JWT's ``exp`` claim, or ``now + fallback`` when unreadable."""
    try:
        body = token.split(".")[1]
        claims = codec.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
        expiry = float(claims["exp"])
    except (IndexError, ValueError, KeyError, TypeError, ArithmeticError):  # ProtocolError is a ValueError
        return time.time() + fallback_s
    return expiry if math.isfinite(expiry) else time.time() + fallback_s


def may_retry(exc: BaseException, idempotent: bool) -> bool:
    """Retry what never ran (401, 429, refused connection) always; the rest only when idempotent."""
    if isinstance(exc, (TokenExpired, RateLimited)):
        return True
    if isinstance(exc, BrokerUnavailable):
        return idempotent or not exc.sent
    return False


def _stop_at_deadline(state: RetryCallState) -> bool:
    return expired()


class GatewaySession:
    def __init__(self, config: ProjectXConfig, budget: RateBudget) -> None:
        self.config = config
        self.budget = budget
        self.token: str | None = None
        self.expires_at = 0.0
        self._http: aiohttp.ClientSession | None = None
        self._socket_http: aiohttp.ClientSession | None = None  # the user hub's: never the REST pool's
        self._login_lock = asyncio.Lock()
        self._renewer: asyncio.Task[None] | None = None
        self._warmer: asyncio.Task[None] | None = None
        self.last_use = LastUse()  # what keep_warm watches (brokers/warm_http.py)
        self.logins = 0
        self.renewals = 0

    # -- lifecycle ---------------------------------------------------------------------
    async def start(self) -> None:
        self._http = rest_session(json_serialize=codec.dumps)
        self._socket_http = socket_session(json_serialize=codec.dumps)
        try:
            await self.login()
        except BaseException:
            await self.close()
            raise
        loop = asyncio.get_running_loop()
        self._renewer = loop.create_task(self._renew_forever(), name="projectx-token")
        self._warmer = loop.create_task(self._keep_warm(), name="projectx-warm")

    async def _keep_warm(self) -> None:
        """An idle session searches its active accounts now and then, so the next order finds
        its connection open (``brokers/warm_http.py``)."""
        await keep_warm(
            self.last_use,
            lambda: self.call(px.ACCOUNT_SEARCH, {"onlyActiveAccounts": True}, Priority.ENTRY, idempotent=True),
            self.config.warm_every_s,
            lambda: self.budget.headroom,
            what="projectx",
        )

    async def close(self) -> None:
        for task in (self._renewer, self._warmer):
            if task is not None:
                await stop_task(task)
        self._renewer = self._warmer = None
        for http in (self._http, self._socket_http):
            if http is not None:
                await http.close()
        self._http = self._socket_http = None

    @property
    def http(self) -> aiohttp.ClientSession:
        if self._http is None:
            raise BrokerUnavailable("ProjectX session is not started", sent=False)
        return self._http

    @property
    def socket_http(self) -> aiohttp.ClientSession:
        """The user hub's session (negotiate and socket), apart from the REST pool."""
        if self._socket_http is None:
            raise BrokerUnavailable("ProjectX session is not started", sent=False)
        return self._socket_http

    # -- auth ----------------------------------------------------------------------------
    async def login(self, stale: str | None = None) -> str:
        """``loginKey`` with backoff on throttling or a dead line; bad credentials stop at once.

        Concurrent callers that saw the same stale token share one login.
        """
        async with self._login_lock:
            if stale is not None and self.token is not None and self.token != stale:
                return self.token  # someone else already replaced it
            retrying = until(
                lambda exc: may_retry(exc, idempotent=True),
                what="ProjectX loginKey",
                attempts=self.config.max_login_attempts,
                deadline_s=_NO_DEADLINE,
                wait=_login_backoff,
                stop=_stop_at_deadline,
            )
            async for attempt in retrying:
                with attempt:
                    token = await self._login_once()
            self._set_token(token)
            self.logins += 1
            return token

    async def _login_once(self) -> str:
        await self._acquire(Priority.CANCEL, px.LOGIN_KEY)  # auth gates everything else: serve it first
        body = {"userName": self.config.username, "apiKey": self.config.api_key}
        status, data = await self._post(px.LOGIN_KEY, body, token=None)
        if status == 429:
            raise RateLimited("ProjectX throttled loginKey", code="429")
        if status >= 500:
            raise BrokerUnavailable(f"ProjectX loginKey answered HTTP {status}", code=str(status))
        if status != 200 or not data.get("success") or not data.get("token"):
            code = data.get("errorCode")
            raise AuthenticationFailed(
                f"ProjectX login refused (HTTP {status}, errorCode {code}): {data.get('errorMessage')}",
                code=str(code),
            )
        if not isinstance(data["token"], str):
            raise codec.ProtocolError("loginKey answered a token that is not a string", answers.raw_text(data))
        return data["token"]

    async def renew(self) -> bool:
        """``/api/Auth/validate``: the same session, a fresh token. False when the gateway refuses."""
        token = self.token
        if token is None:
            return False
        await self._acquire(Priority.CANCEL, px.VALIDATE)
        status, data = await self._post(px.VALIDATE, {}, token=token)
        new = data.get("newToken") or data.get("token") if status == 200 else None
        if status == 200 and data.get("success") and isinstance(new, str) and new:
            if self.token == token:
                self._set_token(str(new))
                self.renewals += 1
            return True
        return False

    async def reauthenticate(self, stale: str | None) -> None:
        """After a 401: renew once; when the gateway will not renew, log in again (with backoff)."""
        if stale is not None and self.token != stale:
            return  # another request already replaced the token
        try:
            if await self.renew():
                return
        except BrokerUnavailable as exc:
            log.info("ProjectX token renewal failed (%s); logging in again", exc)
        await self.login(stale=stale)

    def _set_token(self, token: str) -> None:
        self.token = token
        self.expires_at = token_expiry(token, self.config.token_lifetime_s)

    def _refresh_delay(self) -> float:
        lifetime = max(0.0, self.expires_at - time.time())
        margin = min(self.config.token_refresh_margin_s, lifetime * 0.2)
        return max(0.0, lifetime - margin)

    async def _renew_forever(self) -> None:
        """Validate before expiry so no order ever waits on a login; fall back to a fresh login."""

        async def renew_when_due() -> None:
            await asyncio.sleep(max(self._refresh_delay(), 0.05))
            await self.reauthenticate(stale=self.token)

        # Keep renewing after a failure (requests re-authenticate on 401 anyway), 1 s apart at
        # first, growing while it keeps failing.
        await keep_running(renew_when_due, "ProjectX token renewal", first_s=1.0, max_s=30.0, level=logging.WARNING)

    # -- requests --------------------------------------------------------------------------
    async def call(
        self, path: str, body: dict[str, Any], priority: Priority = Priority.ENTRY, *, idempotent: bool = False
    ) -> dict[str, Any]:
        """POST within the budget and the copy's deadline.

        401 → renew (or log in) and resend; 429 → back off and resend; a refused connection →
        resend; anything else ambiguous is resent only when ``idempotent`` (searches).
        """
        reauths = 0

        async def attempt() -> dict[str, Any]:
            nonlocal reauths
            await self._acquire(priority, path)
            token = self.token
            status, data = await self._post(path, body, token=token)
            if status == 401:
                reauths += 1
                if reauths > 2:
                    raise AuthenticationFailed(f"ProjectX refused fresh tokens on {path}", code="401")
                await self.reauthenticate(stale=token)
                raise TokenExpired(f"ProjectX {path}: token refused (401)", code="401")
            if status == 429:
                self.budget.penalize(self.config.backoff_429_s)
                raise RateLimited(f"ProjectX answered 429 on {path}", code="429", retry_after=0.0)
            if status != 200:
                raise BrokerUnavailable(f"ProjectX {path} answered HTTP {status}", code=str(status))
            return data

        retrying = until(
            lambda exc: may_retry(exc, idempotent),
            what=f"ProjectX {path}",
            attempts=self.config.max_429_retries + 3,
            deadline_s=_NO_DEADLINE,
            wait=self._wait,
            stop=_stop_at_deadline,
        )
        async for each in retrying:
            with each:
                return await attempt()
        raise AssertionError("unreachable: tenacity returns, re-raises or retries")  # pragma: no cover

    def _wait(self, state: RetryCallState) -> float:
        """429s back off exponentially (the budget also holds later requests); others retry soon."""
        exc = state.outcome.exception() if state.outcome is not None else None
        if isinstance(exc, RateLimited):
            delay = self.config.backoff_429_s * 2 ** (state.attempt_number - 1)
        elif isinstance(exc, TokenExpired):
            delay = 0.0
        else:
            delay = min(0.05 * 2 ** (state.attempt_number - 1), 1.0)
        return remaining(delay)

    async def _acquire(self, priority: Priority, path: str) -> None:
        """A slot of the request budget, but never past the copy's deadline (nothing was sent)."""
        if self.budget.try_acquire():  # a free slot without a task and a loop turn
            return
        left = remaining(float("inf"))
        if left == float("inf"):
            await self.budget.acquire(priority)
            return
        try:
            await asyncio.wait_for(self.budget.acquire(priority), timeout=max(left, 0.001))
        except TimeoutError:
            raise BrokerUnavailable(
                f"ProjectX {path}: the copy's deadline passed waiting for the request budget", sent=False
            ) from None

    async def _post(self, path: str, body: dict[str, Any], *, token: str | None) -> tuple[int, dict[str, Any]]:
        """One POST. A connection that was never made is ``sent=False``; every other failure may
        have reached the gateway (``sent=True``)."""
        if expired():
            raise BrokerUnavailable(f"ProjectX {path}: the copy's deadline passed before sending", sent=False)
        self.last_use.touch()
        headers = {"Accept": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        # Never 0: aiohttp reads a zero total as "no timeout at all".
        timeout = aiohttp.ClientTimeout(total=max(remaining(self.config.request_timeout_s), 0.001))
        try:
            async with self.http.post(
                self.config.base_url + path, json=body, headers=headers, timeout=timeout
            ) as response:
                if response.status != 200:
                    return response.status, {}
                answer = await response.read()
        except aiohttp.ClientConnectorError as exc:
            raise BrokerUnavailable(f"ProjectX {path}: no connection ({exc})", sent=False) from exc
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise BrokerUnavailable(f"ProjectX {path}: no answer ({exc!r})", sent=True) from exc
        # Read here, not by aiohttp's json(): an unreadable body (not JSON, not an object) is
        # ProtocolError (BAD_ANSWER, raw text inside), the one error reported with the answer.
        return 200, answers.decode(answer, path)


__all__ = ["GatewaySession", "may_retry", "token_expiry"]

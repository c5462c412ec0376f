"""The authenticated REST session: one token, renewed before it expires, and one request budget.

Why retrying here is safe: the gateway answers 401 and 429 before it runs the endpoint, so a
request refused that way never executed and may be sent again — even ``Order/place``. Anything
ambiguous (timeout, reset connection) is *not* retried here; the adapter decides, because only
it knows whether a custom tag makes the retry idempotent.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import time
from typing import Any

import aiohttp

from ..errors import AuthenticationFailed, BrokerUnavailable, RateLimited
from ..ratebudget import Priority, RateBudget
from . import codec
from . import schemas as px
from .config import ProjectXConfig

log = logging.getLogger(__name__)


def token_expiry(token: str, fallback_s: float) -> float:
    """Wall-clock expiry from the JWT's ``exp`` claim, or ``now + fallback`` when unreadable."""
    try:
        body = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
        return float(claims["exp"])
    except (IndexError, ValueError, KeyError, TypeError):
        return time.time() + fallback_s


class GatewaySession:
    def __init__(self, config: ProjectXConfig, budget: RateBudget) -> None:
        self.config = config
        self.budget = budget
        self.token: str | None = None
        self.expires_at = 0.0
        self._http: aiohttp.ClientSession | None = None
        self._login_lock = asyncio.Lock()
        self._renewer: asyncio.Task[None] | None = None
        self.logins = 0
        self.renewals = 0

    # -- lifecycle ---------------------------------------------------------------------
    async def start(self) -> None:
        timeout = aiohttp.ClientTimeout(total=self.config.request_timeout_s)
        self._http = aiohttp.ClientSession(timeout=timeout, json_serialize=codec.dumps)
        try:
            await self.login()
        except BaseException:
            await self.close()
            raise
        self._renewer = asyncio.get_running_loop().create_task(self._renew_forever(), name="projectx-token")

    async def close(self) -> None:
        if self._renewer is not None:
            self._renewer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._renewer
            self._renewer = None
        if self._http is not None:
            await self._http.close()
            self._http = None

    @property
    def http(self) -> aiohttp.ClientSession:
        if self._http is None:
            raise BrokerUnavailable("ProjectX session is not started")
        return self._http

    # -- auth ----------------------------------------------------------------------------
    async def login(self, stale: str | None = None) -> str:
        """Log in with the API key; concurrent callers that saw the same stale token share one login."""
        async with self._login_lock:
            if stale is not None and self.token is not None and self.token != stale:
                return self.token  # someone else already replaced it
            await self.budget.acquire(Priority.CANCEL)  # auth gates everything else: serve it first
            body = {"userName": self.config.username, "apiKey": self.config.api_key}
            status, data = await self._post(px.LOGIN_KEY, body, token=None)
            if status != 200 or not data.get("success") or not data.get("token"):
                code = data.get("errorCode") if isinstance(data, dict) else None
                raise AuthenticationFailed(
                    f"ProjectX login refused (HTTP {status}, errorCode {code}): {data.get('errorMessage')}",
                    code=str(code),
                )
            self._set_token(str(data["token"]))
            self.logins += 1
            return str(data["token"])

    def _set_token(self, token: str) -> None:
        self.token = token
        self.expires_at = token_expiry(token, self.config.token_lifetime_s)

    def _refresh_delay(self) -> float:
        lifetime = max(0.0, self.expires_at - time.time())
        margin = min(self.config.token_refresh_margin_s, lifetime * 0.2)
        return max(0.0, lifetime - margin)

    async def _renew_forever(self) -> None:
        """Validate before expiry so no order ever waits on a login; fall back to a fresh login."""
        while True:
            await asyncio.sleep(max(self._refresh_delay(), 0.05))
            try:
                data = await self.call(px.VALIDATE, {}, Priority.CANCEL)
                new = data.get("newToken") or data.get("token")
                if data.get("success") and new:
                    self._set_token(str(new))
                    self.renewals += 1
                    continue
                await self.login(stale=self.token)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # keep renewing; requests re-login on 401 anyway
                log.warning("ProjectX token renewal failed: %s", exc)
                await asyncio.sleep(1.0)

    # -- requests --------------------------------------------------------------------------
    async def call(self, path: str, body: dict[str, Any], priority: Priority = Priority.ENTRY) -> dict[str, Any]:
        """POST within the budget; 401 → re-login and resend, 429 → back off and resend."""
        relogged = False
        throttled = 0
        while True:
            await self.budget.acquire(priority)
            token = self.token
            status, data = await self._post(path, body, token=token)
            if status == 401 and not relogged:
                relogged = True
                await self.login(stale=token)
                continue
            if status == 401:
                raise AuthenticationFailed(f"ProjectX refused a fresh token on {path}", code="401")
            if status == 429:
                throttled += 1
                if throttled > self.config.max_429_retries:
                    raise RateLimited(f"ProjectX kept answering 429 on {path}", code="429")
                self.budget.penalize(self.config.backoff_429_s * 2 ** (throttled - 1))
                continue
            if status != 200:
                raise BrokerUnavailable(f"ProjectX {path} answered HTTP {status}", code=str(status))
            return data

    async def _post(self, path: str, body: dict[str, Any], *, token: str | None) -> tuple[int, dict[str, Any]]:
        headers = {"Accept": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        try:
            async with self.http.post(self.config.base_url + path, json=body, headers=headers) as response:
                if response.status != 200:
                    return response.status, {}
                data = await response.json(content_type=None)
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            raise BrokerUnavailable(f"ProjectX {path} failed: {exc!r}") from exc
        if not isinstance(data, dict):
            raise BrokerUnavailable(f"ProjectX {path} answered a non-object: {data!r}")
        return 200, data

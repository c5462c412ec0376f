"""Signed webhooks for ``POST /api/signals``: HMAC-SHA256 over ``<timestamp>.<body>``.

Header: ``X-CopyTrader-Signature: t=<unix seconds>,v1=<hex>``; secret from
``COPYTRADER_WEBHOOK_SECRET``. The timestamp is inside the MAC so an old request cannot be
re-dated; a 5-minute window bounds clock skew; a signature seen once inside that window is
refused the second time (the replay cache only needs to remember the window). With Redis the
cache is shared by every web worker (``SET NX EX``); without it, per process.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from typing import Any, Protocol

HEADER = "X-CopyTrader-Signature"
WINDOW_S = 300


class WebhookRefused(Exception):
    """Why a webhook was refused (answered 401, and never with more detail than this)."""


def sign(secret: str, body: bytes, timestamp: int | None = None) -> str:
    """The header value a sender puts on its request (also used by the tests)."""
    ts = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{ts}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={ts},v1={mac}"


def parse_header(value: str) -> tuple[int, list[str]]:
    ts: int | None = None
    macs: list[str] = []
    for part in value.split(","):
        key, _, item = part.strip().partition("=")
        if key == "t":
            try:
                ts = int(item)
            except ValueError:
                raise WebhookRefused("bad timestamp") from None
        elif key == "v1" and item:
            macs.append(item.lower())
    if ts is None or not macs:
        raise WebhookRefused("signature header needs t= and v1=")
    return ts, macs


class ReplayCache(Protocol):
    async def first_time(self, key: str, ttl_s: int) -> bool: ...


class MemoryReplayCache:
    def __init__(self) -> None:
        self._seen: dict[str, float] = {}

    async def first_time(self, key: str, ttl_s: int) -> bool:
        now = time.time()
        if len(self._seen) > 10_000:
            self._seen = {k: v for k, v in self._seen.items() if v > now}
        if self._seen.get(key, 0) > now:
            return False
        self._seen[key] = now + ttl_s
        return True


class RedisReplayCache:
    def __init__(self, url: str) -> None:
        import redis.asyncio as redis

        self._redis: Any = redis.from_url(url)

    async def first_time(self, key: str, ttl_s: int) -> bool:
        return bool(await self._redis.set(f"ct:webhook:{key}", b"1", nx=True, ex=ttl_s))


class WebhookVerifier:
    def __init__(self, secret: str | None, cache: ReplayCache, window_s: int = WINDOW_S) -> None:
        self.secret = secret
        self.cache = cache
        self.window_s = window_s

    async def verify(self, header: str | None, body: bytes, now: float | None = None) -> None:
        """Returns when the request is authentic and fresh; raises ``WebhookRefused`` otherwise."""
        if not self.secret:
            raise WebhookRefused("webhooks are disabled (COPYTRADER_WEBHOOK_SECRET is not set)")
        if not header:
            raise WebhookRefused("missing signature")
        ts, macs = parse_header(header)
        now = time.time() if now is None else now
        if abs(now - ts) > self.window_s:
            raise WebhookRefused("timestamp outside the allowed window")
        expected = hmac.new(self.secret.encode(), f"{ts}.".encode() + body, hashlib.sha256).hexdigest()
        if not any(hmac.compare_digest(expected, mac) for mac in macs):
            raise WebhookRefused("signature mismatch")
        if not await self.cache.first_time(expected, 2 * self.window_s):
            raise WebhookRefused("signature already used")

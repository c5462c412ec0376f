"""Delivery to one webhook: never in the copy path's way, rate-limited, retried, coalesced.

``offer`` only appends to a bounded queue (the stage's agents never wait on HTTP). One task per
target drains it within the target's rate (``per_minute``; Discord allows about 30 a minute per
webhook, Slack about one a second): while the queue holds more than the rate has room for, what
is waiting goes out as one summary (counts per kind and the accounts) instead of a backlog that
would arrive minutes late. Each send is retried (connection errors, 5xx, 429 with its
``Retry-After``) a few times with backoff; a 4xx other than 429 is a broken target, logged once
per streak and not retried. A target that fails never holds up another.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import aiohttp
from tenacity import RetryCallState

from ...common.ratewindow import SlidingWindow
from ...common.retrying import Sleep, backoff, until
from ...core.notifications import NotificationTarget
from .formats import payload, summary
from .notices import Notice

log = logging.getLogger(__name__)
MAX_QUEUE = 1000
ATTEMPTS = 4
DEADLINE_S = 60.0


class TargetBusy(Exception):
    """The target answered 429 or 5xx, or could not be reached: worth another try."""

    def __init__(self, reason: str, retry_after_s: float | None = None) -> None:
        super().__init__(reason)
        self.retry_after_s = retry_after_s


class TargetRefused(Exception):
    """The target refused the request itself (4xx other than 429): retrying cannot help."""


def _retry_after(headers: Any, body: Any) -> float | None:
    """Slack and most servers send ``Retry-After`` seconds; Discord also ``retry_after`` in the body."""
    for value in (headers.get("Retry-After"), body.get("retry_after") if isinstance(body, dict) else None):
        if not isinstance(value, (str, int, float)):
            continue
        try:
            seconds = float(value)
        except ValueError:
            continue
        if 0 <= seconds <= DEADLINE_S:
            return seconds
    return None


class _WaitHonouringRetryAfter:
    """tenacity wait: the target's own ``Retry-After`` when it gave one, else backoff."""

    def __init__(self) -> None:
        self._backoff = backoff(0.5, 8.0, jitter_s=0.2)

    def __call__(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome is not None else None
        if isinstance(exc, TargetBusy) and exc.retry_after_s is not None:
            return exc.retry_after_s
        return float(self._backoff(state))


class TargetSender:
    def __init__(
        self,
        target: NotificationTarget,
        http: Callable[[], aiohttp.ClientSession],
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Sleep | None = None,
    ) -> None:
        self.target = target
        self._http = http
        self._sleep: Sleep = sleep or asyncio.sleep
        self._retry_sleep = sleep
        self.window = SlidingWindow(target.per_minute, 60.0, clock=clock)
        self.queue: deque[Notice] = deque()
        self.dropped = 0  # notices the full queue pushed out (oldest first)
        self.sent = 0
        self.failed = 0
        self._wakeup = asyncio.Event()
        self._failing = False

    def offer(self, notice: Notice) -> None:
        """Queue a notice the target wants; never blocks, never raises."""
        if not self.target.wants(notice.kind):
            return
        if len(self.queue) >= MAX_QUEUE:
            self.queue.popleft()
            self.dropped += 1
        self.queue.append(notice)
        self._wakeup.set()

    async def run(self) -> None:
        while True:
            if not self.queue:
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            room = self.window.limit - self.window.count()
            if room <= 0:
                await self._sleep(max(0.01, self.window.wait()))
                continue
            if len(self.queue) <= room:
                notice = self.queue.popleft()
            else:  # more than the rate allows: one summary now rather than a late backlog
                notice = summary(list(self.queue))
                self.queue.clear()
            await self.deliver(notice)

    async def deliver(self, notice: Notice) -> bool:
        body = payload(self.target.kind, notice)
        try:
            async for attempt in until(
                lambda exc: isinstance(exc, TargetBusy),
                what=f"notification to {self.target.target_id}",
                attempts=ATTEMPTS,
                deadline_s=DEADLINE_S,
                wait=_WaitHonouringRetryAfter(),
                sleep=self._retry_sleep,
            ):
                with attempt:
                    await self._post(body)
        except (TargetBusy, TargetRefused) as exc:
            self.failed += 1
            if not self._failing:
                log.warning("notification target %s failed: %s", self.target.target_id, exc)
            self._failing = True
            return False
        if self._failing:
            log.warning("notification target %s works again", self.target.target_id)
        self._failing = False
        self.sent += 1
        return True

    async def _post(self, body: dict[str, Any]) -> None:
        self.window.record()
        timeout = aiohttp.ClientTimeout(total=self.target.timeout_s)
        try:
            async with self._http().post(self.target.url, json=body, timeout=timeout) as response:
                if response.status < 300:
                    return
                try:
                    answer = await response.json(content_type=None)
                except (ValueError, aiohttp.ClientError):
                    answer = None
                if response.status == 429 or response.status >= 500:
                    raise TargetBusy(f"HTTP {response.status}", _retry_after(response.headers, answer))
                raise TargetRefused(f"HTTP {response.status}")
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise TargetBusy(type(exc).__name__) from None  # the message may carry the secret URL

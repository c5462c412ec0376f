"""REST connections that stay open between copies (#16 item 3: the first copy is as fast as later ones).

A REST platform's order costs one round trip on an open connection, and three or more on a new
one (TCP, then TLS, then the request), plus the handshake's CPU, paid by every follower of a
signal at once. Two things closed the connections a copy would use, measured against the
Tradovate simulator (docs/benchmarks.md, "REST connections that stay open"):

* the WebSocket took the pooled connection: the sign-in's REST calls left one idle connection
  in the session's pool, and ``ws_connect`` reused it and upgraded it, so the session's first
  order opened a new one. Sockets now have a session of their own (:func:`socket_session`);
* aiohttp closes a pooled connection after 15 s idle, so the first copy after a quiet quarter
  minute (every trade of a patient trader) opened a new one. The pool now keeps them
  :data:`KEEPALIVE_S`, and :func:`keep_warm` sends one cheap read when the REST session has
  been idle :data:`WARM_EVERY_S`: a server or load balancer that closes idle connections
  (undocumented for every platform; AWS's default is 60 s, aiohttp's server 75 s) then never
  sees one idle that long. A connection the server closed anyway is dropped by the pool and
  the next request opens one, as before.

The read spends one request of the platform's budget per idle ``WARM_EVERY_S`` (Tradovate:
144 an hour of its 5,000), and none while the budget is below half: warmth never competes with
an order for a slot. ``warm_every_s: 0`` in a session's options turns it off.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp

log = logging.getLogger(__name__)

#: How long the pool keeps an idle connection (aiohttp's default is 15 s).
KEEPALIVE_S = 60.0
#: A REST session idle this long sends one cheap read (below KEEPALIVE_S and common server limits).
WARM_EVERY_S = 25.0
#: The budget's headroom below which no warming read is sent.
MIN_HEADROOM = 0.5
#: The longest ``warm_every_s`` a session may set (``brokers/options.py``): over an hour keeps nothing warm.
MAX_WARM_EVERY_S = 3600.0


def rest_session(**kwargs: Any) -> aiohttp.ClientSession:
    """A session for REST calls whose pool keeps idle connections :data:`KEEPALIVE_S`."""
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(keepalive_timeout=KEEPALIVE_S), **kwargs)


def socket_session(**kwargs: Any) -> aiohttp.ClientSession:
    """A session for a platform's WebSocket (and its negotiate call): never the REST pool's."""
    return aiohttp.ClientSession(**kwargs)


class LastUse:
    """When a REST session last sent a request (monotonic), for :func:`keep_warm`."""

    __slots__ = ("at",)

    def __init__(self) -> None:
        self.at = time.monotonic()

    def touch(self) -> None:
        self.at = time.monotonic()

    def idle_s(self) -> float:
        return time.monotonic() - self.at


async def keep_warm(
    last_use: LastUse,
    read: Callable[[], Awaitable[Any]],
    every_s: float,
    headroom: Callable[[], float],
    *,
    what: str,
) -> None:
    """Forever (cancel to stop): once the session has sent nothing for ``every_s``, ``read()``.

    A failed read is the session's business (its own retries, token recovery and reconnects
    answer for it); here it is logged at debug and the next one comes ``every_s`` later."""
    if every_s <= 0:
        return
    while True:
        wait = every_s - last_use.idle_s()
        if wait > 0:
            await asyncio.sleep(wait)
            continue
        if headroom() < MIN_HEADROOM:
            last_use.touch()  # not now: the budget is for orders
            continue
        last_use.touch()
        try:
            await read()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - the session reports its own failures
            log.debug("%s: warming read failed: %r", what, exc)

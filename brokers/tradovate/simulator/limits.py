"""Request limits of the simulated Tradovate: user-level windows (HTTP 429) and endpoint-level
penalty tickets (HTTP 200 with ``p-ticket``/``p-time``/``p-captcha``), both on their own.

The docs describe two systems (rate-limits and penalty-tickets pages):

* **User-level limits** — 1,000/s, 5,000/min, 5,000/h on general endpoints — answer
  ``429 Too Many Requests`` (REST, empty body; WebSocket ``{"s":429}``) and cannot be cleared by
  a third-party app: the user waits about an hour. Kept per user here, so one follower firm's
  login never spends another's budget.
* **Endpoint-level limits** — authentication 10/min, others per endpoint — answer a penalty
  ticket instead of the result: wait ``p-time`` seconds, then resend the identical body with the
  ``p-ticket`` field added; ``p-captcha: true`` cannot be answered by an API client. The docs key
  these to the caller's IP /24 subnet, not to the user ("callers on a shared IP share a limit"),
  so that is the default scope; ``penalty_scope="user"`` is the kinder option a test names.

A refused request (429 or penalty) was not carried out, so a client may resend it safely.
"""

from __future__ import annotations

import ipaddress
import secrets
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ....common.ratewindow import SlidingWindow
from .. import schemas as s

Reply = tuple[int, Any]
Window = tuple[int, float]

#: Docs (rate-limits): general endpoints, per user.
USER_LIMITS: tuple[Window, ...] = ((1000, 1.0), (5000, 60.0), (5000, 3600.0))
#: Docs (rate-limits): authentication 10 requests/minute. Other endpoint limits are not published.
ENDPOINT_LIMITS: Mapping[str, tuple[Window, ...]] = {"auth": ((10, 60.0),)}
#: Docs: after a 429 (or a captcha) the caller waits about an hour.
LOCKOUT_S = 3600.0

_ORDER_OPS = {"placeorder", "placeoco", "placeoso", "modifyorder", "cancelorder", "liquidateposition"}


def endpoint_class(endpoint: str) -> str:
    """The limit class of an endpoint: ``auth`` (token requests), ``order``, or ``general``."""
    endpoint = endpoint.strip("/").lower()
    if endpoint == "auth/accesstokenrequest":
        return "auth"
    kind, _, op = endpoint.partition("/")
    if kind == "order" and op in _ORDER_OPS:
        return "order"
    return "general"


def subnet_of(peer: str) -> str:
    """``a.b.c.d`` → ``a.b.c.0/24`` (the docs' p-ticket key); other peers as they are."""
    try:
        address = ipaddress.ip_address(peer)
    except ValueError:
        return peer
    if address.version == 4:
        return str(ipaddress.ip_network(f"{peer}/24", strict=False))
    return str(ipaddress.ip_network(f"{peer}/64", strict=False))


class Windows:
    """Several ``(limit, seconds)`` windows checked together; a refused request is not counted."""

    def __init__(
        self, limits: Iterable[Window], clock: Callable[[], float] = time.monotonic, history: Iterable[float] = ()
    ) -> None:
        self.limits = tuple((int(n), float(sec)) for n, sec in limits)
        self.clock = clock
        past = sorted(history)
        self._windows = [SlidingWindow(n, sec, clock=clock, history=past) for n, sec in self.limits]

    def history(self) -> list[float]:
        """Every admitted request still inside the longest window (kept across a limit change)."""
        return max((w.history() for w in self._windows), key=len, default=[])

    def admit(self) -> bool:
        now = self.clock()
        if not all(window.room(now) for window in self._windows):
            return False
        for window in self._windows:
            window.record(now)
        return True


@dataclass(slots=True)
class _Ticket:
    due: float
    key: tuple[str, str]


@dataclass
class Limits:
    """Every request passes :meth:`check` first; a non-None answer is the refusal to send."""

    user_limits: tuple[Window, ...] = USER_LIMITS
    endpoint_limits: Mapping[str, tuple[Window, ...]] = field(default_factory=lambda: dict(ENDPOINT_LIMITS))
    penalty_seconds: float = 1.0
    penalty_scope: str = "subnet"  # docs: p-tickets are keyed to the caller's /24
    captcha_after: int | None = None  # penalties in a row on one key before p-captcha
    lockout_s: float = LOCKOUT_S
    clock: Callable[[], float] = time.monotonic
    penalties: int = 0
    refusals_429: int = 0
    _users: dict[str, Windows] = field(default_factory=dict)
    _endpoints: dict[tuple[str, str], Windows] = field(default_factory=dict)
    _tickets: dict[str, _Ticket] = field(default_factory=dict)
    _strikes: dict[tuple[str, str], int] = field(default_factory=dict)
    _locked: dict[str, float] = field(default_factory=dict)

    def set_endpoint_limit(self, cls: str, *windows: Window) -> None:
        """Change one class's limit at run time; requests already made still count."""
        self.endpoint_limits = {**self.endpoint_limits, cls: tuple(windows)}
        self._endpoints = {
            k: Windows(windows, self.clock, v.history()) if k[1] == cls else v for k, v in self._endpoints.items()
        }

    def set_user_limits(self, *windows: Window) -> None:
        """Change every user's window at run time; requests already made still count."""
        self.user_limits = tuple(windows)
        self._users = {k: Windows(windows, self.clock, v.history()) for k, v in self._users.items()}

    def check(self, endpoint: str, body: Any, *, user: str | None, peer: str) -> Reply | None:
        cls = endpoint_class(endpoint)
        key = (subnet_of(peer) if self.penalty_scope == "subnet" else (user or peer), cls)
        ticket = body.get(s.PENALTY_TICKET) if isinstance(body, dict) else None
        held = self._tickets.get(str(ticket)) if ticket is not None else None
        if held is not None:
            wait = held.due - self.clock()
            if wait > 0:  # resent too early: the same ticket, the time still to wait
                return 200, s.penalty(str(ticket), max(1, round(wait)))
            del self._tickets[str(ticket)]
            self._strikes.pop(held.key, None)
        elif cls in self.endpoint_limits:
            windows = self._endpoints.setdefault(key, Windows(self.endpoint_limits[cls], self.clock))
            if not windows.admit():
                return self.penalty(key)
        if user is not None:
            return self._user_check(user)
        return None

    def penalty(self, key: tuple[str, str] = ("", "general"), *, captcha: bool = False) -> Reply:
        """Issue a penalty ticket on ``key`` (also used by the ``rate_limit_next`` fault)."""
        strikes = self._strikes[key] = self._strikes.get(key, 0) + 1
        captcha = captcha or (self.captcha_after is not None and strikes > self.captcha_after)
        self.penalties += 1
        ticket = secrets.token_hex(8)
        self._tickets[ticket] = _Ticket(self.clock() + self.penalty_seconds, key)
        reply = dict(s.penalty(ticket, max(1, round(self.penalty_seconds))))
        if captcha:
            reply[s.PENALTY_CAPTCHA] = True
        return 200, reply

    def _user_check(self, user: str) -> Reply | None:
        now = self.clock()
        until = self._locked.get(user)
        if until is not None and now < until:
            self.refusals_429 += 1
            return 429, None
        windows = self._users.setdefault(user, Windows(self.user_limits, self.clock))
        if not windows.admit():
            self._locked[user] = now + self.lockout_s
            self.refusals_429 += 1
            return 429, None
        return None


__all__ = ["ENDPOINT_LIMITS", "LOCKOUT_S", "Limits", "USER_LIMITS", "Windows", "endpoint_class", "subnet_of"]

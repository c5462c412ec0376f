"""Users, sessions and access tokens of the simulated Tradovate.

Why sessions, not just tokens: Tradovate counts *sessions* per user. Each successful
``accesstokenrequest`` opens one; a user may hold at most two, and a third closes the oldest
(its tokens stop working; docs: access-token-request, "Other Important Notes"). Renewal
(``renewaccesstoken``) issues a new token inside the same session and "extends the current
session without creating a new one", so a client that renews never kicks itself out, while a
client that logs in again on every 401 ends its own other sessions. The old token of a renewed
session stays valid until its own expiry so requests already in flight are not failed.

Credentials are checked in the real server's shapes: ``sec`` (the API key secret) and
``deviceId`` are UUIDs, ``cid`` an integer; anything else is a bad login, never a pass.
"""

from __future__ import annotations

import itertools
import secrets
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from ....common.clock import utcnow
from ...simkernel.logins import SimLogin

#: Docs (access-token-request): "limited to 2 concurrent sessions".
MAX_SESSIONS = 2
#: The reply the docs show for a refused login (HTTP 200 with errorText).
BAD_LOGIN = "Incorrect username or password. Please try again, noting that passwords are case-sensitive."
#: The API key every simulated user's app presents (one vendor app, many users).
SIM_SEC = "5e0c8a4e-3f6b-4d2a-9c71-0b8f2d6a1e34"
SIM_CID = 8
SIM_APP_ID = "CopyTrader"


@dataclass(frozen=True, slots=True)
class SimUser:
    user_id: int
    name: str
    password: str = field(repr=False)
    accounts: tuple[str, ...]


@dataclass(slots=True)
class Token:
    value: str
    user_id: int
    expires: datetime
    session_id: int = 0
    revoked: bool = False

    def valid(self, now: datetime) -> bool:
        return not self.revoked and now < self.expires


def _is_uuid(value: Any) -> bool:
    try:
        uuid.UUID(str(value))
    except (ValueError, TypeError, AttributeError):
        return False
    return isinstance(value, str)


def _is_int(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return True
    return isinstance(value, str) and value.strip().lstrip("-").isdigit()


class Users:
    """The simulator's logins: name → user, and which accounts each may see."""

    def __init__(
        self,
        logins: Iterable[SimLogin],
        *,
        first_id: int = 100001,
        app_id: str = SIM_APP_ID,
        cid: int = SIM_CID,
        sec: str = SIM_SEC,
    ) -> None:
        self.app_id, self.cid, self.sec = app_id, cid, sec
        self.by_name: dict[str, SimUser] = {}
        self.by_id: dict[int, SimUser] = {}
        for n, login in enumerate(logins):
            user = SimUser(first_id + n, login.username, login.secret, tuple(login.accounts))
            self.by_name[user.name] = user
            self.by_id[user.user_id] = user

    def __iter__(self) -> Any:
        return iter(self.by_id.values())

    def owner_of(self, account: str) -> SimUser | None:
        return next((u for u in self.by_id.values() if account in u.accounts), None)

    def check(self, body: dict[str, Any]) -> SimUser | None:
        """The user these credentials log in, or None (a bad login) — shapes checked first."""
        if not (_is_uuid(body.get("sec")) and _is_uuid(body.get("deviceId")) and _is_int(body.get("cid"))):
            return None
        user = self.by_name.get(str(body.get("name", "")))
        if user is None or str(body.get("password", "")) != user.password:
            return None
        if str(body.get("appId", "")) != self.app_id or int(body["cid"]) != self.cid or body["sec"] != self.sec:
            return None
        return user

    def credentials(self, user: SimUser, device_id: str) -> dict[str, Any]:
        """The accesstokenrequest body fields a client of ``user`` sends."""
        return {
            "name": user.name,
            "password": user.password,
            "appId": self.app_id,
            "appVersion": "1.0",
            "cid": self.cid,
            "sec": self.sec,
            "deviceId": device_id,
        }


SessionClosed = Callable[[int, int], None]  # (user_id, session_id)


class TokenStore:
    def __init__(self, ttl_seconds: float, *, max_sessions: int = MAX_SESSIONS) -> None:
        self.ttl = timedelta(seconds=ttl_seconds)
        self.max_sessions = max_sessions
        self._tokens: dict[str, Token] = {}
        self._sessions: dict[int, list[int]] = {}  # user_id → open session ids, oldest first
        self._session_ids = itertools.count(1)
        self.issued = 0
        self.sessions_opened = 0
        self.sessions_closed = 0
        self.on_session_closed: list[SessionClosed] = []

    def open_session(self, user_id: int) -> Token:
        """A successful accesstokenrequest: a new session; the oldest beyond the limit closes."""
        session_id = next(self._session_ids)
        self.sessions_opened += 1
        open_ = self._sessions.setdefault(user_id, [])
        open_.append(session_id)
        while len(open_) > self.max_sessions:
            self._close(user_id, open_.pop(0))
        return self._issue(user_id, session_id)

    def issue(self, user_id: int) -> Token:
        """Kept for callers that want a token in a fresh session (same as :meth:`open_session`)."""
        return self.open_session(user_id)

    def _issue(self, user_id: int, session_id: int) -> Token:
        token = Token(secrets.token_urlsafe(24), user_id, utcnow() + self.ttl, session_id)
        self._tokens[token.value] = token
        self.issued += 1
        return token

    def _close(self, user_id: int, session_id: int) -> None:
        for token in self._tokens.values():
            if token.session_id == session_id:
                token.revoked = True
        self.sessions_closed += 1
        for listener in list(self.on_session_closed):
            listener(user_id, session_id)

    def open_sessions(self, user_id: int) -> list[int]:
        return list(self._sessions.get(user_id, []))

    def lookup(self, value: str | None) -> Token | None:
        """The token if it exists and is still valid, else ``None`` (→ 401)."""
        token = self._tokens.get(value or "")
        return token if token is not None and token.valid(utcnow()) else None

    def renew(self, value: str | None) -> Token | None:
        """A new token in the same session (docs: renewal never opens a session)."""
        old = self.lookup(value)
        return self._issue(old.user_id, old.session_id) if old else None

    def expire(self, value: str) -> None:
        token = self._tokens.get(value)
        if token is not None:
            token.revoked = True

    def expire_user(self, user_id: int) -> None:
        for token in self._tokens.values():
            if token.user_id == user_id:
                token.revoked = True

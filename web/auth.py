"""Dashboard authentication: users, server-side sessions, CSRF tokens and login rate limits.

Why server-side sessions (a random token in an HttpOnly, SameSite=Strict cookie, the state in
memory or Redis) rather than signed cookies: logout and "revoke everywhere" must take effect at
once, including for an open Socket.IO connection. With ``COPYTRADER_REDIS_URL`` set, sessions
and login attempt counters live in Redis so every web worker sees the same ones.

Passwords are verified with ``storage.passwords`` (scrypt, memory-hard) in a thread, because one
verification costs ~100 ms of CPU and must not stall the event loop that pushes live data.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import orjson
from aiohttp import web as aioweb

from ..common.ratewindow import SlidingWindow
from ..storage.passwords import hash_password, verify_password

log = logging.getLogger(__name__)
COOKIE = "ct_session"
CSRF_HEADER = "X-CSRF-Token"
SESSION_TTL_S = 12 * 3600
LOGIN_WINDOW_S = 300
# Login throttling (per client address, never per user name): the first failures are free
# (typos), then each further attempt from that address waits twice as long as the last, up
# to the cap. A delay, never a refusal: the right password always gets in, and one address's
# failures never slow down another's.
LOGIN_FREE_FAILURES = 3
LOGIN_BASE_DELAY_S = 0.5
LOGIN_MAX_DELAY_S = 30.0


@dataclass(frozen=True, slots=True)
class User:
    username: str
    is_admin: bool = True


@dataclass(frozen=True, slots=True)
class Session:
    token: str
    username: str
    csrf: str
    expires: float

    def to_json(self) -> bytes:
        return orjson.dumps({"username": self.username, "csrf": self.csrf, "expires": self.expires})


SESSION_KEY: aioweb.RequestKey[Session] = aioweb.RequestKey("session", Session)


# ------------------------------------------------------------------------------- users


class UserStore(Protocol):
    async def verify(self, username: str, password: str) -> User | None: ...


class StaticUsers:
    """Users from the environment: ``COPYTRADER_ADMIN_USER`` with ``COPYTRADER_ADMIN_PASSWORD_HASH``
    (a ``storage.passwords`` hash) or ``COPYTRADER_ADMIN_PASSWORD`` (hashed on first use).

    Without either, a random password is generated and written to ``<data_dir>/admin-password``
    (mode 0600) — never logged — so a fresh install is never open and never has a known default.
    Nothing is hashed or generated until the first login: every CLI command builds the app,
    and none of them should pay two scrypt hashes or leave a password file behind.
    """

    def __init__(self, user: str, stored: str | None, password: str | None, data_dir: Path) -> None:
        self._user = user
        self._stored = stored
        self._password = password
        self._data_dir = data_dir
        self._hashes: dict[str, str] | None = None
        self._dummy = ""

    @classmethod
    def from_env(cls, data_dir: Path, env: dict[str, str] | None = None) -> StaticUsers:
        env = dict(os.environ) if env is None else env
        return cls(
            env.get("COPYTRADER_ADMIN_USER", "admin"),
            env.get("COPYTRADER_ADMIN_PASSWORD_HASH"),
            env.get("COPYTRADER_ADMIN_PASSWORD"),
            data_dir,
        )

    def _prepare(self) -> dict[str, str]:
        if self._hashes is None:
            stored = self._stored or hash_password(self._password or _generated_password(self._data_dir))
            self._password = None
            # A dummy hash so an unknown user costs the same time as a wrong password.
            self._dummy = hash_password(secrets.token_urlsafe(16))
            self._hashes = {self._user: stored}
        return self._hashes

    def _check(self, username: str, password: str) -> bool:
        stored = self._prepare().get(username)
        return verify_password(password, stored or self._dummy) and stored is not None

    async def verify(self, username: str, password: str) -> User | None:
        ok = await asyncio.to_thread(self._check, username, password)
        return User(username) if ok else None


class SqlUsers:
    """Users from the ``users`` table of ``storage`` (when ``COPYTRADER_DATABASE_URL`` is set)."""

    def __init__(self, session_factory: Any, fallback: StaticUsers) -> None:
        self._factory = session_factory
        self._fallback = fallback

    def _lookup(self, username: str, password: str) -> User | None:
        from sqlalchemy import select

        from ..storage.models import User as UserRow

        with self._factory() as db:
            row = db.scalar(select(UserRow).where(UserRow.username == username))
            if row is None or not row.is_active:
                return None
            return User(row.username, bool(row.is_admin)) if verify_password(password, row.password_hash) else None

    async def verify(self, username: str, password: str) -> User | None:
        try:
            found = await asyncio.to_thread(self._lookup, username, password)
        except Exception as exc:  # noqa: BLE001 - no users table yet (not migrated): env users still work
            log.warning("users table unavailable (%s); using the environment's admin user", type(exc).__name__)
            found = None
        return found or await self._fallback.verify(username, password)


def ensure_admin_password(data_dir: Path) -> str:
    """The generated admin password (created on first use); the demo prints it at start."""
    return _generated_password(data_dir)


def _generated_password(data_dir: Path) -> str:
    path = data_dir / "admin-password"
    if path.exists():
        return path.read_text().strip()
    data_dir.mkdir(parents=True, exist_ok=True)
    password = secrets.token_urlsafe(18)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(password + "\n")
    log.warning("no COPYTRADER_ADMIN_PASSWORD set: generated one for user 'admin' in %s", path)
    return password


# ---------------------------------------------------------------------------- sessions


class SessionStore(Protocol):
    async def create(self, username: str) -> Session: ...
    async def get(self, token: str) -> Session | None: ...
    async def delete(self, token: str) -> None: ...
    async def hit(self, key: str, window_s: int) -> int: ...
    async def hits(self, key: str, window_s: int) -> int: ...
    async def clear_hits(self, key: str) -> None: ...


def _new_session(username: str) -> Session:
    return Session(secrets.token_urlsafe(32), username, secrets.token_urlsafe(24), time.time() + SESSION_TTL_S)


class MemorySessions:
    """One process's sessions and login counters (a single web worker needs nothing more)."""

    def __init__(self) -> None:
        self._sessions: dict[str, Session] = {}
        self._hits: dict[str, SlidingWindow] = {}

    async def create(self, username: str) -> Session:
        session = _new_session(username)
        self._sessions[session.token] = session
        return session

    async def get(self, token: str) -> Session | None:
        session = self._sessions.get(token)
        if session is not None and session.expires < time.time():
            self._sessions.pop(token, None)
            return None
        return session

    async def delete(self, token: str) -> None:
        self._sessions.pop(token, None)

    def _window(self, key: str, window_s: int) -> SlidingWindow:
        """The key's attempts; the window only counts (the caller compares with its limit)."""
        window = self._hits.get(key)
        if window is None or window.seconds != window_s:
            history = window.history() if window is not None else ()
            window = self._hits[key] = SlidingWindow(1, window_s, history=history)
        return window

    async def hit(self, key: str, window_s: int) -> int:
        window = self._window(key, window_s)
        window.record()
        return window.count()

    async def hits(self, key: str, window_s: int) -> int:
        return self._window(key, window_s).count()

    async def clear_hits(self, key: str) -> None:
        self._hits.pop(key, None)


class RedisSessions:
    """Sessions and counters in Redis, shared by every web worker (keys expire by themselves)."""

    def __init__(self, url: str) -> None:
        import redis.asyncio as redis

        self._redis = redis.from_url(url)

    async def create(self, username: str) -> Session:
        session = _new_session(username)
        await self._redis.set(f"ct:session:{session.token}", session.to_json(), ex=SESSION_TTL_S)
        return session

    async def get(self, token: str) -> Session | None:
        raw = await self._redis.get(f"ct:session:{token}")
        if raw is None:
            return None
        data = orjson.loads(raw)
        return Session(token, data["username"], data["csrf"], float(data["expires"]))

    async def delete(self, token: str) -> None:
        await self._redis.delete(f"ct:session:{token}")

    async def hit(self, key: str, window_s: int) -> int:
        name = f"ct:hits:{key}"
        count = int(await self._redis.incr(name))
        if count == 1:
            await self._redis.expire(name, window_s)
        return count

    async def hits(self, key: str, window_s: int) -> int:
        return int(await self._redis.get(f"ct:hits:{key}") or 0)

    async def clear_hits(self, key: str) -> None:
        await self._redis.delete(f"ct:hits:{key}")


# ------------------------------------------------------------------------------- service


class LoginRefused(Exception):
    def __init__(self, status: int, message: str, retry_after: int = 0) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.retry_after = retry_after


class Auth:
    """Login, logout and request checks; the one place that decides who is who."""

    def __init__(
        self,
        users: UserStore,
        sessions: SessionStore,
        secure_cookie: bool = True,
        base_delay_s: float = LOGIN_BASE_DELAY_S,
        max_delay_s: float = LOGIN_MAX_DELAY_S,
    ) -> None:
        self.users = users
        self.sessions = sessions
        self.secure_cookie = secure_cookie
        self.base_delay_s = base_delay_s
        self.max_delay_s = max_delay_s
        # One attempt at a time per address in this process: parallel guesses queue behind
        # the delay instead of all sleeping it at once. [lock, users] so idle ones are dropped.
        self._gates: dict[str, list[Any]] = {}

    def delay_for(self, failures: int) -> float:
        """Seconds an address with ``failures`` recent failures waits before its next attempt."""
        if failures < LOGIN_FREE_FAILURES:
            return 0.0
        return min(self.max_delay_s, self.base_delay_s * 2.0 ** min(failures - LOGIN_FREE_FAILURES, 32))

    async def login(self, username: str, password: str, client: str) -> Session:
        """Throttled per client address: slowed down after failures, never refused.

        Why not a per-user limit: anyone could then keep the admin out by sending six wrong
        passwords every five minutes. Why not refuse an address over a limit: the real user
        may share it (NAT, a proxy). A delay costs an attacker their guessing rate and the
        real user a few seconds at most.
        """
        key = f"ip:{client}"
        gate = self._gates.setdefault(key, [asyncio.Lock(), 0])
        gate[1] += 1
        try:
            async with gate[0]:
                delay = self.delay_for(await self.sessions.hits(key, LOGIN_WINDOW_S))
                if delay:
                    await asyncio.sleep(delay)
                user = await self.users.verify(username, password)
                if user is None:
                    await self.sessions.hit(key, LOGIN_WINDOW_S)
                    log.info("failed login for user %r from %s", username[:64], client)
                    raise LoginRefused(401, "wrong username or password")
                await self.sessions.clear_hits(key)
        finally:
            gate[1] -= 1
            if gate[1] == 0:
                self._gates.pop(key, None)
        return await self.sessions.create(user.username)

    async def session_for(self, cookies: Any) -> Session | None:
        token = cookies.get(COOKIE) if cookies is not None else None
        if not token or len(token) > 128:
            return None
        return await self.sessions.get(token)

    @staticmethod
    def csrf_ok(session: Session, presented: str | None) -> bool:
        return bool(presented) and hmac.compare_digest(session.csrf, presented or "")

    def cookie_options(self) -> dict[str, Any]:
        return {
            "httponly": True,
            "samesite": "Strict",
            "secure": self.secure_cookie,
            "path": "/",
            "max_age": SESSION_TTL_S,
        }


def parse_cookie_header(header: str | None) -> dict[str, str]:
    """Cookies from a raw ``Cookie`` header (the Socket.IO handshake gives only the environ)."""
    found: dict[str, str] = {}
    for part in (header or "").split(";"):
        name, _, value = part.strip().partition("=")
        if name:
            found[name] = value
    return found

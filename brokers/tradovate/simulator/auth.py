"""Access tokens of the simulated Tradovate: issue, renew, expire (TTL is an option).

Renewal returns a new token with a new expiry and keeps the session (docs: renewaccesstoken
"extends the current session without creating a new one"); the old token stays valid until
its own expiry so requests already in flight are not failed by a renewal.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from ...model import utcnow


@dataclass(slots=True)
class Token:
    value: str
    user_id: int
    expires: datetime
    revoked: bool = False

    def valid(self, now: datetime) -> bool:
        return not self.revoked and now < self.expires


class TokenStore:
    def __init__(self, ttl_seconds: float) -> None:
        self.ttl = timedelta(seconds=ttl_seconds)
        self._tokens: dict[str, Token] = {}
        self.issued = 0

    def issue(self, user_id: int) -> Token:
        token = Token(secrets.token_urlsafe(24), user_id, utcnow() + self.ttl)
        self._tokens[token.value] = token
        self.issued += 1
        return token

    def lookup(self, value: str | None) -> Token | None:
        """The token if it exists and is still valid, else ``None`` (→ 401)."""
        token = self._tokens.get(value or "")
        return token if token is not None and token.valid(utcnow()) else None

    def renew(self, value: str | None) -> Token | None:
        old = self.lookup(value)
        return self.issue(old.user_id) if old else None

    def expire(self, value: str) -> None:
        token = self._tokens.get(value)
        if token is not None:
            token.revoked = True

    def expire_user(self, user_id: int) -> None:
        for token in self._tokens.values():
            if token.user_id == user_id:
                token.revoked = True

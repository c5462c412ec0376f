"""Session tokens the simulated gateway issues and checks.

Tokens look like the gateway's JWTs (three base64url parts, HMAC-signed) so clients that peek
at ``exp`` work, and carry a configurable TTL so tests can expire one mid-session. (The request
budget, the documented sliding window per user, is a ``common.ratewindow.SlidingWindow`` held
by the simulator.)
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(slots=True)
class Claims:
    user: str
    expires_at: float
    token_id: str


class TokenService:
    """Issue and check bearer tokens; ``expire`` backdates a live token (the expire_token fault)."""

    def __init__(self, ttl_seconds: float = 86400.0) -> None:
        self.ttl = ttl_seconds
        self._key = secrets.token_bytes(32)
        self._expired_early: set[str] = set()

    def issue(self, user: str) -> str:
        header = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
        claims = {"sub": user, "exp": time.time() + self.ttl, "jti": secrets.token_hex(8)}
        body = _b64(json.dumps(claims).encode())
        signature = _b64(hmac.new(self._key, f"{header}.{body}".encode(), hashlib.sha256).digest())
        return f"{header}.{body}.{signature}"

    def decode(self, token: str) -> Claims | None:
        """Claims of a token we signed (expired or not); ``None`` for anything forged or garbled."""
        try:
            header, body, signature = token.split(".")
            expected = _b64(hmac.new(self._key, f"{header}.{body}".encode(), hashlib.sha256).digest())
            if not hmac.compare_digest(expected, signature):
                return None
            claims = json.loads(_unb64(body))
            return Claims(str(claims["sub"]), float(claims["exp"]), str(claims["jti"]))
        except (ValueError, KeyError, TypeError):
            return None

    def is_live(self, claims: Claims) -> bool:
        return claims.token_id not in self._expired_early and claims.expires_at > time.time()

    def expire(self, claims: Claims) -> None:
        self._expired_early.add(claims.token_id)

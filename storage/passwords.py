"""Password hashing for dashboard logins: scrypt from the standard library.

scrypt is memory-hard (brute force on GPUs costs memory, not only time) and needs no new
dependency; argon2id would do as well but needs ``argon2-cffi``. Parameters follow OWASP's
scrypt guidance (N=2**17, r=8, p=1: about 128 MiB and a few hundred ms per hash) and are stored
in the hash string, so raising them later only needs :func:`needs_rehash` at the next login.

Format: ``scrypt$<log2 N>$<r>$<p>$<salt b64>$<key b64>``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from dataclasses import dataclass

PREFIX = "scrypt"


@dataclass(frozen=True, slots=True)
class ScryptParams:
    log2_n: int = 17
    r: int = 8
    p: int = 1
    salt_bytes: int = 16
    key_bytes: int = 32

    @property
    def maxmem(self) -> int:
        """OpenSSL's default 32 MiB limit is below N=2**17; allow twice the need."""
        return 2 * 128 * self.r * (1 << self.log2_n) * self.p + 1024 * 1024


DEFAULT_PARAMS = ScryptParams()


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _derive(password: str, salt: bytes, params: ScryptParams) -> bytes:
    return hashlib.scrypt(
        password.encode("utf-8"),
        salt=salt,
        n=2**params.log2_n,
        r=params.r,
        p=params.p,
        maxmem=params.maxmem,
        dklen=params.key_bytes,
    )


def hash_password(password: str, params: ScryptParams = DEFAULT_PARAMS) -> str:
    """A self-describing hash string for ``users.password_hash``."""
    if not password:
        raise ValueError("password must not be empty")
    salt = os.urandom(params.salt_bytes)
    key = _derive(password, salt, params)
    return f"{PREFIX}${params.log2_n}${params.r}${params.p}${_b64(salt)}${_b64(key)}"


def _parse(stored: str) -> tuple[ScryptParams, bytes, bytes] | None:
    parts = stored.split("$")
    if len(parts) != 6 or parts[0] != PREFIX:
        return None
    try:
        log2_n, r, p = int(parts[1]), int(parts[2]), int(parts[3])
        salt, key = _unb64(parts[4]), _unb64(parts[5])
    except ValueError:
        return None
    if not (1 <= log2_n <= 24 and 1 <= r <= 64 and 1 <= p <= 16 and salt and key):
        return None  # refuse parameters that would let a forged hash exhaust memory
    return ScryptParams(log2_n, r, p, len(salt), len(key)), salt, key


def verify_password(password: str, stored: str) -> bool:
    """True when ``password`` matches; a malformed ``stored`` value is simply no match."""
    parsed = _parse(stored)
    if parsed is None or not password:
        return False
    params, salt, key = parsed
    return hmac.compare_digest(_derive(password, salt, params), key)


def needs_rehash(stored: str, params: ScryptParams = DEFAULT_PARAMS) -> bool:
    """True when the stored hash used weaker parameters than the current ones."""
    parsed = _parse(stored)
    if parsed is None:
        return True
    old = parsed[0]
    return old.log2_n < params.log2_n or old.r < params.r or old.p < params.p or old.key_bytes < params.key_bytes

"""Encryption of broker credentials at rest: Fernet (AES-128-CBC + HMAC-SHA256) from ``cryptography``.

Fernet because its key format is what the Helm chart mounts (44 url-safe base64 characters,
32 bytes) and because it is authenticated: a wrong key or an altered blob fails loudly
(:class:`CredentialKeyError`) instead of decrypting to garbage. Each blob also carries the
session it belongs to, so a blob copied onto another session's row is refused too.

The key comes from ``COPYTRADER_SECRET_KEY`` or, for a mounted Kubernetes secret, the file
named by ``COPYTRADER_SECRET_KEY_FILE``. Several comma-separated keys may be given: the first
encrypts, all decrypt, which is how a key is rotated (:meth:`CredentialCipher.rotate`).
Nothing in this module logs or puts a secret or key in an exception message; decrypted
secrets come back as :class:`SecretStr`, whose ``repr`` is masked.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

KEY_ENV = "COPYTRADER_SECRET_KEY"
KEY_FILE_ENV = "COPYTRADER_SECRET_KEY_FILE"
BLOB_VERSION = 1


class CredentialKeyError(Exception):
    """No usable key, or the stored credentials were encrypted with a different key."""


class SecretStr:
    """A secret that does not show itself in logs, tracebacks or ``repr``."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "SecretStr('********')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SecretStr) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


def generate_key() -> str:
    """A new key in the format the Helm chart mounts."""
    return Fernet.generate_key().decode()


def key_id(key: str | bytes) -> str:
    """A short, non-reversible fingerprint that names a key without revealing it."""
    raw = key.encode() if isinstance(key, str) else key
    return hashlib.sha256(b"copytrader-key-id:" + raw.strip()).hexdigest()[:16]


def _parse_key(text: str, source: str, index: int) -> bytes:
    key = text.strip().encode()
    try:
        raw = base64.urlsafe_b64decode(key)
    except (binascii.Error, ValueError):
        raw = b""
    if len(key) != 44 or len(raw) != 32:
        # Say what is wrong with the key, never what it is.
        raise CredentialKeyError(
            f"{source}: key #{index + 1} is not a valid key (need 44 url-safe base64 characters "
            f"encoding 32 bytes; got {len(key)} characters). Generate one with "
            "`python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'`"
        )
    return key


def load_keys(env: dict[str, str] | None = None) -> list[bytes]:
    """Keys from ``COPYTRADER_SECRET_KEY`` or the file ``COPYTRADER_SECRET_KEY_FILE`` names."""
    env = dict(os.environ) if env is None else env
    if env.get(KEY_ENV):
        text, source = env[KEY_ENV], KEY_ENV
    elif env.get(KEY_FILE_ENV):
        path = Path(env[KEY_FILE_ENV])
        try:
            text = path.read_text()
        except OSError as exc:
            raise CredentialKeyError(f"{KEY_FILE_ENV}: cannot read {path}: {exc.strerror}") from None
        source = f"{KEY_FILE_ENV} ({path})"
    else:
        raise CredentialKeyError(f"no encryption key: set {KEY_ENV} or {KEY_FILE_ENV}")
    parts = [part for part in text.replace("\n", ",").split(",") if part.strip()]
    if not parts:
        raise CredentialKeyError(f"{source} is empty")
    return [_parse_key(part, source, i) for i, part in enumerate(parts)]


def ensure_key_file(data_dir: Path) -> Path:
    """A generated key in ``data_dir/secret-key`` (0600, created once) for a local run.

    The demo hands it to every worker via ``COPYTRADER_SECRET_KEY_FILE``, so logins typed into
    its dashboard can be sealed by the web worker and opened by the executor. Production sets
    its own key (a Kubernetes secret, see the Helm chart).
    """
    path = data_dir / "secret-key"
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(generate_key() + "\n")
    return path


def optional_cipher(env: dict[str, str] | None = None) -> CredentialCipher | None:
    """The configured cipher, or None when no key is configured at all.

    A key that is configured but unreadable or malformed still raises: a worker must not quietly
    run without the key its operator meant to give it.
    """
    env = dict(os.environ) if env is None else env
    if not env.get(KEY_ENV) and not env.get(KEY_FILE_ENV):
        return None
    return CredentialCipher.from_env(env)


class CredentialCipher:
    """Encrypts and decrypts one session's secret; the first key encrypts, all keys decrypt."""

    def __init__(self, keys: list[bytes] | list[str]) -> None:
        if not keys:
            raise CredentialKeyError("no encryption key given")
        self._keys = [k.encode() if isinstance(k, str) else k for k in keys]
        self._fernet = MultiFernet([Fernet(k) for k in self._keys])
        self._ids = {key_id(k) for k in self._keys}
        self.primary_key_id = key_id(self._keys[0])

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> CredentialCipher:
        return cls(load_keys(env))

    def __repr__(self) -> str:
        return f"CredentialCipher(primary_key_id={self.primary_key_id!r}, keys={len(self._keys)})"

    def encrypt(self, session: str, secret: str) -> bytes:
        """The blob to store in ``broker_credentials.secret_blob``."""
        body = json.dumps({"v": BLOB_VERSION, "session": session, "secret": secret}).encode()
        return self._fernet.encrypt(body)

    def decrypt(self, session: str, blob: bytes, stored_key_id: str | None = None) -> SecretStr:
        """The secret of ``session``; raises :class:`CredentialKeyError` rather than guessing."""
        if stored_key_id is not None and stored_key_id not in self._ids:
            raise CredentialKeyError(
                f"credentials of session {session!r} were encrypted with a different key "
                f"(key id {stored_key_id}; configured: {', '.join(sorted(self._ids))})"
            )
        try:
            body = json.loads(self._fernet.decrypt(bytes(blob)))
        except InvalidToken:
            raise CredentialKeyError(
                f"credentials of session {session!r} were encrypted with a different key "
                "(or the stored blob was altered)"
            ) from None
        if not isinstance(body, dict) or body.get("session") != session:
            raise CredentialKeyError(f"credentials blob does not belong to session {session!r}")
        return SecretStr(str(body["secret"]))

    def rotate(self, blob: bytes) -> bytes:
        """Re-encrypt under the primary key (after a new key was put first in the list)."""
        try:
            return self._fernet.rotate(bytes(blob))
        except InvalidToken:
            raise CredentialKeyError("credentials were encrypted with a different key") from None

"""Broker credentials in the database: one encrypted secret per broker session.

Thin on purpose: all cryptography lives in ``storage.crypto``; this module only moves blobs in
and out of ``broker_credentials`` so the rest of the code never touches a ciphertext.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..common.crypto import CredentialCipher, CredentialKeyError, SecretStr, key_id
from .models import BrokerCredential


def store_credential(
    db: Session, cipher: CredentialCipher, session: str, platform: str, secret: str, username: str | None = None
) -> BrokerCredential:
    """Insert or replace the secret of ``session`` (the caller commits)."""
    row = db.scalar(select(BrokerCredential).where(BrokerCredential.session == session))
    if row is None:
        row = BrokerCredential(session=session, platform=platform)
        db.add(row)
    row.platform = platform
    row.username = username
    row.secret_blob = cipher.encrypt(session, secret)
    row.key_id = cipher.primary_key_id
    db.flush()
    return row


def load_credential(db: Session, cipher: CredentialCipher, session: str) -> SecretStr | None:
    """The decrypted secret of ``session``, or None when none is stored."""
    row = db.scalar(select(BrokerCredential).where(BrokerCredential.session == session))
    if row is None:
        return None
    return cipher.decrypt(session, row.secret_blob, row.key_id)


def rotate_credentials(db: Session, cipher: CredentialCipher) -> int:
    """Re-encrypt every blob not yet under the primary key; returns how many changed."""
    changed = 0
    for row in db.scalars(select(BrokerCredential)):
        if row.key_id == cipher.primary_key_id:
            continue
        row.secret_blob = cipher.rotate(row.secret_blob)
        row.key_id = cipher.primary_key_id
        changed += 1
    db.flush()
    return changed


__all__ = ["CredentialKeyError", "key_id", "load_credential", "rotate_credentials", "store_credential"]

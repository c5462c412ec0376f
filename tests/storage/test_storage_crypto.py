"""Credentials at rest: round trip, wrong key, tampering, key sources, rotation, no leaks."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from copytrader.common.crypto import (
    CredentialCipher,
    CredentialKeyError,
    SecretStr,
    generate_key,
    key_id,
    load_keys,
)
from copytrader.storage.credentials import (
    load_credential,
    rotate_credentials,
    store_credential,
)
from copytrader.storage.models import BrokerCredential

SECRET = "s3cr3t-api-key"


def test_round_trip() -> None:
    cipher = CredentialCipher([generate_key()])
    blob = cipher.encrypt("tradovate-main", SECRET)
    assert SECRET.encode() not in blob
    assert cipher.decrypt("tradovate-main", blob).reveal() == SECRET


def test_wrong_key_is_a_clear_error() -> None:
    blob = CredentialCipher([generate_key()]).encrypt("s1", SECRET)
    with pytest.raises(CredentialKeyError, match="credentials .* were encrypted with a different key"):
        CredentialCipher([generate_key()]).decrypt("s1", blob)


def test_wrong_key_named_by_key_id_before_decrypting() -> None:
    old = generate_key()
    blob = CredentialCipher([old]).encrypt("s1", SECRET)
    with pytest.raises(CredentialKeyError, match=f"different key \\(key id {key_id(old)}"):
        CredentialCipher([generate_key()]).decrypt("s1", blob, key_id(old))


def test_tampered_blob_and_blob_of_another_session_are_refused() -> None:
    cipher = CredentialCipher([generate_key()])
    blob = bytearray(cipher.encrypt("s1", SECRET))
    blob[-5] ^= 1
    with pytest.raises(CredentialKeyError):
        cipher.decrypt("s1", bytes(blob))
    with pytest.raises(CredentialKeyError, match="does not belong to session 's2'"):
        cipher.decrypt("s2", cipher.encrypt("s1", SECRET))


def test_key_from_env_or_mounted_file(tmp_path: Path) -> None:
    key = generate_key()
    assert load_keys({"COPYTRADER_SECRET_KEY": key}) == [key.encode()]
    mounted = tmp_path / "secret-key"
    mounted.write_text(key + "\n")  # Kubernetes secret files often end with a newline
    assert load_keys({"COPYTRADER_SECRET_KEY_FILE": str(mounted)}) == [key.encode()]
    with pytest.raises(CredentialKeyError, match="cannot read"):
        load_keys({"COPYTRADER_SECRET_KEY_FILE": str(tmp_path / "missing")})
    with pytest.raises(CredentialKeyError, match="no encryption key"):
        load_keys({})


def test_invalid_key_message_never_contains_the_key() -> None:
    bad = "not-a-real-key-but-a-password-someone-pasted"
    with pytest.raises(CredentialKeyError) as info:
        load_keys({"COPYTRADER_SECRET_KEY": bad})
    assert bad not in str(info.value)
    assert "44 url-safe base64 characters" in str(info.value)


def test_rotation_with_two_keys() -> None:
    old, new = generate_key(), generate_key()
    blob = CredentialCipher([old]).encrypt("s1", SECRET)
    both = CredentialCipher.from_env({"COPYTRADER_SECRET_KEY": f"{new},{old}"})
    assert both.decrypt("s1", blob, key_id(old)).reveal() == SECRET
    rotated = both.rotate(blob)
    assert CredentialCipher([new]).decrypt("s1", rotated, key_id(new)).reveal() == SECRET


def test_secret_str_and_cipher_do_not_show_secrets() -> None:
    key = generate_key()
    cipher = CredentialCipher([key])
    secret = SecretStr(SECRET)
    for text in (repr(secret), str(secret), f"{secret}", repr(cipher)):
        assert SECRET not in text and key not in text


def test_store_and_load_in_database(db: Session, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    old, new = generate_key(), generate_key()
    cipher = CredentialCipher([old])
    store_credential(db, cipher, "px-1", "projectx", SECRET, username="trader")
    db.commit()
    row = db.query(BrokerCredential).one()
    assert SECRET.encode() not in row.secret_blob and row.key_id == key_id(old)
    assert load_credential(db, cipher, "px-1") == SecretStr(SECRET)
    assert load_credential(db, cipher, "unknown") is None
    with pytest.raises(CredentialKeyError, match="different key"):
        load_credential(db, CredentialCipher([new]), "px-1")
    assert rotate_credentials(db, CredentialCipher([new, old])) == 1
    db.commit()
    assert load_credential(db, CredentialCipher([new]), "px-1") == SecretStr(SECRET)
    assert SECRET not in caplog.text

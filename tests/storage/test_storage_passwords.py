"""Login password hashes: scrypt strings that verify, reject, and say when to rehash."""

from __future__ import annotations

from copytrader.storage.passwords import (
    DEFAULT_PARAMS,
    ScryptParams,
    hash_password,
    needs_rehash,
    verify_password,
)

FAST = ScryptParams(log2_n=10)  # the tests need correctness, not brute-force resistance


def test_hash_and_verify() -> None:
    stored = hash_password("correct horse", FAST)
    assert stored.startswith("scrypt$10$8$1$")
    assert verify_password("correct horse", stored)
    assert not verify_password("wrong horse", stored)
    assert not verify_password("", stored)


def test_salted_every_time() -> None:
    assert hash_password("same", FAST) != hash_password("same", FAST)


def test_default_parameters_round_trip() -> None:
    stored = hash_password("pw", DEFAULT_PARAMS)
    assert verify_password("pw", stored) and not needs_rehash(stored)


def test_malformed_or_hostile_hashes_never_match() -> None:
    for stored in ("", "plain", "bcrypt$x", "scrypt$10$8$1$!!$!!", "scrypt$40$8$1$AAAA$AAAA"):
        assert not verify_password("pw", stored)
        assert needs_rehash(stored)


def test_weaker_parameters_need_rehash() -> None:
    assert needs_rehash(hash_password("pw", FAST))

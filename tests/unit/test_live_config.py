"""Accounts and followers added to a running config (``app.live_config``) and their records."""

from __future__ import annotations

from decimal import Decimal

import orjson
import pytest

from copytrader.brokers.base import SessionConfig
from copytrader.common.crypto import CredentialCipher, CredentialKeyError, generate_key
from copytrader.core.config import Account, parse_config
from copytrader.core.control_records import AccountCommand, Login, decode_command, seal_login, unseal_login
from copytrader.core.live_config import add_follower, apply_account, dashboard_session_id
from copytrader.core.scaling import CopyRule, ScalingMode
from copytrader.demo.configgen import demo_config


def config():  # type: ignore[no-untyped-def]
    return parse_config(demo_config(3), env={})


def own_session(account_id: str, secret: str | None = None) -> SessionConfig:
    sid = dashboard_session_id(account_id)
    return SessionConfig("tradovate", sid, {}, "http://127.0.0.1:1", "login", secret)


def test_a_new_account_gets_its_own_session_without_a_reconnect() -> None:
    cfg = config()
    sid = dashboard_session_id("x1")
    change = apply_account(cfg, Account("x1", sid, "tradovate", "TV-1", Decimal(25000)), own_session("x1", "s1"))
    assert change.reconnect is None and change.session_id == sid
    assert cfg.sessions[sid].accounts == {"x1": "TV-1"} and cfg.accounts["x1"].size == Decimal(25000)
    # The same record again (a replay) changes nothing.
    again = apply_account(cfg, Account("x1", sid, "tradovate", "TV-1", Decimal(25000)), own_session("x1", "s1"))
    assert again.reconnect is None
    # A new secret must reopen the session; so must another broker account name.
    assert (
        apply_account(cfg, Account("x1", sid, "tradovate", "TV-1", Decimal(25000)), own_session("x1", "s2")).reconnect
        == sid
    )
    assert (
        apply_account(cfg, Account("x1", sid, "tradovate", "TV-9", Decimal(25000)), own_session("x1", "s2")).reconnect
        == sid
    )
    # Size alone is the planner's business: no reconnect.
    assert (
        apply_account(cfg, Account("x1", sid, "tradovate", "TV-9", Decimal(1)), own_session("x1", "s2")).reconnect
        is None
    )


def test_a_configured_account_moved_to_its_own_session_leaves_the_shared_one() -> None:
    cfg = config()
    shared = cfg.accounts["f001"].session_id
    assert "f001" in cfg.sessions[shared].accounts
    sid = dashboard_session_id("f001")
    change = apply_account(cfg, Account("f001", sid, "tradovate", "TV-F1", Decimal(50000)), own_session("f001", "s"))
    assert change.left_session == shared and "f001" not in cfg.sessions[shared].accounts
    assert cfg.session_for("f001").session_id == sid
    with pytest.raises(KeyError, match="unknown session"):
        apply_account(cfg, Account("x2", "nowhere", "paper", "P", Decimal(1)))


def test_add_follower_joins_enabled_groups_once_and_never_the_leader() -> None:
    cfg = config()
    rule = CopyRule(mode=ScalingMode.FIXED, quantity=3)
    assert "x1" not in cfg.follower_accounts()
    assert add_follower(cfg, "demo", "x1", rule, True) is True
    assert add_follower(cfg, "demo", "x1", rule, True) is False
    assert add_follower(cfg, "nope", "x1", rule, True) is False
    assert add_follower(cfg, "demo", "leader-1", rule, True) is False
    members = [f.account_id for _, f in cfg.followers_by_leader["leader-1"]]
    assert members.count("x1") == 1 and "x1" in cfg.follower_accounts()


def test_a_login_is_sealed_to_its_account_and_opens_only_with_the_key() -> None:
    cipher = CredentialCipher([generate_key()])
    sealed = seal_login(cipher, "x1", Login("trader", "Pa55-word", {"sec": "api-secret"}))
    assert "Pa55-word" not in sealed and "trader" not in sealed and "api-secret" not in sealed
    assert unseal_login(cipher, "x1", sealed, cipher.primary_key_id) == Login(
        "trader", "Pa55-word", {"sec": "api-secret"}
    )
    with pytest.raises(CredentialKeyError):
        unseal_login(cipher, "x2", sealed)  # a token copied into another account's record
    with pytest.raises(CredentialKeyError):
        unseal_login(CredentialCipher([generate_key()]), "x1", sealed)  # another key
    with pytest.raises(CredentialKeyError, match="no key"):
        unseal_login(None, "x1", sealed)


def test_account_records_round_trip_and_malformed_ones_name_the_field() -> None:
    cipher = CredentialCipher([generate_key()])
    command = AccountCommand(
        "c1",
        "x1",
        "tradovate",
        "TV-1",
        "25000",
        True,
        dashboard_session_id("x1"),
        "http://127.0.0.1:1",
        seal_login(cipher, "x1", Login("u", "s", {"sec": "k"})),
        cipher.primary_key_id,
        "admin",
        options={"cid": 8, "appId": "CopyTrader"},
    )
    raw = command.encode()
    assert b'"s"' not in raw and b'"k"' not in raw and command.key == "account:x1"
    decoded = decode_command(raw)
    assert isinstance(decoded, AccountCommand) and decoded.own_session
    session = decoded.session(cipher)
    assert session is not None and (session.username, session.secret) == ("u", "s")
    assert session.accounts == {"x1": "TV-1"}
    assert session.options == {"cid": 8, "appId": "CopyTrader", "sec": "k"}  # public and sealed settings
    routing = decoded.routing_session()
    assert routing is not None and routing.secret is None and routing.username is None
    assert "sec" not in routing.options
    with pytest.raises(ValueError, match="platform"):
        decode_command(
            orjson.dumps(
                {
                    "kind": "account",
                    "account_id": "x1",
                    "broker_account": "B",
                    "size": "1",
                    "enabled": True,
                    "session_id": "s",
                }
            )
        )
    with pytest.raises(ValueError, match="size"):
        decode_command(
            orjson.dumps(
                {
                    "kind": "account",
                    "account_id": "x1",
                    "platform": "paper",
                    "broker_account": "B",
                    "size": "-1",
                    "enabled": True,
                    "session_id": "s",
                }
            )
        )

"""Configuration errors name the field a user must fix."""

from typing import Any

import pytest

from copytrader.core.config import ConfigError, parse_config


def config(**override: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "sessions": [{"id": "s1", "platform": "paper"}, {"id": "s2", "platform": "paper", "secret_env": "CT_SECRET"}],
        "accounts": [
            {"id": "L", "session": "s1"},
            {"id": "f1", "session": "s1"},
            {"id": "f2", "session": "s2", "size": 100000},
        ],
        "copy_groups": [
            {"id": "g", "leader": "L", "followers": [{"account": "f1"}, {"account": "f2", "rule": {"multiplier": 2}}]}
        ],
    }
    data.update(override)
    return data


def error_of(data: dict[str, Any], env: dict[str, str] | None = None) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        parse_config(data, env={"CT_SECRET": "x"} if env is None else env)
    return caught.value


def test_valid_config_indexes_followers_and_resolves_secrets() -> None:
    parsed = parse_config(config(), env={"CT_SECRET": "hunter2"})
    assert [f.account_id for _, f in parsed.followers_by_leader["L"]] == ["f1", "f2"]
    assert parsed.sessions["s2"].secret == "hunter2"
    assert "hunter2" not in repr(parsed.sessions["s2"])
    assert parsed.sessions["s1"].accounts == {"L": "L", "f1": "f1"}


def test_unknown_follower_account() -> None:
    data = config(copy_groups=[{"leader": "L", "followers": [{"account": "ghost"}]}])
    assert error_of(data).path == "copy_groups[0].followers[0].account"


def test_follower_without_a_platform() -> None:
    data = config(sessions=[{"id": "s1", "platform": "paper"}, {"id": "s2"}])
    assert error_of(data).path == "sessions[1].platform"
    data = config(accounts=[{"id": "L", "session": "s1"}, {"id": "f1"}, {"id": "f2", "session": "s1"}])
    assert error_of(data).path == "accounts[1].session"


@pytest.mark.parametrize(
    ("rule", "path"),
    [
        ({"multiplier": -1}, "multiplier"),
        ({"max_quantity": 0}, "max_quantity"),
        ({"mode": "guess"}, "mode"),
        ({"quantity": 1.5, "mode": "fixed"}, "quantity"),
        ({"multipler": 2}, "multipler"),
    ],
)
def test_rules_that_make_no_sense(rule: dict[str, Any], path: str) -> None:
    data = config(copy_groups=[{"leader": "L", "followers": [{"account": "f1", "rule": rule}]}])
    assert error_of(data).path == f"copy_groups[0].followers[0].rule.{path}"


def test_missing_secret_env_and_unknown_platform() -> None:
    assert error_of(config(), env={}).path == "sessions[1].secret_env"
    data = config(sessions=[{"id": "s1", "platform": "mt4"}, {"id": "s2", "platform": "paper"}])
    assert "unknown platform" in str(error_of(data))


def test_leader_cannot_follow_itself_and_duplicates_refused() -> None:
    data = config(copy_groups=[{"leader": "L", "followers": [{"account": "L"}]}])
    assert "itself" in str(error_of(data))
    data = config(copy_groups=[{"leader": "L", "followers": [{"account": "f1"}, {"account": "f1"}]}])
    assert error_of(data).path == "copy_groups[0].followers[1].account"


def test_secret_options_come_from_the_environment() -> None:
    """Tradovate's API ``sec`` is a second secret: ``sec_env`` names its variable."""
    sessions = [
        {"id": "s1", "platform": "paper"},
        {"id": "s2", "platform": "tradovate", "secret_env": "CT_SECRET", "options": {"cid": 7, "sec_env": "CT_SEC"}},
    ]
    parsed = parse_config(config(sessions=sessions), env={"CT_SECRET": "x", "CT_SEC": "0d2c-uuid"})
    assert parsed.sessions["s2"].options == {"cid": 7, "sec": "0d2c-uuid"}
    assert error_of(config(sessions=sessions)).path == "sessions[1].options.sec_env"
    both = [sessions[0], {**sessions[1], "options": {"sec": "inline", "sec_env": "CT_SEC"}}]
    assert "both directly" in str(error_of(config(sessions=both), env={"CT_SECRET": "x", "CT_SEC": "y"}))

"""``market_data:`` in the config file: strictly validated, the field's path in every error."""

from __future__ import annotations

from typing import Any

import pytest

from copytrader.core.config import ConfigError, MarketDataConfig, parse_config

BASE: dict[str, Any] = {"sessions": [], "accounts": [], "copy_groups": []}
GOOD: dict[str, Any] = {
    "platform": "dxlink",
    "endpoint": "wss://md.example.com/dxlink-ws",
    "token_env": "DXLINK_TOKEN",
    "symbols": {"esz6": "/ESZ26:XCME", "NQZ6": "/NQZ26:XCME"},
    "max_age_s": 2.5,
}


def test_a_good_section_is_carried_with_the_token_from_the_environment() -> None:
    config = parse_config({**BASE, "market_data": GOOD}, env={"DXLINK_TOKEN": "secret-token"})
    assert config.market_data == MarketDataConfig(
        "dxlink", GOOD["endpoint"], "secret-token", {"ESZ6": "/ESZ26:XCME", "NQZ6": "/NQZ26:XCME"}, 2.5
    )
    assert "secret-token" not in repr(config.market_data)


def test_without_the_section_there_is_no_price_source() -> None:
    assert parse_config(BASE, env={}).market_data is None


@pytest.mark.parametrize(
    ("change", "path", "says"),
    [
        ({"max_age_s": float("nan")}, "market_data.max_age_s", ">= 0.1"),
        ({"max_age_s": float("inf")}, "market_data.max_age_s", "<= 3600"),
        ({"max_age_s": 0}, "market_data.max_age_s", ">= 0.1"),
        ({"max_age_s": "5"}, "market_data.max_age_s", "Expected float, got str"),
        ({"symbols": {}}, "market_data.symbols", "length >= 1"),
        ({"symbols": {"ESZ6": "/ES Z26"}}, "market_data.symbols", "regex"),
        ({"symbols": {"ES Z6": "/ESZ26:XCME"}}, "market_data.symbols", "'ES Z6' is not a symbol"),
        ({"endpoint": "https://md.example.com/"}, "market_data.endpoint", "ws/wss"),
        ({"endpoint": "javascript:alert(1)"}, "market_data.endpoint", "URL"),
        ({"platform": "bloomberg"}, "market_data.platform", "bloomberg"),
        ({"token_env": "1BAD"}, "market_data.token_env", "regex"),
        ({"token_env": "NOT_SET"}, "market_data.token_env", "NOT_SET is not set"),
        ({"token": "inline-secret"}, "market_data.token", "unknown field"),
    ],
)
def test_bad_values_name_their_field(change: dict[str, Any], path: str, says: str) -> None:
    with pytest.raises(ConfigError) as raised:
        parse_config({**BASE, "market_data": {**GOOD, **change}}, env={"DXLINK_TOKEN": "t"})
    assert raised.value.path == path and says in raised.value.reason, raised.value


def test_an_account_on_a_market_data_platform_is_refused() -> None:
    data = {
        "sessions": [{"id": "md", "platform": "dxlink", "endpoint": "wss://md.example.com/dxlink-ws"}],
        "accounts": [{"id": "f1", "session": "md"}],
        "copy_groups": [],
    }
    with pytest.raises(ConfigError) as raised:
        parse_config(data, env={})
    assert raised.value.path == "accounts[0].session" and "market data only" in raised.value.reason

"""A platform's settings are checked by its own schema at every door that takes them: the YAML
file and the dashboard's account API (``brokers/options.py``). Before, a misspelt setting was
ignored, ``live: "false"`` read as true, and ``heartbeat_s: 0`` passed every door and spun the
session once an executor connected."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hostile_values import python_values
from hypothesis import HealthCheck, given, settings
from webtest_helpers import Web

from copytrader.brokers.base import SessionConfig
from copytrader.brokers.projectx.config import ProjectXConfig
from copytrader.brokers.tradovate.config import DEMO_REST, LIVE_REST, TradovateConfig
from copytrader.core.config import ConfigError, parse_config
from copytrader.core.control_records import AccountCommand
from copytrader.core.live_config import dashboard_session_id


def config_with(platform: str, options: dict[str, Any], endpoint: str | None = "ws://127.0.0.1:9") -> dict[str, Any]:
    return {
        "sessions": [
            {"id": "lead", "platform": "paper"},
            {
                "id": "s",
                "platform": platform,
                "endpoint": endpoint,
                "username": "u",
                "secret_env": "CT_SECRET",
                "options": options,
            },
        ],
        "accounts": [{"id": "L", "session": "lead"}, {"id": "f", "session": "s", "broker_account": "F1"}],
        "copy_groups": [{"id": "g", "leader": "L", "followers": [{"account": "f"}]}],
    }


def config_error(platform: str, options: dict[str, Any]) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        parse_config(config_with(platform, options), env={"CT_SECRET": "x"})
    return caught.value


@pytest.mark.parametrize(
    ("platform", "options", "path"),
    [
        ("tradovate", {"heartbeat_sec": 1}, "sessions[1].options.heartbeat_sec"),  # a typo, ignored before
        ("tradovate", {"heartbeat_s": 0}, "sessions[1].options.heartbeat_s"),  # spun the heartbeat loop
        ("tradovate", {"live": "no"}, "sessions[1].options.live"),  # read as true before
        ("tradovate", {"reconnect_initial_s": 5, "reconnect_max_s": 1}, "sessions[1].options.reconnect_max_s"),
        ("tradovate", {"rate_limits": [[0, 60]]}, "sessions[1].options.rate_limits[0][0]"),
        ("projectx", {"rate_limit": [200, 0]}, "sessions[1].options.rate_limit[1]"),
        ("projectx", {"keepalive_s": 30, "server_timeout_s": 10}, "sessions[1].options.server_timeout_s"),
        ("paper", {"latency": "nan"}, "sessions[1].options.latency"),
        ("paper", {"balance": "1e999999"}, "sessions[1].options.balance"),
    ],
)
def test_the_config_file_refuses_a_bad_setting_naming_it(platform: str, options: dict[str, Any], path: str) -> None:
    assert config_error(platform, options).path == path


def test_a_secret_setting_from_the_environment_is_checked_too() -> None:
    data = config_with("tradovate", {"cid_env": "CT_CID"})
    with pytest.raises(ConfigError) as caught:
        parse_config(data, env={"CT_SECRET": "x", "CT_CID": "not-a-number"})
    assert caught.value.path == "sessions[1].options.cid"
    parse_config(data, env={"CT_SECRET": "x", "CT_CID": "8"})  # text from the environment is a number


@pytest.mark.parametrize(("given_live", "rest"), [(False, DEMO_REST), ("false", DEMO_REST), (True, LIVE_REST)])
def test_live_false_as_text_means_the_demo_environment(given_live: Any, rest: str) -> None:
    config = parse_config(config_with("tradovate", {"live": given_live}, endpoint=None), env={"CT_SECRET": "x"})
    assert TradovateConfig.from_session(config.sessions["s"]).rest_url == rest


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(value=python_values)
def test_any_value_of_a_timing_setting_is_refused_naming_it_or_is_a_sane_number(value: Any) -> None:
    """Every value either fails the door, naming the field, or reaches the adapter as a finite
    positive number of seconds within the schema's bounds."""
    for platform, name, read in (
        ("tradovate", "request_timeout_s", lambda s: TradovateConfig.from_session(s).request_timeout_s),
        ("projectx", "reconnect_max_s", lambda s: ProjectXConfig.from_session(s).reconnect_max_s),
    ):
        try:
            config = parse_config(config_with(platform, {name: value}), env={"CT_SECRET": "x"})
        except ConfigError as exc:
            # Named whichever schema refused it: the file's (a mapping, a list of lists, 1e999)
            # or the platform's (0, a negative, a week).
            assert exc.path == f"sessions[1].options.{name}", (value, exc)
            continue
        seconds = read(config.sessions["s"])
        assert math.isfinite(seconds) and 0 < seconds <= 3600, (value, seconds)


def test_the_adapter_reads_what_the_door_checked() -> None:
    """A session that reached an adapter without a door (a record saved before this check):
    the adapter refuses it naming the setting, as the door would have."""
    session = SessionConfig("tradovate", "s", {"f": "F1"}, username="u", secret="x", options={"heartbeat_sec": 1})
    with pytest.raises(ValueError, match=r"options\.heartbeat_sec: unknown field"):
        TradovateConfig.from_session(session)


async def test_the_account_api_refuses_a_bad_setting_and_publishes_nothing(web: Web) -> None:
    await web.login()
    body: dict[str, Any] = {"id": "tv1", "platform": "tradovate", "broker_account": "TV1", "size": 50000}
    for options, field in (
        ({"heartbeat_sec": 1}, "options.heartbeat_sec"),
        ({"heartbeat_s": 0}, "options.heartbeat_s"),
        ({"live": "nope"}, "options.live"),
    ):
        answer = await web.client.post("/api/accounts", json={**body, "options": options}, headers=web.write_headers())
        assert answer.status == 422, options
        assert field in (await answer.json())["fields"], options
    assert web.controls.sent == []


async def test_a_refused_secret_setting_is_named_without_its_value(web: Web) -> None:
    await web.login()
    body = {
        "id": "tv2",
        "platform": "tradovate",
        "broker_account": "TV2",
        "credentials": {"username": "u", "secret": "s", "options": {"cid": "my-secret-app-key"}},
    }
    answer = await web.client.post("/api/accounts", json=body, headers=web.write_headers())
    assert answer.status == 422
    text = await answer.text()
    assert "credentials.options.cid" in (await answer.json())["fields"] and "my-secret-app-key" not in text


async def test_options_are_checked_against_the_platform_an_edit_moves_to(web: Web) -> None:
    await web.login()
    body = {"id": "px1", "platform": "projectx", "broker_account": "PX1", "options": {"negotiate": True}}
    assert (await web.client.post("/api/accounts", json=body, headers=web.write_headers())).status == 201
    moved = await web.client.patch("/api/accounts/px1", json={"platform": "tradovate"}, headers=web.write_headers())
    assert moved.status == 422 and "options.negotiate" in (await moved.json())["fields"]
    both = {"platform": "tradovate", "options": {"cid": 8}}
    assert (await web.client.patch("/api/accounts/px1", json=both, headers=web.write_headers())).status == 200


async def test_an_account_saved_with_a_setting_now_refused_can_still_be_disabled(web: Web) -> None:
    """A record published before this check (replayed from ``copy.controls``) is not lost, and
    an edit that leaves its settings alone is not refused for them."""
    session = dashboard_session_id("old1")
    legacy = AccountCommand("c1", "old1", "tradovate", "TV-OLD", "50000", True, session, options={"typo_s": 1})
    web.ctx.accounts.apply_account_command(legacy)
    await web.login()
    answer = await web.client.patch("/api/accounts/old1", json={"enabled": False}, headers=web.write_headers())
    assert answer.status == 200, await answer.text()
    as_the_form_sends = {"platform": "tradovate", "broker_account": "TV-OLD", "size": "60000", "enabled": False}
    answer = await web.client.patch("/api/accounts/old1", json=as_the_form_sends, headers=web.write_headers())
    assert answer.status == 200, await answer.text()
    tested = await (await web.client.post("/api/accounts/old1/test", headers=web.write_headers())).json()
    assert tested == {"ok": False, "error": "options.typo_s: unknown field"}  # "Test" names it too
    fixed = await web.client.patch("/api/accounts/old1", json={"options": {}}, headers=web.write_headers())
    assert fixed.status == 200


def test_the_config_file_can_name_rithmic_exchanges_for_roots_it_does_not_know() -> None:
    """A map of names to values is a setting the file can carry (it could not before, so a
    Rithmic user trading a root missing from the defaults could not trade it at all)."""
    from copytrader.brokers.rithmic.adapter import RithmicAdapter

    options = {"exchanges": {"ZQ": "CBOT", "6L": "CME"}}
    config = parse_config(config_with("rithmic", options), env={"CT_SECRET": "x"})
    adapter = RithmicAdapter(config.sessions["s"])
    assert adapter.exchanges["ZQ"] == "CBOT" and adapter.exchanges["6L"] == "CME"
    assert adapter.exchanges["ZN"] == "CBOT"  # a default beside them
    bad = config_error("rithmic", {"exchanges": {"ZQ": {"nested": "map"}}})
    assert bad.path == "sessions[1].options.exchanges"

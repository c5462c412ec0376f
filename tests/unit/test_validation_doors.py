"""Strict validation at the doors that do not need a web server: the signal decoder, the YAML
config loader and the ``copy.controls`` records (issue #12, findings 1 and 2), each with a
property test over hostile values: refused naming the field, or handled; never a crash."""

from __future__ import annotations

import time
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import orjson
import pytest
from hostile_values import json_fragments, python_values, splice
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from copytrader.agents.fanout.agent import handle_signal
from copytrader.agents.fanout.controls import planner_applier
from copytrader.agents.fanout.planner import FanoutPlanner
from copytrader.agents.shared.controls_feed import ControlsFeed
from copytrader.agents.shared.outbox import MemoryOutbox
from copytrader.common import bounds
from copytrader.core import schemas
from copytrader.core.config import ConfigError, parse_config
from copytrader.core.control_records import AccountCommand, ControlCommand, RuleCommand, decode_command
from copytrader.core.records import RecordError, TradeSignal
from copytrader.core.signals import decode_signal

CONFIG: dict[str, Any] = {
    "sessions": [{"id": "p", "platform": "paper", "options": {"latency": 0}}],
    "accounts": [
        {"id": "L", "session": "p"},
        {"id": "f1", "session": "p", "size": 100000},
        {"id": "f2", "session": "p"},
    ],
    "copy_groups": [
        {
            "id": "g",
            "leader": "L",
            "followers": [
                {"account": "f1", "rule": {"mode": "ratio"}},
                {"account": "f2", "rule": {"multiplier": 2}},
            ],
        }
    ],
}
GOOD = {"signal_id": "L:1:new", "leader_account": "L", "symbol": "ESZ6", "side": "buy", "quantity": 2}
SIGNAL_FIELDS = [
    *GOOD,
    "kind",
    "order_type",
    "limit_price",
    "stop_price",
    "fill_price",
    "occurred_at",
    "stamps",
    "platform",
    "source",
    "leader_order_id",
    "unexpected",
]
PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def refused_field(payload: bytes | dict[str, Any]) -> str:
    with pytest.raises(RecordError) as caught:
        decode_signal(payload)
    return caught.value.field


# ----------------------------------------------------------------------------- the signal


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("limit_price", '"Infinity"'),
        ("limit_price", '"NaN"'),
        ("limit_price", '"1e999999"'),
        ("quantity", "1e30"),
        ("quantity", "1e308"),
        ("quantity", "1.5"),
        ("quantity", '"5"'),
        ("quantity", "true"),
        ("quantity", "100000000000000000000000000000"),
        ("signal_id", '["a", "b"]'),
        ("symbol", '"' + "E" * 60_000 + '"'),
        ("stamps", '"detected"'),
        ("stamps", "[" * 1000 + "]" * 1000),
        ("stamps", '{"detected": ' + "[" * 1000 + "]" * 1000 + "}"),
        ("stamps", '{"detected": 1e300}'),
        ("side", '"up"'),
        ("kind", '"teleport"'),
        ("extra", "1"),
    ],
)
def test_the_signal_decoder_refuses_and_names_the_field(field: str, value: str) -> None:
    payload = splice({**GOOD, "order_type": "limit", "limit_price": "5000"}, field, value)
    assert refused_field(payload) == field


def test_a_good_signal_decodes_including_faust_s_own_form() -> None:
    signal = decode_signal(splice({**GOOD, "order_type": "limit"}, "limit_price", '"5001.25"'))
    assert signal.limit_price == Decimal("5001.25") and signal.quantity == 2
    again = TradeSignal(**{**GOOD, "platform": "paper", "stamps": {"detected": 1.0}})
    assert decode_signal(again.dumps()).stamps == {"detected": 1.0}


@PROPERTY
@given(field=st.sampled_from(SIGNAL_FIELDS), fragment=json_fragments)
async def test_property_no_signal_stops_fanout_and_the_next_good_one_is_copied(field: str, fragment: str) -> None:
    outbox = MemoryOutbox()
    stage = SimpleNamespace(planner=FanoutPlanner(parse_config(CONFIG, env={})), ctx=SimpleNamespace(outbox=outbox))
    payload = splice(GOOD, field, fragment)
    try:
        decode_signal(payload)
    except RecordError as exc:
        assert exc.field  # refused, naming a field
    await handle_signal(stage, payload)  # type: ignore[arg-type]  # the two attributes it uses
    for error in outbox.sent["error"]:
        assert error.reason
    outbox.sent.clear()
    assert await handle_signal(stage, orjson.dumps({**GOOD, "signal_id": "L:2:new"})) == 2  # type: ignore[arg-type]


# ---------------------------------------------------------------------------- the config


@pytest.mark.parametrize(
    ("rule", "path"),
    [
        ({"multiplier": "Infinity"}, "multiplier"),
        ({"multiplier": float("inf")}, "multiplier"),
        ({"multiplier": float("nan")}, "multiplier"),
        ({"multiplier": "NaN"}, "multiplier"),
        ({"multiplier": 1e6}, "multiplier"),
        ({"quantity": 1.5}, "quantity"),
        ({"quantity": "5"}, "quantity"),
        ({"quantity": True}, "quantity"),
        ({"inverse": "no"}, "inverse"),
        ({"max_quantity": 10**30}, "max_quantity"),
        ({"symbol_map": {"ES": "M" * 60_000}}, "symbol_map"),
    ],
)
def test_the_config_refuses_non_finite_coerced_and_huge_rule_values(rule: dict[str, Any], path: str) -> None:
    data = {**CONFIG, "copy_groups": [{"leader": "L", "followers": [{"account": "f1", "rule": rule}]}]}
    with pytest.raises(ConfigError) as caught:
        parse_config(data, env={})
    assert caught.value.path.startswith(f"copy_groups[0].followers[0].rule.{path}")


def test_the_config_refuses_an_account_size_that_would_stall_the_loop() -> None:
    data = {**CONFIG, "accounts": [*CONFIG["accounts"][:2], {"id": "f2", "session": "p", "size": "1e999999"}]}
    with pytest.raises(ConfigError) as caught:
        parse_config(data, env={})
    assert caught.value.path == "accounts[2].size"


CONFIG_PATHS = [
    ("sessions", 0, "options"),
    ("sessions", 0, "endpoint"),
    ("sessions", 0, "platform"),
    ("accounts", 1, "size"),
    ("accounts", 1, "id"),
    ("accounts", 1, "broker_account"),
    ("copy_groups", 0, "enabled"),
    ("copy_groups", 0, "followers"),
    ("rule", 0, "multiplier"),
    ("rule", 0, "quantity"),
    ("rule", 0, "max_quantity"),
    ("rule", 0, "min_quantity"),
    ("rule", 0, "symbol_map"),
    ("rule", 0, "inverse"),
    ("rule", 0, "mode"),
    ("rule", 0, "surprise"),
]


@PROPERTY
@given(where=st.sampled_from(CONFIG_PATHS), value=python_values)
def test_property_the_config_loader_refuses_with_a_path_or_loads_a_config_that_plans(
    where: tuple[str, int, str], value: Any
) -> None:
    data = orjson.loads(orjson.dumps(CONFIG))
    section, index, key = where
    target = data["copy_groups"][0]["followers"][1]["rule"] if section == "rule" else data[section][index]
    target[key] = value
    try:
        config = parse_config(data, env={})
    except ConfigError as exc:
        assert exc.path and exc.reason
        return
    intents, errors = FanoutPlanner(config).plan(TradeSignal(platform="paper", **GOOD))
    assert all(0 < i.quantity <= bounds.MAX_QUANTITY for i in intents)
    assert all(e.reason for e in errors)


# ----------------------------------------------------------------------- copy.controls


def test_control_records_refuse_non_finite_rules_and_sizes_naming_the_field() -> None:
    rule = RuleCommand("c", "g", "f1", {"mode": "multiplier", "multiplier": "Infinity"}, True).encode()
    with pytest.raises(ValueError, match="rule.multiplier"):
        decode_command(rule)
    account = orjson.loads(AccountCommand("c", "f9", "paper", "B", "50000", True, "s").encode())
    with pytest.raises(ValueError, match="size"):
        decode_command(orjson.dumps({**account, "size": "1e999999"}))
    with pytest.raises(ValueError, match="paused"):
        decode_command(orjson.dumps({"account_id": "f1", "paused": "yes"}))
    with pytest.raises(ValueError, match="endpoint"):
        decode_command(orjson.dumps({**account, "endpoint": "javascript:alert(1)"}))


RECORDS: dict[str, dict[str, Any]] = {
    "pause": {"command_id": "c", "account_id": "f1", "paused": True, "by": "u", "at": 1.0},
    "rule": orjson.loads(RuleCommand("c", "g", "f2", {"multiplier": 2}, True).encode()),
    "account": orjson.loads(AccountCommand("c", "f2", "paper", "B", "50000", True, "s").encode()),
}


@PROPERTY
@given(kind=st.sampled_from(sorted(RECORDS)), data=st.data(), fragment=json_fragments)
async def test_property_a_bad_control_record_is_reported_and_the_next_one_applies(
    kind: str, data: st.DataObject, fragment: str
) -> None:
    record = RECORDS[kind]
    field = data.draw(st.sampled_from([*record, "rule_extra"]))
    planner = FanoutPlanner(parse_config(CONFIG, env={}))
    refused: list[str] = []

    async def on_refused(offset: int, reason: str) -> None:
        refused.append(reason)

    feed = ControlsFeed("unused:9092", "", planner_applier(planner), on_refused=on_refused)
    applied = await feed.handle(0, splice(record, field, fragment))
    assert applied or (refused and refused[0])
    resume = ControlCommand("c2", "f1", True).encode()
    assert await feed.handle(1, resume) and planner.controls.is_paused("f1")


# ----------------------------------------------------------------------------- stages


def test_a_rule_that_slipped_through_costs_one_follower_one_copy_not_the_group() -> None:
    """Finding 1: multiplier Infinity crashed the fan-out for every follower of the group."""
    from copytrader.core.scaling import CopyRule

    planner = FanoutPlanner(parse_config(CONFIG, env={}))
    planner.controls.set_rule("g", "f2", CopyRule(multiplier=Decimal("Infinity")), True)
    intents, errors = planner.plan(TradeSignal(platform="paper", **GOOD))
    assert [i.account_id for i in intents] == ["f1"]
    assert [(e.account_id, e.code) for e in errors] == [("f2", "RULE")]


def test_a_huge_account_size_is_refused_at_once_instead_of_stalling_the_loop() -> None:
    """Finding 1: a size of 1e999999 under a ratio rule blocked the event loop ~33 s."""
    from dataclasses import replace

    config = parse_config(CONFIG, env={})
    config.accounts["f1"] = replace(config.accounts["f1"], size=Decimal("1e999999"))
    started = time.perf_counter()
    intents, errors = FanoutPlanner(config).plan(TradeSignal(platform="paper", **GOOD))
    assert time.perf_counter() - started < 0.5
    assert [i.account_id for i in intents] == ["f2"] and errors[0].account_id == "f1"


def test_bounds_are_named_and_checked() -> None:
    assert bounds.MAX_QUANTITY >= 1000 and bounds.MAX_MULTIPLIER >= 10
    for bad in ("Infinity", "NaN", "-1", "0", "1e13"):
        with pytest.raises(bounds.BoundError):
            bounds.check_decimal(Decimal(bad), maximum=bounds.MAX_ACCOUNT_SIZE)
    with pytest.raises(bounds.BoundError):
        bounds.check_decimal(Decimal("1." + "1" * 40), maximum=bounds.MAX_PRICE)
    for url in ("javascript:alert(1)", "file:///etc/passwd", "http://", "https://u:p@host/", "ftp://h/"):
        with pytest.raises(bounds.BoundError):
            bounds.check_endpoint(url)
    assert bounds.check_endpoint("wss://md.tradovateapi.com/v1/websocket")
    with pytest.raises(bounds.BoundError, match="not allowed"):
        bounds.check_endpoint("https://evil.example/", frozenset({"demo.tradovateapi.com"}))
    for socket_address in ("fix://fix.broker.example:9878", "ati://127.0.0.1:36973", "tcp://127.0.0.1:11099"):
        assert bounds.check_endpoint(socket_address)


def test_folder_endpoints_only_absolute_local_and_only_from_the_config_file() -> None:
    assert bounds.check_endpoint("oif:///home/trader/Documents/NinjaTrader 8")
    for bad in ("oif://host/share", "oif://", "oif:///a/../etc", "oif:///x?y=1"):
        with pytest.raises(bounds.BoundError):
            bounds.check_endpoint(bad)
    with pytest.raises(bounds.BoundError, match="config file"):
        bounds.check_endpoint("oif:///home/trader/NT8", folders=False)  # the dashboard's door
    with pytest.raises(bounds.BoundError, match="config file"):
        bounds.check_endpoint("oif:///home/trader/NT8", frozenset({"127.0.0.1"}))


def test_schema_errors_name_nested_fields() -> None:
    with pytest.raises(schemas.SchemaError) as caught:
        schemas.decode(b'{"rule": {"quantity": "5"}}', schemas.FollowerRuleBody)
    assert caught.value.field == "rule.quantity"
    with pytest.raises(schemas.SchemaError) as caught:
        schemas.decode(b'{"rule": {"multiplier": "NaN"}}', schemas.FollowerRuleBody)
    assert caught.value.field == "rule.multiplier"


def test_the_config_keeps_list_settings_of_a_session_but_not_deeper_ones() -> None:
    """ProjectX's ``rate_limit`` and Tradovate's ``rate_limits`` are lists (pairs) in the file."""
    pairs = {"x": {"rate_limit": [100000, 60]}, "t": {"rate_limits": [[80, 60], [5000, 3600]]}}
    sessions = [{"id": "p", "platform": "paper", "options": {"latency": 0}}]
    sessions += [{"id": "x", "platform": "projectx", "options": pairs["x"]}]
    sessions += [{"id": "t", "platform": "tradovate", "options": pairs["t"]}]
    parsed = parse_config({**CONFIG, "sessions": sessions}, env={})
    assert {name: parsed.sessions[name].options for name in pairs} == pairs
    data = {**CONFIG, "sessions": [{"id": "p", "platform": "paper", "options": {"rate_limits": [[[1]]]}}]}
    with pytest.raises(ConfigError) as caught:
        parse_config(data, env={})
    assert caught.value.path.startswith("sessions[0].options")

"""The guards' doors for live edits (issue #18 item 1): the REST body, the ``copy.controls``
record and the YAML refuse alike, naming the same path; an edit keeps what the guard counted."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import orjson
import pytest

from copytrader.agents.fanout.controls import planner_applier
from copytrader.agents.fanout.planner import FanoutPlanner
from copytrader.core import schemas
from copytrader.core.config import ConfigError, parse_config
from copytrader.core.control_records import GuardsCommand, decode_command
from copytrader.core.guard_state import AccountGuard, Refusal, changed_limits, has_rules, quote_marks
from copytrader.core.guards import DAILY_LOSS, DRAWDOWN, GuardRules, build
from copytrader.core.schemas.guards import GuardsIn
from copytrader.web.guard_edits import schema_of

WED = datetime(2026, 6, 10, 15, 0, tzinfo=UTC)

# (the guards block, the path every door names, a word of the reason)
REFUSED: list[tuple[Any, str, str]] = [
    ({"daily_loss": {"limit": "Infinity"}}, "daily_loss.limit", "finite"),
    ({"daily_loss": {"limit": "-Infinity"}}, "daily_loss.limit", "finite"),
    ({"trailing_drawdown": {"limit": "NaN"}}, "trailing_drawdown.limit", "finite"),
    ({"trailing_drawdown": {"limit": "sNaN"}}, "trailing_drawdown.limit", "finite"),
    ({"daily_loss": {"limit": "1e999"}}, "daily_loss.limit", "at most"),
    ({"daily_loss": {"limit": -1}}, "daily_loss.limit", "positive"),
    ({"daily_loss": {"limit": 0}}, "daily_loss.limit", "positive"),
    ({"max_contracts_per_symbol": -3}, "max_contracts_per_symbol", ">= 1"),
    ({"max_contracts_total": 10**12}, "max_contracts_total", "<="),
    ({"max_orders_per_minute": "5"}, "max_orders_per_minute", "got str"),
    ({"max_orders_per_minute": 1.5}, "max_orders_per_minute", "got float"),
    ({"window": "09:30-16:00"}, "window", "got str"),
    ({"window": {"start": "25:00", "end": "16:00"}}, "window.start", "regex"),
    ({"window": {"start": "09:30", "end": "16:00", "tz": "Mars/Base"}}, "window.tz", "unknown time zone"),
    ({"window": {"start": "09:30", "end": "16:00", "tz": ""}}, "window.tz", "length"),
    ({"window": {"start": "09:30", "end": "09:30"}}, "window.end", "differ"),
    ({"tz": "../../etc/passwd"}, "tz", "unknown time zone"),
    ({"day_starts": "17:00:00"}, "day_starts", "regex"),
    ({"daily_loss": {"limit": 5, "on_breach": "flatten"}}, "daily_loss.on_breach", "flatten"),
]


@pytest.mark.parametrize(("guards", "path", "reason"), REFUSED)
def test_every_door_refuses_a_bad_rule_naming_the_same_path(guards: Any, path: str, reason: str) -> None:
    with pytest.raises(schemas.SchemaError) as body:
        schemas.decode(orjson.dumps(guards), GuardsIn)  # PUT /api/guards/{account}
    assert (body.value.field, reason in body.value.reason) == (path, True), body.value

    raw = orjson.dumps({"kind": "guards", "account_id": "f1", "guards": guards})
    with pytest.raises(ValueError, match=rf"guards record: guards\.{path.replace('.', '[.]')}: .*{reason}"):
        decode_command(raw)  # the copy.controls record

    config = {
        "sessions": [{"id": "s", "platform": "paper"}],
        "accounts": [{"id": "L", "session": "s"}, {"id": "f1", "session": "s"}],
        "copy_groups": [{"leader": "L", "followers": [{"account": "f1", "guards": guards}]}],
    }
    with pytest.raises(ConfigError, match=rf"copy_groups\[0\]\.followers\[0\]\.guards\.{path.replace('.', '[.]')}"):
        parse_config(config, env={})  # the YAML


def test_a_record_round_trips_and_an_empty_set_means_no_rules() -> None:
    guards = schemas.decode(
        b'{"max_contracts_total": 4, "trailing_drawdown": {"limit": "2500", "basis": "end_of_day",'
        b' "stop_trailing_at": "3000"}, "window": {"start": "17:00", "end": "16:00", "tz": "America/Chicago"},'
        b' "tz": "America/Chicago", "day_starts": "17:00"}',
        GuardsIn,
    )
    command = GuardsCommand("c1", "f1", guards, "admin", 1_800_000_000.0)
    assert decode_command(command.encode()) == command
    assert command.key == "guards:f1"
    assert not has_rules(build(GuardsIn())) and has_rules(build(guards))


def test_the_form_reads_back_exactly_the_rules_in_force() -> None:
    for raw in (
        b'{"max_contracts_per_symbol": 2, "max_orders_per_minute": 60,'
        b' "daily_loss": {"limit": "500.25", "on_breach": "block"},'
        b' "window": {"start": "08:30", "end": "15:00", "days": ["fri", "mon"]}, "tz": "Europe/London"}',
        b'{"trailing_drawdown": {"limit": 2000}, "day_starts": "17:00", "tz": "America/Chicago"}',
        b"{}",
    ):
        rules = build(schemas.decode(raw, GuardsIn))
        assert build(schema_of(rules)) == rules


def test_an_edit_keeps_what_the_guard_counted_and_drops_only_the_breaches_of_changed_rules() -> None:
    first = build(
        schemas.decode(
            b'{"max_contracts_per_symbol": 5, "daily_loss": {"limit": 100}, "trailing_drawdown": {"limit": 900}}',
            GuardsIn,
        )
    )
    guard = AccountGuard("f1", first, quote_marks(None))
    guard.fill("c1", "ESZ6", "buy", 2, Decimal("5000"), 0, at=WED)
    guard.seed_working("c2", "ESZ6", "buy", 1)
    guard.seed_working("c2", "ESZ6", "buy", 1)  # the same order reported twice counts once
    guard.breached = {
        DAILY_LOSS: Refusal(DAILY_LOSS, "daily loss", breach=True),
        DRAWDOWN: Refusal(DRAWDOWN, "drawdown", breach=True),
    }
    tighter = build(
        schemas.decode(
            b'{"max_contracts_per_symbol": 3, "daily_loss": {"limit": 100}, "trailing_drawdown": {"limit": 500}}',
            GuardsIn,
        )
    )
    assert changed_limits(first, tighter) == {DRAWDOWN}
    guard.set_rules(tighter)
    assert set(guard.breached) == {DAILY_LOSS}  # its rule did not change
    assert guard.holdings["ESZ6"].net == 2 and guard.realised_today == 0
    refusal = guard.check("place", "ESZ6", "buy", 1, None, WED)
    assert refusal is not None and refusal.code == DAILY_LOSS  # the breach in force still refuses
    guard.set_rules(GuardRules(max_contracts_per_symbol=3))
    assert guard.breached == {}
    refusal = guard.check("place", "ESZ6", "buy", 1, None, WED)
    assert refusal is not None and "holds +2, working 1" in refusal.message  # 2 held + 1 working + 1 > 3


def test_a_planner_following_copy_controls_passes_over_guards_records() -> None:
    """Fan-out workers read the same topic: a guards record is not theirs, and not an error."""
    config = parse_config(
        {
            "sessions": [{"id": "s", "platform": "paper"}],
            "accounts": [{"id": "L", "session": "s"}, {"id": "f1", "session": "s"}],
            "copy_groups": [{"leader": "L", "followers": [{"account": "f1"}]}],
        },
        env={},
    )
    planner = FanoutPlanner(config)
    before = (dict(planner.config.accounts), dict(planner.config.followers_by_leader))
    planner_applier(planner)(GuardsCommand("g1", "f1", GuardsIn(max_contracts_total=1), "admin", 1.0))
    assert (dict(planner.config.accounts), dict(planner.config.followers_by_leader)) == before

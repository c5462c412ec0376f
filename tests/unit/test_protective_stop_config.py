"""``protective_stop_s`` per copy group (issue #17 item 4): strictly validated, 2 s by default,
null turns the watch off, and the tightest of a follower's groups wins."""

from __future__ import annotations

from typing import Any

import pytest

from copytrader.agents.execution.protective_wiring import deadlines
from copytrader.core.config import ConfigError, parse_config


def config(*groups: dict[str, Any]) -> dict[str, Any]:
    return {
        "sessions": [{"id": "s", "platform": "paper"}],
        "accounts": [{"id": a, "session": "s"} for a in ("L", "M", "f1", "f2")],
        "copy_groups": list(groups),
    }


def test_the_default_is_two_seconds_and_a_group_sets_its_own() -> None:
    parsed = parse_config(
        config(
            {"id": "a", "leader": "L", "followers": [{"account": "f1"}]},
            {"id": "b", "leader": "M", "followers": [{"account": "f2"}], "protective_stop_s": 0.5},
        ),
        env={},
    )
    assert [g.protective_stop_s for g in parsed.groups] == [2.0, 0.5]
    deadline_for = deadlines(parsed)
    assert (deadline_for("L", "f1"), deadline_for("M", "f2"), deadline_for("M", "f1")) == (2.0, 0.5, None)


def test_null_turns_the_watch_off_and_the_tightest_group_wins() -> None:
    parsed = parse_config(
        config(
            {"id": "a", "leader": "L", "followers": [{"account": "f1"}, {"account": "f2"}], "protective_stop_s": None},
            {"id": "b", "leader": "L", "followers": [{"account": "f1"}], "protective_stop_s": 1.5},
            {"id": "c", "leader": "L", "followers": [{"account": "f1"}], "protective_stop_s": 3},
        ),
        env={},
    )
    deadline_for = deadlines(parsed)
    assert (deadline_for("L", "f1"), deadline_for("L", "f2")) == (1.5, None)


@pytest.mark.parametrize("value", [0, 0.05, -1, 61, "2", True, float("nan"), float("inf"), [2]])
def test_a_bad_deadline_is_refused_naming_the_field(value: object) -> None:
    data = config({"id": "a", "leader": "L", "followers": [{"account": "f1"}], "protective_stop_s": value})
    with pytest.raises(ConfigError) as caught:
        parse_config(data, env={})
    assert "protective_stop_s" in str(caught.value)

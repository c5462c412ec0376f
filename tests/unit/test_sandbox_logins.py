"""The demo sandbox gives every follower firm its own login; ``copytrader sim`` plans logins."""

from __future__ import annotations

import os

import click
import pytest

from copytrader.brokers.registry import create_adapter
from copytrader.core.config import parse_config
from copytrader.demo.cli import _rate_limit
from copytrader.demo.configgen import demo_config
from copytrader.demo.sandbox import session_logins, sim_options, start_sandbox


@pytest.mark.parametrize("per_login, sessions", [(1, 4), (2, 2), (3, 2)])
def test_followers_get_one_login_per_firm(per_login: int, sessions: int) -> None:
    config = demo_config(4, "tradovate", accounts_per_login=per_login)
    followers = [s for s in config["sessions"] if s["id"].startswith("followers-tradovate-")]
    assert len(followers) == sessions
    logins = session_logins("tradovate", config)
    assert sorted(n for login in logins.values() for n in login.accounts) == [f"FOL-{i:03d}" for i in range(1, 5)]
    assert all(len(login.accounts) <= per_login for login in logins.values())


async def test_sandbox_sessions_log_in_separately_and_see_only_their_accounts() -> None:
    first = demo_config(3, "tradovate", leader_platform="tradovate")
    simulator, fields = await start_sandbox("tradovate", "0", first)
    adapters = []
    try:
        assert set(fields["sessions"]) == {
            "leader-tradovate",
            "followers-tradovate-001",
            "followers-tradovate-002",
            "followers-tradovate-003",
        }
        config = parse_config(
            demo_config(3, "tradovate", endpoints={"tradovate": fields}, leader_platform="tradovate"),
            env=dict(os.environ),
        )
        for session_id in ("followers-tradovate-001", "followers-tradovate-002"):
            session = config.sessions[session_id]
            assert session.options["deviceId"] and session.secret
            adapter = create_adapter(session)
            adapters.append(adapter)
            await adapter.connect()
        assert simulator.tokens.sessions_opened == 2
        assert {len(simulator.open_sessions(u)) for u in ("followers-tradovate-001", "followers-tradovate-002")} == {1}
        assert simulator.open_sessions("leader-tradovate") == []
    finally:
        for adapter in adapters:
            await adapter.disconnect()
        await simulator.stop()


@pytest.mark.parametrize("platform", ["tradovate", "projectx"])
async def test_both_simulators_give_each_firm_its_own_login(platform: str) -> None:
    first = demo_config(2, platform)
    simulator, fields = await start_sandbox(platform, "0", first)
    try:
        assert set(fields["sessions"]) == {f"followers-{platform}-001", f"followers-{platform}-002"}
        config = demo_config(2, platform, endpoints={platform: fields})
        followers = [s for s in config["sessions"] if s["platform"] == platform]
        assert len({s["username"] for s in followers}) == 2
        assert all("rate_limit" not in s["options"] for s in followers)  # per-user windows: no raised budget
    finally:
        await simulator.stop()


async def test_a_simulator_without_logins_falls_back_to_one_shared_session(monkeypatch: pytest.MonkeyPatch) -> None:
    from copytrader.demo import sandbox

    monkeypatch.setattr(sandbox, "_takes_logins", lambda simulator, logins: False)
    simulator, fields = await start_sandbox("projectx", "0", demo_config(2, "projectx"))
    try:
        config = demo_config(2, "projectx", endpoints={"projectx": fields})
        followers = [s for s in config["sessions"] if s["platform"] == "projectx"]
        assert [s["id"] for s in followers] == ["followers-projectx"]
        assert followers[0]["options"]["rate_limit"] == [100_000, 60]
    finally:
        await simulator.stop()


def test_sim_options_plan_logins_and_budget() -> None:
    options = sim_options("tradovate", 5, 2, (200, 60.0))
    assert [len(login.accounts) for login in options["logins"]] == [2, 2, 1]
    assert options["rate_limits"] == [[200, 60.0]]
    assert sim_options("projectx", None, 1, (50, 30.0)) == {"rate_limit": [50, 30.0]}
    assert _rate_limit(None, None, "200/60") == (200, 60.0)
    with pytest.raises(click.BadParameter):
        _rate_limit(None, None, "lots")

"""Generated copy configs for the demo, the benchmark and the integration tests.

Followers get a realistic mix of rules (same size, fixed size, account-size ratio, ES→MES with
a multiplier, a size cap), so every rule runs on every demo.
"""

from __future__ import annotations

from typing import Any

LEADER = "leader-1"


def follower_rule(index: int) -> dict[str, Any]:
    kind = index % 5
    if kind == 0:
        return {"mode": "multiplier", "multiplier": 1}
    if kind == 1:
        return {"mode": "fixed", "quantity": 2}
    if kind == 2:
        return {"mode": "ratio", "max_quantity": 6}
    if kind == 3:
        return {"mode": "multiplier", "multiplier": 2, "symbol_map": {"ES": "MES", "NQ": "MNQ"}}
    return {"mode": "multiplier", "multiplier": "0.5", "min_quantity": 1, "max_quantity": 3}


#: Platforms whose followers are real-style prop accounts: one login per follower firm.
SIMULATED = ("tradovate", "projectx", "rithmic", "dtc", "ninjatrader", "fix")
#: ``--platform mixed``: followers rotate over every order platform (dxLink is the price source).
MIXED = ("paper", *SIMULATED)


def session_fields(endpoints: dict[str, dict[str, Any]] | None, platform: str, session_id: str) -> dict[str, Any]:
    """Endpoint/credential fields for one session from the sandbox's answer.

    A sandbox that serves a login per firm answers ``{"endpoint", "options", "sessions":
    {session_id: {"username", "secret_env", "options"}}}``; one with a single shared login
    answers the session fields directly.
    """
    fields = dict((endpoints or {}).get(platform, {}))
    per_session = fields.pop("sessions", None)
    options = dict(fields.pop("options", {}))
    if per_session is not None:
        own = dict(per_session.get(session_id, {}))
        options.update(own.pop("options", {}))
        fields.update(own)
    return {**fields, "options": options}


def shared_login(endpoints: dict[str, dict[str, Any]] | None, platform: str) -> bool:
    """True when the platform's sandbox has one login for everyone (no per-firm sessions)."""
    return platform in (endpoints or {}) and "sessions" not in (endpoints or {})[platform]


def follower_session(platform: str, index: int, accounts_per_login: int, shared: bool) -> str:
    """The session (one login) follower ``index`` (1-based) belongs to."""
    if platform not in SIMULATED or shared:
        return f"followers-{platform}"
    return f"followers-{platform}-{(index - 1) // max(1, accounts_per_login) + 1:03d}"


#: The demo's symbols → the dxFeed symbols its dxLink simulator serves (leader ES, mapped MES).
MARKET_SYMBOLS = {"ESZ6": "/ESZ26:XCME", "MESZ6": "/MESZ26:XCME", "NQZ6": "/NQZ26:XCME", "MNQZ6": "/MNQZ26:XCME"}
MARKET_TOKEN_ENV = "COPYTRADER_SIM_DXLINK_TOKEN"


def market_data(endpoint: str) -> dict[str, Any]:
    """The demo's price source (``market_data:``): the dxLink simulator at ``endpoint``."""
    return {"platform": "dxlink", "endpoint": endpoint, "token_env": MARKET_TOKEN_ENV, "symbols": dict(MARKET_SYMBOLS)}


def demo_config(
    followers: int = 20,
    platform: str = "paper",
    latency: str = "0",
    endpoints: dict[str, dict[str, Any]] | None = None,
    leader_platform: str = "paper",
    accounts_per_login: int = 1,
    auto_correct: bool = False,
) -> dict[str, Any]:
    """Leader on ``leader_platform`` (paper venue ``leader`` by default); followers on
    ``platform`` (``mixed`` rotates paper and every simulated order platform, :data:`MIXED`).

    Followers on a simulated platform come as real prop accounts do: one login (one session)
    per firm, ``accounts_per_login`` accounts each, so each has its own sessions and request
    budget on the simulator. ``endpoints`` gives simulator sessions their endpoint/credentials
    (from ``sandbox``); a simulator leader is its own firm on its platform's simulator. A
    sandbox that can only offer one shared login gets one session per platform.
    """
    platforms = list(MIXED) if platform == "mixed" else [platform]
    if leader_platform == "paper":
        leader_session: dict[str, Any] = {
            "id": "leader-paper",
            "platform": "paper",
            "options": {"venue": "leader", "latency": 0},
        }
    else:
        fields = session_fields(endpoints, leader_platform, f"leader-{leader_platform}")
        leader_session = {
            "id": f"leader-{leader_platform}",
            "platform": leader_platform,
            "options": fields.pop("options", {}),
        }
        leader_session.update(fields)
    sessions: dict[str, dict[str, Any]] = {leader_session["id"]: leader_session}
    accounts: list[dict[str, Any]] = [
        {"id": LEADER, "session": leader_session["id"], "broker_account": "LEAD-1", "size": 50000}
    ]
    group_followers = []
    counts = {name: 0 for name in platforms}
    for i in range(1, followers + 1):
        account_id = f"f{i:03d}"
        name = platforms[i % len(platforms)]
        counts[name] += 1
        session_id = follower_session(name, counts[name], accounts_per_login, shared_login(endpoints, name))
        if session_id not in sessions:
            session: dict[str, Any] = {"id": session_id, "platform": name, "options": {}}
            if name == "paper":
                session["options"].update(venue="followers", latency=latency)
            fields = session_fields(endpoints, name, session_id)
            session["options"].update(fields.pop("options", {}))
            session.update(fields)
            sessions[session_id] = session
        accounts.append(
            {
                "id": account_id,
                "session": session_id,
                "broker_account": f"FOL-{i:03d}",
                "size": 100000 if i % 2 else 50000,
            }
        )
        group_followers.append({"account": account_id, "rule": follower_rule(i)})
    group: dict[str, Any] = {"id": "demo", "leader": LEADER, "followers": group_followers}
    if auto_correct:
        group["auto_correct"] = True
    return {"sessions": list(sessions.values()), "accounts": accounts, "copy_groups": [group]}

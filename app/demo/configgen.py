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


def demo_config(followers: int = 20, platform: str = "paper", latency: str = "0",
                endpoints: dict[str, dict[str, Any]] | None = None, leader_platform: str = "paper") -> dict[str, Any]:
    """Leader on ``leader_platform`` (paper venue ``leader`` by default); followers on
    ``platform`` (``mixed`` rotates paper, tradovate, projectx).

    ``endpoints`` gives simulator sessions their endpoint/credentials (from ``sandbox``); a
    simulator leader shares its platform's simulator with that platform's followers.
    """
    platforms = ["paper", "tradovate", "projectx"] if platform == "mixed" else [platform]
    if leader_platform == "paper":
        leader_session: dict[str, Any] = {"id": "leader-paper", "platform": "paper", "options": {"venue": "leader", "latency": 0}}
    else:
        fields = dict((endpoints or {}).get(leader_platform, {}))
        leader_session = {"id": f"leader-{leader_platform}", "platform": leader_platform, "options": fields.pop("options", {})}
        leader_session.update(fields)
    sessions: list[dict[str, Any]] = [leader_session]
    for name in platforms:
        session: dict[str, Any] = {"id": f"followers-{name}", "platform": name, "options": {}}
        if name == "paper":
            session["options"].update(venue="followers", latency=latency)
        fields = dict((endpoints or {}).get(name, {}))
        session["options"].update(fields.pop("options", {}))
        session.update(fields)
        sessions.append(session)
    accounts: list[dict[str, Any]] = [{"id": LEADER, "session": leader_session["id"], "broker_account": "LEAD-1", "size": 50000}]
    group_followers = []
    for i in range(1, followers + 1):
        account_id = f"f{i:03d}"
        name = platforms[i % len(platforms)]
        accounts.append({
            "id": account_id, "session": f"followers-{name}", "broker_account": f"FOL-{i:03d}",
            "size": 100000 if i % 2 else 50000,
        })
        group_followers.append({"account": account_id, "rule": follower_rule(i)})
    return {
        "sessions": sessions,
        "accounts": accounts,
        "copy_groups": [{"id": "demo", "leader": LEADER, "followers": group_followers}],
    }

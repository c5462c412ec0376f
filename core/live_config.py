"""Changes to a running worker's copy config: accounts and followers added from the dashboard.

The YAML file is read once at start; the dashboard's edits arrive later as records on the
compacted ``copy.controls`` topic and every worker that cares (planner, executor, web) applies
them here, in place, so the objects already holding the config see the change at once.
Records carry state, not deltas: applying the same record twice changes nothing, which is
what a replay of the topic after a restart needs.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..brokers.base import SessionConfig
from .config import Account, CopyConfig, Follower
from .scaling import CopyRule

DASHBOARD_SESSION_PREFIX = "dashboard-"


def dashboard_session_id(account_id: str) -> str:
    """An account added (or re-pointed) from the dashboard logs in through a session of its own."""
    return f"{DASHBOARD_SESSION_PREFIX}{account_id}"


@dataclass(frozen=True, slots=True)
class AccountChange:
    """What applying one account record did; ``reconnect`` names the session to reopen."""

    account_id: str
    session_id: str
    reconnect: str | None = None
    left_session: str | None = None


def _connection(session: SessionConfig) -> tuple[object, ...]:
    return (
        session.platform,
        session.endpoint,
        session.username,
        session.secret,
        tuple(sorted(session.accounts.items())),
        tuple(sorted(session.options.items())),
    )


def apply_account(config: CopyConfig, account: Account, session: SessionConfig | None = None) -> AccountChange:
    """Add or replace ``account``; ``session`` (its own login) is added or replaced with it.

    Without ``session`` the account must name a session the config already has (a configured
    account whose size or broker account was edited). ``reconnect`` is set when the account's
    session must be reopened for the change to take effect (new login, new endpoint, another
    broker account name); a brand-new session opens on first use and needs no reconnect.
    """
    previous_account = config.accounts.get(account.account_id)
    target_before = config.sessions.get(account.session_id)
    before = _connection(target_before) if target_before is not None else None
    if session is not None:
        if session.session_id != account.session_id:
            raise ValueError(
                f"account {account.account_id!r} names session {account.session_id!r}, got {session.session_id!r}"
            )
        config.sessions[session.session_id] = session
    target = config.sessions.get(account.session_id)
    if target is None:
        raise KeyError(f"account {account.account_id!r}: unknown session {account.session_id!r}")
    left = None
    if previous_account is not None and previous_account.session_id != account.session_id:
        old = config.sessions.get(previous_account.session_id)
        if old is not None:
            old.accounts.pop(account.account_id, None)
            left = old.session_id
    target.accounts[account.account_id] = account.broker_account
    config.accounts[account.account_id] = account
    reconnect = account.session_id if before is not None and before != _connection(target) else None
    return AccountChange(account.account_id, account.session_id, reconnect, left)


def add_follower(config: CopyConfig, group_id: str, account_id: str, rule: CopyRule, enabled: bool) -> bool:
    """Make ``account_id`` a follower in copy group ``group_id``; False when it already was one.

    The rule itself lives in the planner's ``Controls`` (dashboard rules override the file's);
    this only adds the membership the planner iterates over. Unknown or disabled groups and a
    leader following itself are ignored (the web API refuses them before they are published).
    """
    group = next((g for g in config.groups if g.group_id == group_id), None)
    if group is None or not group.enabled or group.leader == account_id:
        return False
    members = config.followers_by_leader.get(group.leader, ())
    if any(g.group_id == group_id and f.account_id == account_id for g, f in members):
        return False
    config.followers_by_leader[group.leader] = (*members, (group, Follower(account_id, rule, enabled)))
    return True

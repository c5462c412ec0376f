"""Accounts, broker sessions and copy groups, loaded from one YAML (or JSON) file.

Secrets never live in the file: a session names the environment variable that holds its
password or key (``secret_env``). Every mistake is reported with the path of the field, e.g.
``copy_groups[0].followers[3].rule.multiplier: must be positive, got -1``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import yaml

from ..brokers.base import SessionConfig
from ..brokers.registry import ADAPTERS
from .scaling import CopyRule, ScalingMode


class ConfigError(ValueError):
    """The configuration is wrong; ``path`` names the field (``accounts[2].session``)."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Account:
    account_id: str
    session_id: str
    platform: str
    broker_account: str
    size: Decimal


@dataclass(frozen=True, slots=True)
class Follower:
    account_id: str
    rule: CopyRule
    enabled: bool = True


@dataclass(frozen=True, slots=True)
class CopyGroup:
    group_id: str
    leader: str
    followers: tuple[Follower, ...]
    enabled: bool = True


@dataclass(frozen=True, slots=True)
class CopyConfig:
    sessions: dict[str, SessionConfig]
    accounts: dict[str, Account]
    groups: tuple[CopyGroup, ...]
    source: str = "<memory>"
    followers_by_leader: dict[str, tuple[tuple[CopyGroup, Follower], ...]] = field(default_factory=dict)

    def session_for(self, account_id: str) -> SessionConfig:
        return self.sessions[self.accounts[account_id].session_id]

    def leaders(self) -> list[str]:
        return sorted({g.leader for g in self.groups if g.enabled})

    def follower_accounts(self) -> list[str]:
        """Followers from the file plus those added while running (``app.live_config``)."""
        listed = {f.account_id for g in self.groups for f in g.followers}
        added = {f.account_id for members in self.followers_by_leader.values() for _, f in members}
        return sorted(listed | added)


def load_config(path: str | os.PathLike[str], env: dict[str, str] | None = None) -> CopyConfig:
    text = Path(path).read_text()
    data = yaml.safe_load(text)
    return parse_config(data, env=env, source=str(path))


def parse_config(data: Any, env: dict[str, str] | None = None, source: str = "<memory>") -> CopyConfig:
    env = dict(os.environ) if env is None else env
    root = _mapping(data, "config")
    sessions = _parse_sessions(_list(root.get("sessions"), "sessions"), env)
    accounts = _parse_accounts(_list(root.get("accounts"), "accounts"), sessions)
    groups = _parse_groups(_list(root.get("copy_groups"), "copy_groups"), accounts)
    for session in sessions.values():
        session.accounts.update(
            {a.account_id: a.broker_account for a in accounts.values() if a.session_id == session.session_id}
        )
    index: dict[str, list[tuple[CopyGroup, Follower]]] = {}
    for group in groups:
        if group.enabled:
            index.setdefault(group.leader, []).extend((group, f) for f in group.followers)
    return CopyConfig(
        sessions=sessions, accounts=accounts, groups=groups, source=source,
        followers_by_leader={k: tuple(v) for k, v in index.items()},
    )


# --------------------------------------------------------------------------- sections


def _parse_sessions(items: list[Any], env: dict[str, str]) -> dict[str, SessionConfig]:
    sessions: dict[str, SessionConfig] = {}
    for i, raw in enumerate(items):
        where = f"sessions[{i}]"
        item = _mapping(raw, where)
        session_id = _str(item, "id", where)
        if session_id in sessions:
            raise ConfigError(f"{where}.id", f"duplicate session id {session_id!r}")
        platform = item.get("platform")
        if not platform:
            raise ConfigError(f"{where}.platform", "missing: every session needs a broker platform")
        if platform not in ADAPTERS:
            raise ConfigError(f"{where}.platform", f"unknown platform {platform!r}; known: {', '.join(sorted(ADAPTERS))}")
        secret = None
        secret_env = item.get("secret_env")
        if secret_env:
            if secret_env not in env:
                raise ConfigError(f"{where}.secret_env", f"environment variable {secret_env} is not set")
            secret = env[secret_env]
        sessions[session_id] = SessionConfig(
            platform=str(platform),
            session_id=session_id,
            accounts={},
            endpoint=item.get("endpoint"),
            username=item.get("username"),
            secret=secret,
            options=dict(_mapping(item.get("options") or {}, f"{where}.options")),
        )
    return sessions


def _parse_accounts(items: list[Any], sessions: dict[str, SessionConfig]) -> dict[str, Account]:
    accounts: dict[str, Account] = {}
    for i, raw in enumerate(items):
        where = f"accounts[{i}]"
        item = _mapping(raw, where)
        account_id = _str(item, "id", where)
        if account_id in accounts:
            raise ConfigError(f"{where}.id", f"duplicate account id {account_id!r}")
        session_id = item.get("session")
        if not session_id:
            raise ConfigError(f"{where}.session", "missing: an account needs a broker session (and so a platform)")
        if session_id not in sessions:
            raise ConfigError(f"{where}.session", f"unknown session {session_id!r}")
        size = _decimal(item.get("size", 50000), f"{where}.size")
        if size <= 0:
            raise ConfigError(f"{where}.size", f"must be positive, got {size}")
        accounts[account_id] = Account(
            account_id=account_id,
            session_id=session_id,
            platform=sessions[session_id].platform,
            broker_account=str(item.get("broker_account") or account_id),
            size=size,
        )
    return accounts


def _parse_groups(items: list[Any], accounts: dict[str, Account]) -> tuple[CopyGroup, ...]:
    groups = []
    for i, raw in enumerate(items):
        where = f"copy_groups[{i}]"
        item = _mapping(raw, where)
        leader = _str(item, "leader", where)
        if leader not in accounts:
            raise ConfigError(f"{where}.leader", f"unknown account {leader!r}")
        followers = []
        seen: set[str] = set()
        for j, fraw in enumerate(_list(item.get("followers"), f"{where}.followers")):
            fwhere = f"{where}.followers[{j}]"
            fitem = _mapping(fraw, fwhere)
            account = _str(fitem, "account", fwhere)
            if account not in accounts:
                raise ConfigError(f"{fwhere}.account", f"unknown account {account!r}")
            if account == leader:
                raise ConfigError(f"{fwhere}.account", "a leader cannot follow itself")
            if account in seen:
                raise ConfigError(f"{fwhere}.account", f"{account!r} listed twice in this group")
            seen.add(account)
            rule = _parse_rule(fitem.get("rule") or {}, f"{fwhere}.rule")
            followers.append(Follower(account, rule, bool(fitem.get("enabled", True))))
        groups.append(
            CopyGroup(str(item.get("id", f"group-{i}")), leader, tuple(followers), bool(item.get("enabled", True)))
        )
    return tuple(groups)


def _parse_rule(raw: Any, where: str) -> CopyRule:
    item = _mapping(raw, where)
    known = {"mode", "quantity", "multiplier", "max_quantity", "symbol_map", "inverse", "min_quantity"}
    for key in item:
        if key not in known:
            raise ConfigError(f"{where}.{key}", f"unknown rule field; known: {', '.join(sorted(known))}")
    try:
        mode = ScalingMode(item.get("mode", "multiplier"))
    except ValueError:
        raise ConfigError(f"{where}.mode", f"must be one of {', '.join(m.value for m in ScalingMode)}") from None
    quantity = _int(item.get("quantity", 1), f"{where}.quantity")
    multiplier = _decimal(item.get("multiplier", 1), f"{where}.multiplier")
    max_q = item.get("max_quantity")
    max_quantity = None if max_q is None else _int(max_q, f"{where}.max_quantity")
    min_quantity = _int(item.get("min_quantity", 1), f"{where}.min_quantity")
    for name, value in (("quantity", quantity), ("multiplier", multiplier), ("max_quantity", max_quantity)):
        if value is not None and value <= 0:
            raise ConfigError(f"{where}.{name}", f"must be positive, got {value}")
    if min_quantity < 0:
        raise ConfigError(f"{where}.min_quantity", f"must not be negative, got {min_quantity}")
    symbol_map = _mapping(item.get("symbol_map") or {}, f"{where}.symbol_map")
    return CopyRule(
        mode=mode,
        quantity=quantity,
        multiplier=multiplier,
        max_quantity=max_quantity,
        symbol_map={str(k).upper(): str(v).upper() for k, v in symbol_map.items()},
        inverse=bool(item.get("inverse", False)),
        min_quantity=min_quantity,
    )


# --------------------------------------------------------------------------- scalars


def _mapping(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ConfigError(where, f"must be a mapping, got {type(value).__name__}")
    return value


def _list(value: Any, where: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise ConfigError(where, f"must be a list, got {type(value).__name__}")
    return value


def _str(item: dict[str, Any], key: str, where: str) -> str:
    value = item.get(key)
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{where}.{key}", "missing or not a string")
    return value


def _int(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(where, f"must be a whole number, got {value!r}")
    return value


def _decimal(value: Any, where: str) -> Decimal:
    try:
        return Decimal(str(value))
    except InvalidOperation:
        raise ConfigError(where, f"must be a number, got {value!r}") from None

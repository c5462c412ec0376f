"""Accounts, broker sessions and copy groups, loaded from one YAML (or JSON) file.

Secrets never live in the file: a session names the environment variable that holds its
password or key (``secret_env``). Every mistake is reported with the path of the field, e.g.
``copy_groups[0].followers[3].rule.multiplier: must be positive, got -1``.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml

from ..brokers.base import SessionConfig
from ..brokers.options import check_options
from ..brokers.registry import ADAPTERS, adapter_class
from . import guards as guard_rules
from . import schemas
from .notifications import NotificationConfigError, NotificationTarget, parse_targets
from .scaling import CopyRule, ScalingMode
from .schemas import SchemaError
from .schemas.config import MarketDataIn
from .schemas.reconcile import ReconcileIn
from .schemas.types import ConfigOptions


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
    guards: guard_rules.GuardRules | None = None  # risk guards, checked by the executor


@dataclass(frozen=True, slots=True)
class CopyGroup:
    group_id: str
    leader: str
    followers: tuple[Follower, ...]
    enabled: bool = True
    auto_correct: bool = False  # reconciliation corrects drift (agents/reconcile); off: reports only
    protective_stop_s: float | None = 2.0  # agents/execution/protective.py; None: not watched
    stale_copy_s: float = 5.0  # a copy older than this is netted, not placed (docs/stale-copies.md)


@dataclass(frozen=True, slots=True)
class MarketDataConfig:
    """The price source: ``symbols`` maps our symbol (``ESZ6``) to the feed's (``/ESZ26:XCME``)."""

    platform: str
    endpoint: str
    token: str | None = field(default=None, repr=False)
    symbols: dict[str, str] = field(default_factory=dict)
    max_age_s: float = 5.0


@dataclass(frozen=True, slots=True)
class CopyConfig:
    sessions: dict[str, SessionConfig]
    accounts: dict[str, Account]
    groups: tuple[CopyGroup, ...]
    source: str = "<memory>"
    followers_by_leader: dict[str, tuple[tuple[CopyGroup, Follower], ...]] = field(default_factory=dict)
    #: Outgoing webhooks for alerts (``agents/notify``); none by default.
    notifications: tuple[NotificationTarget, ...] = ()
    market_data: MarketDataConfig | None = None
    reconcile: ReconcileIn = field(default_factory=ReconcileIn)

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
    """Validate the file through ``schemas.ConfigIn`` (types, bounds), then the references."""
    env = dict(os.environ) if env is None else env
    if not isinstance(data, dict):
        raise ConfigError("config", f"must be a mapping, got {type(data).__name__}")
    try:
        root = schemas.convert(data, schemas.ConfigIn)
    except SchemaError as exc:
        raise ConfigError(_setting_at_fault(data, exc.field) or exc.field or "config", exc.reason) from None
    sessions = _parse_sessions(root.sessions or [], env)
    accounts = _parse_accounts(root.accounts or [], sessions)
    groups = _parse_groups(root.copy_groups or [], accounts)
    _check_guards(root.copy_groups or [], groups, has_market_data=root.market_data is not None)
    for session in sessions.values():
        session.accounts.update(
            {a.account_id: a.broker_account for a in accounts.values() if a.session_id == session.session_id}
        )
    index: dict[str, list[tuple[CopyGroup, Follower]]] = {}
    for group in groups:
        if group.enabled:
            index.setdefault(group.leader, []).extend((group, f) for f in group.followers)
    try:
        notifications = parse_targets(root.notifications or [], env)
    except NotificationConfigError as exc:
        raise ConfigError(exc.field, exc.reason) from None
    return CopyConfig(
        sessions=sessions,
        accounts=accounts,
        groups=groups,
        source=source,
        followers_by_leader={k: tuple(v) for k, v in index.items()},
        notifications=notifications,
        market_data=_parse_market_data(root.market_data, env),
        reconcile=root.reconcile or ReconcileIn(),
    )


_SESSION_OPTIONS = re.compile(r"^sessions\[(\d+)\]\.options(?:\[\d+\])*$")


def _setting_at_fault(data: dict[str, Any], path: str) -> str | None:
    """msgspec names a mapping, not its key, when a value in it is refused: find which of a
    session's settings it was, so the user reads ``sessions[1].options.heartbeat_s``."""
    found = _SESSION_OPTIONS.match(path)
    if found is None:
        return None
    try:
        options = data["sessions"][int(found.group(1))]["options"]
        for name, value in options.items():
            try:
                schemas.convert({name: value}, ConfigOptions)
            except SchemaError:
                return f"sessions[{found.group(1)}].options.{name}"
    except (KeyError, IndexError, TypeError, AttributeError):
        pass
    return None


def _parse_market_data(item: MarketDataIn | None, env: dict[str, str]) -> MarketDataConfig | None:
    if item is None:
        return None
    if item.token_env is not None and item.token_env not in env:
        raise ConfigError("market_data.token_env", f"environment variable {item.token_env} is not set")
    return MarketDataConfig(
        platform=item.platform,
        endpoint=item.endpoint,
        token=env[item.token_env] if item.token_env else None,
        symbols={ours.upper(): theirs for ours, theirs in item.symbols.items()},
        max_age_s=item.max_age_s,
    )


# --------------------------------------------------------------------------- sections
# Types and bounds are the schema's; what is left here are the references between sections.


def _parse_sessions(items: list[schemas.SessionIn], env: dict[str, str]) -> dict[str, SessionConfig]:
    sessions: dict[str, SessionConfig] = {}
    for i, item in enumerate(items):
        where = f"sessions[{i}]"
        if item.id in sessions:
            raise ConfigError(f"{where}.id", f"duplicate session id {item.id!r}")
        if item.platform not in ADAPTERS:
            raise ConfigError(
                f"{where}.platform", f"unknown platform {item.platform!r}; known: {', '.join(sorted(ADAPTERS))}"
            )
        secret = None
        if item.secret_env:
            if item.secret_env not in env:
                raise ConfigError(f"{where}.secret_env", f"environment variable {item.secret_env} is not set")
            secret = env[item.secret_env]
        sessions[item.id] = SessionConfig(
            platform=item.platform,
            session_id=item.id,
            accounts={},
            endpoint=item.endpoint,
            username=item.username,
            secret=secret,
            options=_checked_options(item.platform, _resolve_secret_options(item.options, env, where), where),
        )
    return sessions


def _checked_options(platform: str, options: dict[str, Any], where: str) -> dict[str, Any]:
    """The platform's own schema (``brokers/options.py``): a misspelt or out-of-range setting
    is refused here, naming it, not when the adapter connects."""
    try:
        check_options(platform, options)
    except SchemaError as exc:
        raise ConfigError(f"{where}.{exc.nested('options').field}", exc.reason) from None
    return options


def _resolve_secret_options(options: dict[str, Any], env: dict[str, str], where: str) -> dict[str, Any]:
    """``<name>_env: VARIABLE`` puts the variable's value into option ``<name>``.

    Why: some platforms need a second secret beside the password (Tradovate's API ``sec``);
    like ``secret_env`` it must come from the environment, never from the file.
    """
    resolved = {k: v for k, v in options.items() if not k.endswith("_env")}
    for key, variable in options.items():
        if not key.endswith("_env"):
            continue
        name = key.removesuffix("_env")
        if not name or not isinstance(variable, str):
            raise ConfigError(f"{where}.options.{key}", "must name an environment variable")
        if name in resolved:
            raise ConfigError(
                f"{where}.options.{key}", f"option {name!r} is given both directly and from the environment"
            )
        if variable not in env:
            raise ConfigError(f"{where}.options.{key}", f"environment variable {variable} is not set")
        resolved[name] = env[variable]
    return resolved


def _parse_accounts(items: list[schemas.AccountIn], sessions: dict[str, SessionConfig]) -> dict[str, Account]:
    accounts: dict[str, Account] = {}
    for i, item in enumerate(items):
        where = f"accounts[{i}]"
        if item.id in accounts:
            raise ConfigError(f"{where}.id", f"duplicate account id {item.id!r}")
        if item.session not in sessions:
            raise ConfigError(f"{where}.session", f"unknown session {item.session!r}")
        if not _order_entry(sessions[item.session].platform):
            raise ConfigError(
                f"{where}.session",
                f"{sessions[item.session].platform} is market data only (no orders): use market_data:",
            )
        accounts[item.id] = Account(
            account_id=item.id,
            session_id=item.session,
            platform=sessions[item.session].platform,
            broker_account=item.broker_account or item.id,
            size=item.size,
        )
    return accounts


def _order_entry(platform: str) -> bool:
    """Whether the platform takes orders; an adapter that does not import is judged where it is
    used (the registry imports adapters lazily so one's missing dependency spares the others)."""
    try:
        return adapter_class(platform).capabilities.order_entry
    except ImportError:
        return True


def _parse_groups(items: list[schemas.GroupIn], accounts: dict[str, Account]) -> tuple[CopyGroup, ...]:
    groups = []
    for i, item in enumerate(items):
        where = f"copy_groups[{i}]"
        if item.leader not in accounts:
            raise ConfigError(f"{where}.leader", f"unknown account {item.leader!r}")
        followers = []
        seen: set[str] = set()
        for j, follower in enumerate(item.followers or []):
            fwhere = f"{where}.followers[{j}]"
            if follower.account not in accounts:
                raise ConfigError(f"{fwhere}.account", f"unknown account {follower.account!r}")
            if follower.account == item.leader:
                raise ConfigError(f"{fwhere}.account", "a leader cannot follow itself")
            if follower.account in seen:
                raise ConfigError(f"{fwhere}.account", f"{follower.account!r} listed twice in this group")
            seen.add(follower.account)
            guards = guard_rules.merge(item.guards, follower.guards)
            followers.append(
                Follower(
                    follower.account,
                    copy_rule(follower.rule or schemas.RuleIn()),
                    follower.enabled,
                    guard_rules.build(guards) if guards is not None else None,
                )
            )
        groups.append(
            CopyGroup(
                item.id or f"group-{i}",
                item.leader,
                tuple(followers),
                item.enabled,
                item.auto_correct,
                protective_stop_s=item.protective_stop_s,
                stale_copy_s=item.stale_copy_s,
            )
        )
    return tuple(groups)


def _check_guards(items: list[schemas.GroupIn], groups: tuple[CopyGroup, ...], *, has_market_data: bool) -> None:
    """Guards are per account: one account in two groups must not have two sets of them. Loss
    and drawdown rules count unrealised P&L, so they need the ``market_data:`` price source."""
    seen: dict[str, tuple[str, guard_rules.GuardRules]] = {}
    for i, (item, group) in enumerate(zip(items, groups, strict=True)):
        for j, follower in enumerate(group.followers):
            if follower.guards is None:
                continue
            where = f"copy_groups[{i}]." + (
                "guards" if item.guards and not (item.followers or [])[j].guards else f"followers[{j}].guards"
            )
            if follower.guards.needs_marks and not has_market_data:
                raise ConfigError(
                    where,
                    "daily_loss and trailing_drawdown need market_data: (unrealised P&L is marked with its quotes)",
                )
            first = seen.setdefault(follower.account_id, (group.group_id, follower.guards))
            if first[1] != follower.guards:
                raise ConfigError(
                    where,
                    f"account {follower.account_id!r} already has other guards in group {first[0]!r} (guards are per account)",
                )


def copy_rule(rule: schemas.RuleIn) -> CopyRule:
    """A validated rule (``schemas.RuleIn``) as the planner uses it."""
    return CopyRule(
        mode=ScalingMode(rule.mode),
        quantity=rule.quantity,
        multiplier=rule.multiplier,
        max_quantity=rule.max_quantity,
        symbol_map={k.upper(): v.upper() for k, v in rule.symbol_map.items()},
        inverse=rule.inverse,
        min_quantity=rule.min_quantity,
        price_band_ticks=rule.price_band_ticks,
        on_no_quote=rule.on_no_quote,
    )


def parse_rule(raw: Any, where: str = "rule") -> CopyRule:
    """A rule from any door (file, REST, ``copy.controls``), validated by the one schema;
    ``ConfigError`` names the field under ``where``."""
    try:
        return copy_rule(schemas.convert(raw, schemas.RuleIn))
    except SchemaError as exc:
        raise ConfigError(exc.nested(where).field, exc.reason) from None

"""Accounts and copy rules as the dashboard edits them, behind one small interface.

The registry starts from the YAML copy config and follows ``copy.controls``: an edit made here
is published there as a record carrying the account's whole state (``AccountCommand``), and
every worker — planners, executors, other web workers, this one after a restart — applies it
from the topic. Compaction keeps the latest record per account, so the topic is where the
dashboard's accounts persist.

Credentials are write-only: the login is sealed (Fernet, ``storage.crypto``) the moment it
arrives, the registry keeps only the sealed token, and :meth:`AccountRecord.public` says only
whether one is set. Opening it needs the key, which only executors and this worker's
connection test use.
"""

from __future__ import annotations

import asyncio
import re
import secrets
import time
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any

from ..agents.control_records import AccountCommand, Login, RuleCommand, seal_login, unseal_login
from ..app.config import ConfigError, CopyConfig, parse_rule
from ..app.live_config import add_follower, apply_account, dashboard_session_id
from ..app.scaling import CopyRule
from ..brokers.base import SessionConfig
from ..brokers.registry import ADAPTERS, create_adapter
from ..storage.crypto import CredentialCipher, CredentialKeyError
from .http import Fields, HttpError

ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
ACCOUNT_FIELDS = {"id", "platform", "broker_account", "size", "enabled", "credentials", "endpoint", "options"}
OPTION_KEY_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,40}")
MAX_OPTIONS = 32
NO_KEY = "cannot be stored: this server has no encryption key (set COPYTRADER_SECRET_KEY)"


@dataclass(slots=True)
class AccountRecord:
    account_id: str
    platform: str
    broker_account: str
    size: Decimal
    enabled: bool = True
    source: str = "dashboard"
    session_id: str | None = None
    endpoint: str | None = None
    sealed: str | None = field(default=None, repr=False)
    key_id: str | None = None
    updated_at: float = field(default_factory=time.time)
    options: dict[str, Any] = field(default_factory=dict)  # platform settings that are not secret

    def public(self) -> dict[str, Any]:
        """What the browser may see: never a username, secret or token."""
        return {
            "id": self.account_id, "platform": self.platform, "broker_account": self.broker_account,
            "size": str(self.size), "enabled": self.enabled, "source": self.source,
            "endpoint": self.endpoint, "options": dict(self.options),
            "credentials": {"set": self.sealed is not None or (self.source == "config" and not self.own_session)},
            "updated_at": self.updated_at,
        }

    @property
    def own_session(self) -> bool:
        return self.session_id == dashboard_session_id(self.account_id)

    def command(self, by: str) -> AccountCommand:
        """The record every worker applies (state, not a delta: replays are harmless)."""
        return AccountCommand(
            f"acct-{secrets.token_hex(8)}", self.account_id, self.platform, self.broker_account, str(self.size),
            self.enabled, self.session_id or dashboard_session_id(self.account_id), self.endpoint,
            self.sealed, self.key_id, by, time.time(), dict(self.options),
        )


def options_field(f: Fields, name: str, value: Any, *, scalars: bool) -> dict[str, Any]:
    """Platform settings: names like ``appId``/``cid``; text values for the sealed (secret) ones,
    text, numbers or booleans for the public ones. Errors land on ``f`` under the field name."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        f.errors[f.prefix + name] = "must be an object"
        return {}
    if len(value) > MAX_OPTIONS:
        f.errors[f.prefix + name] = f"at most {MAX_OPTIONS} settings"
        return {}
    allowed = (str, int, float, bool) if scalars else (str,)
    for key, item in value.items():
        if not OPTION_KEY_RE.fullmatch(key):
            f.errors[f"{f.prefix}{name}.{key}"[:80]] = "not a setting name"
        elif not isinstance(item, allowed) or (isinstance(item, str) and len(item) > 1024):
            f.errors[f"{f.prefix}{name}.{key}"] = "must be text" if not scalars else "must be text, a number or true/false"
    return dict(value)


def rule_dict(rule: CopyRule) -> dict[str, Any]:
    return {
        "mode": rule.mode.value, "quantity": rule.quantity, "multiplier": str(rule.multiplier),
        "max_quantity": rule.max_quantity, "min_quantity": rule.min_quantity,
        "symbol_map": dict(rule.symbol_map), "inverse": rule.inverse,
    }


class AccountRegistry:
    def __init__(self, config: CopyConfig, cipher: CredentialCipher | None = None) -> None:
        self.config = config
        self.cipher = cipher
        self.configured = set(config.accounts)
        self.accounts: dict[str, AccountRecord] = {
            a.account_id: AccountRecord(a.account_id, a.platform, a.broker_account, a.size, True, "config", a.session_id,
                                        updated_at=0.0)  # any dashboard record replayed later wins
            for a in config.accounts.values()
        }
        self.rules: dict[tuple[str, str], tuple[CopyRule, bool]] = {
            (g.group_id, f.account_id): (f.rule, f.enabled) for g in config.groups for f in g.followers
        }
        self.leaders = {g.group_id: g.leader for g in config.groups}

    # --------------------------------------------------------------------------- accounts
    def all(self) -> list[dict[str, Any]]:
        return [a.public() for a in sorted(self.accounts.values(), key=lambda a: a.account_id)]

    def get(self, account_id: str) -> AccountRecord:
        found = self.accounts.get(account_id)
        if found is None:
            raise HttpError(404, "no such account", id=account_id)
        return found

    def create(self, data: dict[str, Any], by: str) -> AccountCommand:
        """Validate a new account; the caller publishes the record, then :meth:`apply_account_command`."""
        f = Fields(data)
        f.unknown(ACCOUNT_FIELDS)
        account_id = f.string("id", pattern=ID_RE)
        platform = f.choice("platform", sorted(ADAPTERS))
        broker_account = f.string("broker_account")
        size = f.positive_decimal("size") or Decimal(50000)
        enabled = f.boolean("enabled", default=True)
        endpoint = f.string("endpoint", required=False, max_len=300)
        options = options_field(f, "options", data.get("options"), scalars=True)
        login = self._credentials(f)
        f.check()
        assert account_id and platform and broker_account
        if account_id in self.accounts:
            raise HttpError(409, "account exists", id=account_id)
        record = AccountRecord(account_id, platform, broker_account, size, bool(enabled),
                               session_id=dashboard_session_id(account_id), endpoint=endpoint, options=options)
        return self._sealed(record, login).command(by)

    def update(self, account_id: str, data: dict[str, Any], by: str) -> AccountCommand:
        """Validate an edit. A configured account that gets a new platform, endpoint or login
        moves to a session of its own (its file session is shared with other accounts)."""
        record = self.get(account_id)
        f = Fields(data)
        f.unknown(ACCOUNT_FIELDS - {"id"})
        changes: dict[str, Any] = {}
        if "platform" in data:
            changes["platform"] = f.choice("platform", sorted(ADAPTERS))
        if "broker_account" in data:
            changes["broker_account"] = f.string("broker_account")
        if "size" in data:
            changes["size"] = f.positive_decimal("size", required=True)
        if "enabled" in data:
            changes["enabled"] = f.boolean("enabled", required=True)
        if "endpoint" in data:
            changes["endpoint"] = f.string("endpoint", max_len=300)
        if "options" in data:
            changes["options"] = options_field(f, "options", data.get("options"), scalars=True)
        login = self._credentials(f) if "credentials" in data else None
        f.check()
        moves = (login is not None or "endpoint" in changes or "options" in changes
                 or changes.get("platform", record.platform) != record.platform)
        if moves and not record.own_session:
            changes["session_id"] = dashboard_session_id(account_id)
        updated = replace(record, **changes, updated_at=time.time())
        return self._sealed(updated, login).command(by)

    def disable(self, account_id: str, by: str) -> AccountCommand:
        """Disable rather than delete: executions and audit entries still refer to it."""
        return self.update(account_id, {"enabled": False}, by)

    def apply_account_command(self, command: AccountCommand) -> dict[str, Any]:
        """An account record, from this worker's own edit or read back from ``copy.controls``."""
        previous = self.accounts.get(command.account_id)
        record = AccountRecord(
            command.account_id, command.platform, command.broker_account, Decimal(command.size), command.enabled,
            "config" if command.account_id in self.configured else "dashboard", command.session_id,
            command.endpoint, command.sealed, command.key_id, command.at or time.time(), dict(command.options),
        )
        if previous is not None and previous.updated_at > record.updated_at:
            return previous.public()  # an older record replayed after a newer local edit
        self.accounts[command.account_id] = record
        apply_account(self.config, command.account(), command.routing_session())
        return record.public()

    def _sealed(self, record: AccountRecord, login: Login | None) -> AccountRecord:
        if login is None:
            return record
        if self.cipher is None:
            raise HttpError(503, "invalid input", fields={"credentials": NO_KEY})
        return replace(record, sealed=seal_login(self.cipher, record.account_id, login),
                       key_id=self.cipher.primary_key_id)

    @staticmethod
    def _credentials(f: Fields) -> Login | None:
        creds = f.mapping("credentials")
        if creds is None:
            return None
        sub = Fields(creds, prefix="credentials.")
        sub.unknown({"username", "secret", "options"})
        username = sub.string("username", required=False)
        secret = sub.string("secret", max_len=4096)
        options = options_field(sub, "options", creds.get("options"), scalars=False)
        f.errors.update(sub.errors)
        return Login(username or None, secret, options) if secret else None

    async def test_connection(self, account_id: str, timeout_s: float = 5.0) -> dict[str, Any]:
        """Connect a fresh adapter, read its health, disconnect; the answer names no secret."""
        record = self.get(account_id)
        if not record.own_session and record.session_id in self.config.sessions:
            session = self.config.sessions[record.session_id]
            config = replace(session, accounts=dict(session.accounts), options=dict(session.options))
        else:
            try:
                login = unseal_login(self.cipher, account_id, record.sealed, record.key_id)
            except CredentialKeyError:
                return {"ok": False, "error": "stored login cannot be opened with this server's key"}
            config = SessionConfig(
                platform=record.platform, session_id=f"test-{account_id}", accounts={account_id: record.broker_account},
                endpoint=record.endpoint, username=login.username, secret=login.secret,
                options={**record.options, **login.options},
            )
        started = time.perf_counter()
        try:
            adapter = create_adapter(config)
            await asyncio.wait_for(adapter.connect(), timeout_s)
            health = adapter.health()
            await adapter.disconnect()
        except TimeoutError:
            return {"ok": False, "error": f"no answer within {timeout_s:.0f} s"}
        except Exception as exc:  # noqa: BLE001 - report the kind of failure, never its text (may hold secrets)
            return {"ok": False, "error": type(exc).__name__}
        return {"ok": health.state.value in ("connected", "degraded"), "state": health.state.value,
                "latency_ms": round((time.perf_counter() - started) * 1000, 1)}

    # ------------------------------------------------------------------------------ rules
    def groups(self) -> list[dict[str, Any]]:
        out = []
        for group_id, leader in sorted(self.leaders.items()):
            followers = [
                {"account": account, "enabled": enabled, "rule": rule_dict(rule)}
                for (gid, account), (rule, enabled) in sorted(self.rules.items()) if gid == group_id
            ]
            out.append({"id": group_id, "leader": leader, "followers": followers})
        return out

    def follower_rules(self, account_id: str) -> list[tuple[str, CopyRule]]:
        """(group, rule) for every copy group the account follows in."""
        return [(gid, rule) for (gid, account), (rule, _) in self.rules.items() if account == account_id]

    def apply_command(self, command: AccountCommand | RuleCommand) -> None:
        """A record read back from ``copy.controls`` (this or another web worker wrote it)."""
        if isinstance(command, AccountCommand):
            self.apply_account_command(command)
        else:
            self.apply_rule_command(command.group_id, command.account_id, command.parsed_rule(), command.enabled)

    def apply_rule_command(self, group_id: str, account_id: str, rule: CopyRule, enabled: bool) -> None:
        """A rule edit read back from ``copy.controls`` (this or another web worker made it)."""
        if group_id in self.leaders:
            self.rules[(group_id, account_id)] = (rule, enabled)
            add_follower(self.config, group_id, account_id, rule, enabled)

    def set_rule(self, group_id: str, account_id: str, data: dict[str, Any]) -> dict[str, Any]:
        """Validated exactly as the YAML is, so the reason names the field the same way."""
        if group_id not in self.leaders:
            raise HttpError(404, "no such copy group", id=group_id)
        if account_id not in self.accounts:
            raise HttpError(404, "no such account", id=account_id)
        if account_id == self.leaders[group_id]:
            raise HttpError(422, "invalid input", fields={"account": "a leader cannot follow itself"})
        f = Fields(data)
        f.unknown({"rule", "enabled"})
        raw_rule = f.mapping("rule", required=True)
        enabled = f.boolean("enabled", default=True)
        f.check()
        try:
            rule = parse_rule(raw_rule, "rule")
        except ConfigError as exc:
            raise HttpError(422, "invalid input", fields={exc.path: exc.reason}) from None
        self.rules[(group_id, account_id)] = (rule, bool(enabled))
        add_follower(self.config, group_id, account_id, rule, bool(enabled))
        return {"account": account_id, "enabled": bool(enabled), "rule": rule_dict(rule)}

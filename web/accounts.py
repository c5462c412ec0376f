"""Accounts and copy rules as the dashboard edits them, behind one small interface.

The running pipeline reads the YAML copy config at start (``app.config``); this registry starts
from it and records the dashboard's edits. Credentials are write-only: they are kept as
``SecretStr`` (masked ``repr``, so a stray log line shows ``***``) and :meth:`public` never
includes them — only whether some are set.

``MemoryAccounts`` is the fallback used today; a database-backed registry (``storage``'s
``accounts``/``broker_credentials``/``copy_rules`` tables, credentials encrypted by
``storage.crypto``) can replace it behind the same methods.
"""

from __future__ import annotations

import asyncio
import re
import time
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any

from ..app.config import ConfigError, CopyConfig, _parse_rule
from ..app.scaling import CopyRule
from ..brokers.base import SessionConfig
from ..brokers.registry import ADAPTERS, create_adapter
from ..storage.crypto import SecretStr
from .http import Fields, HttpError

ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
ACCOUNT_FIELDS = {"id", "platform", "broker_account", "size", "enabled", "credentials", "endpoint"}


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
    username: SecretStr | None = None
    secret: SecretStr | None = None
    updated_at: float = field(default_factory=time.time)

    def public(self) -> dict[str, Any]:
        """What the browser may see: never a username, secret or token."""
        return {
            "id": self.account_id, "platform": self.platform, "broker_account": self.broker_account,
            "size": str(self.size), "enabled": self.enabled, "source": self.source,
            "credentials": {"set": self.secret is not None or self.source == "config"},
            "updated_at": self.updated_at,
        }


def rule_dict(rule: CopyRule) -> dict[str, Any]:
    return {
        "mode": rule.mode.value, "quantity": rule.quantity, "multiplier": str(rule.multiplier),
        "max_quantity": rule.max_quantity, "min_quantity": rule.min_quantity,
        "symbol_map": dict(rule.symbol_map), "inverse": rule.inverse,
    }


class MemoryAccounts:
    def __init__(self, config: CopyConfig) -> None:
        self.config = config
        self.accounts: dict[str, AccountRecord] = {
            a.account_id: AccountRecord(a.account_id, a.platform, a.broker_account, a.size, True, "config", a.session_id)
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

    def create(self, data: dict[str, Any]) -> dict[str, Any]:
        f = Fields(data)
        f.unknown(ACCOUNT_FIELDS)
        account_id = f.string("id", pattern=ID_RE)
        platform = f.choice("platform", sorted(ADAPTERS))
        broker_account = f.string("broker_account")
        size = f.positive_decimal("size") or Decimal(50000)
        enabled = f.boolean("enabled", default=True)
        endpoint = f.string("endpoint", required=False, max_len=300)
        username, secret = self._credentials(f)
        f.check()
        assert account_id and platform and broker_account
        if account_id in self.accounts:
            raise HttpError(409, "account exists", id=account_id)
        record = AccountRecord(account_id, platform, broker_account, size, bool(enabled), endpoint=endpoint,
                               username=username, secret=secret)
        self.accounts[account_id] = record
        return record.public()

    def update(self, account_id: str, data: dict[str, Any]) -> dict[str, Any]:
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
        if "credentials" in data:
            changes["username"], changes["secret"] = self._credentials(f)
        f.check()
        updated = replace(record, **changes, updated_at=time.time())
        self.accounts[account_id] = updated
        return updated.public()

    def disable(self, account_id: str) -> dict[str, Any]:
        """Disable rather than delete: executions and audit entries still refer to it."""
        return self.update(account_id, {"enabled": False})

    @staticmethod
    def _credentials(f: Fields) -> tuple[SecretStr | None, SecretStr | None]:
        creds = f.mapping("credentials")
        if creds is None:
            return None, None
        sub = Fields(creds, prefix="credentials.")
        sub.unknown({"username", "secret"})
        username = sub.string("username", required=False)
        secret = sub.string("secret", max_len=4096)
        f.errors.update(sub.errors)
        return (SecretStr(username) if username else None), (SecretStr(secret) if secret else None)

    async def test_connection(self, account_id: str, timeout_s: float = 5.0) -> dict[str, Any]:
        """Connect a fresh adapter, read its health, disconnect; the answer names no secret."""
        record = self.get(account_id)
        if record.source == "config" and record.session_id:
            session = self.config.sessions[record.session_id]
            config = replace(session, accounts=dict(session.accounts), options=dict(session.options))
        else:
            config = SessionConfig(
                platform=record.platform, session_id=f"test-{account_id}", accounts={account_id: record.broker_account},
                endpoint=record.endpoint, username=record.username.reveal() if record.username else None,
                secret=record.secret.reveal() if record.secret else None, options={},
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

    def apply_rule_command(self, group_id: str, account_id: str, rule: CopyRule, enabled: bool) -> None:
        """A rule edit read back from ``copy.controls`` (this or another web worker made it)."""
        if group_id in self.leaders:
            self.rules[(group_id, account_id)] = (rule, enabled)

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
            rule = _parse_rule(raw_rule, "rule")
        except ConfigError as exc:
            raise HttpError(422, "invalid input", fields={exc.path: exc.reason}) from None
        self.rules[(group_id, account_id)] = (rule, bool(enabled))
        return {"account": account_id, "enabled": bool(enabled), "rule": rule_dict(rule)}

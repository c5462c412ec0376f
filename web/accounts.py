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
import secrets
import time
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any

from ..brokers.base import SessionConfig
from ..brokers.options import check_options
from ..brokers.registry import ADAPTERS, create_adapter
from ..common.bounds import BoundError, check_endpoint
from ..common.crypto import CredentialCipher, CredentialKeyError
from ..core import schemas
from ..core.config import CopyConfig, copy_rule
from ..core.control_records import AccountCommand, Login, RuleCommand, seal_login, unseal_login
from ..core.live_config import add_follower, apply_account, dashboard_session_id
from ..core.scaling import CopyRule
from ..core.schemas import SchemaError
from ..core.schemas.web import UNSET
from .http import FieldErrors, HttpError

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
            "id": self.account_id,
            "platform": self.platform,
            "broker_account": self.broker_account,
            "size": str(self.size),
            "enabled": self.enabled,
            "source": self.source,
            "endpoint": self.endpoint,
            "options": dict(self.options),
            "credentials": {"set": self.sealed is not None or (self.source == "config" and not self.own_session)},
            "updated_at": self.updated_at,
        }

    @property
    def own_session(self) -> bool:
        return self.session_id == dashboard_session_id(self.account_id)

    def command(self, by: str) -> AccountCommand:
        """The record every worker applies (state, not a delta: replays are harmless)."""
        return AccountCommand(
            f"acct-{secrets.token_hex(8)}",
            self.account_id,
            self.platform,
            self.broker_account,
            str(self.size),
            self.enabled,
            self.session_id or dashboard_session_id(self.account_id),
            self.endpoint,
            self.sealed,
            self.key_id,
            by,
            time.time(),
            dict(self.options),
        )


def rule_dict(rule: CopyRule) -> dict[str, Any]:
    return {
        "mode": rule.mode.value,
        "quantity": rule.quantity,
        "multiplier": str(rule.multiplier),
        "max_quantity": rule.max_quantity,
        "min_quantity": rule.min_quantity,
        "symbol_map": dict(rule.symbol_map),
        "inverse": rule.inverse,
        "price_band_ticks": rule.price_band_ticks,
        "on_no_quote": rule.on_no_quote,
    }


class AccountRegistry:
    def __init__(
        self, config: CopyConfig, cipher: CredentialCipher | None = None, allowed_hosts: frozenset[str] = frozenset()
    ) -> None:
        self.config = config
        self.cipher = cipher
        self.allowed_hosts = allowed_hosts
        self.configured = set(config.accounts)
        self.accounts: dict[str, AccountRecord] = {
            a.account_id: AccountRecord(
                a.account_id, a.platform, a.broker_account, a.size, True, "config", a.session_id, updated_at=0.0
            )  # any dashboard record replayed later wins
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

    def create(self, body: schemas.AccountCreate, by: str) -> AccountCommand:
        """A new account (types and bounds already checked by the schema); the caller
        publishes the record, then :meth:`apply_account_command`."""
        self._check_platform(body.platform)
        endpoint = self._endpoint(body.endpoint)
        if body.id in self.accounts:
            raise HttpError(409, "account exists", id=body.id)
        record = AccountRecord(
            body.id,
            body.platform,
            body.broker_account,
            body.size,
            body.enabled,
            session_id=dashboard_session_id(body.id),
            endpoint=endpoint,
            options=dict(body.options),
        )
        login = _login(body.credentials)
        self._check_options(record.platform, record.options, login)
        return self._sealed(record, login).command(by)

    def update(self, account_id: str, body: schemas.AccountPatch, by: str) -> AccountCommand:
        """An edit. A configured account that gets a new platform, endpoint or login moves to a
        session of its own (its file session is shared with other accounts).

        Changing where or how the login is used (platform, endpoint, settings) clears the
        stored login unless a new one comes with the change: a login entered for one address
        must never be sent to another one by "Test" or by an executor.
        """
        record = self.get(account_id)
        changes: dict[str, Any] = {}
        if body.platform is not UNSET:
            self._check_platform(body.platform)
            changes["platform"] = body.platform
        if body.broker_account is not UNSET:
            changes["broker_account"] = body.broker_account
        if body.size is not UNSET:
            changes["size"] = body.size
        if body.enabled is not UNSET:
            changes["enabled"] = body.enabled
        if body.endpoint is not UNSET:
            changes["endpoint"] = self._endpoint(body.endpoint)
        if body.options is not UNSET:
            changes["options"] = dict(body.options)
        login = _login(body.credentials) if body.credentials is not UNSET else None
        redirected = any(k in changes and changes[k] != getattr(record, k) for k in ("platform", "endpoint", "options"))
        moves = login is not None or "endpoint" in changes or "options" in changes or redirected
        if moves and not record.own_session:
            changes["session_id"] = dashboard_session_id(account_id)
        if redirected and login is None:
            changes.update(sealed=None, key_id=None)
        updated = replace(record, **changes, updated_at=time.time())
        if updated.platform != record.platform or "options" in changes or login is not None:
            # Only what changes (the dashboard's form sends the platform with every edit): an
            # account saved before a setting was refused can still be disabled or resized.
            self._check_options(updated.platform, updated.options, login)
        return self._sealed(updated, login).command(by)

    def _check_platform(self, platform: str) -> None:
        if platform not in ADAPTERS:
            raise FieldErrors({"platform": f"must be one of {', '.join(sorted(ADAPTERS))}"})

    @staticmethod
    def _check_options(platform: str, options: dict[str, Any], login: Login | None) -> None:
        """The platform's own schema (``brokers/options.py``), for the settings and the secret
        ones apart (the adapter gets both): a misspelt or out-of-range one is answered 422 here,
        not found when an executor connects. A secret setting's value is never echoed."""
        try:
            check_options(platform, options)
        except SchemaError as exc:
            raise FieldErrors({exc.nested("options").field: exc.reason}) from None
        if login is not None and login.options:
            try:
                check_options(platform, login.options)
            except SchemaError as exc:
                raise FieldErrors({exc.nested("credentials.options").field: _without_value(exc.reason)}) from None

    def _endpoint(self, url: str | None) -> str | None:
        if url is None:
            return None
        try:
            return check_endpoint(url, self.allowed_hosts, folders=False)
        except BoundError as exc:
            raise FieldErrors({"endpoint": str(exc)}) from None

    def disable(self, account_id: str, by: str) -> AccountCommand:
        """Disable rather than delete: executions and audit entries still refer to it."""
        return self.update(account_id, schemas.AccountPatch(enabled=False), by)

    def apply_account_command(self, command: AccountCommand) -> dict[str, Any]:
        """An account record, from this worker's own edit or read back from ``copy.controls``."""
        previous = self.accounts.get(command.account_id)
        record = AccountRecord(
            command.account_id,
            command.platform,
            command.broker_account,
            Decimal(command.size),
            command.enabled,
            "config" if command.account_id in self.configured else "dashboard",
            command.session_id,
            command.endpoint,
            command.sealed,
            command.key_id,
            command.at or time.time(),
            dict(command.options),
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
        return replace(
            record, sealed=seal_login(self.cipher, record.account_id, login), key_id=self.cipher.primary_key_id
        )

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
                platform=record.platform,
                session_id=f"test-{account_id}",
                accounts={account_id: record.broker_account},
                endpoint=record.endpoint,
                username=login.username,
                secret=login.secret,
                options={**record.options, **login.options},
            )
        try:  # a setting saved before the doors checked them: named, as the doors would
            check_options(config.platform, config.options)
        except SchemaError as exc:
            return {"ok": False, "error": f"{exc.nested('options').field}: {_without_value(exc.reason)}"}
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
        return {
            "ok": health.state.value in ("connected", "degraded"),
            "state": health.state.value,
            "latency_ms": round((time.perf_counter() - started) * 1000, 1),
        }

    # ------------------------------------------------------------------------------ rules
    def groups(self) -> list[dict[str, Any]]:
        out = []
        for group_id, leader in sorted(self.leaders.items()):
            followers = [
                {"account": account, "enabled": enabled, "rule": rule_dict(rule)}
                for (gid, account), (rule, enabled) in sorted(self.rules.items())
                if gid == group_id
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

    def set_rule(self, group_id: str, account_id: str, body: schemas.FollowerRuleBody) -> dict[str, Any]:
        """The rule schema is the YAML's and the control records', so all three refuse alike."""
        if group_id not in self.leaders:
            raise HttpError(404, "no such copy group", id=group_id)
        if account_id not in self.accounts:
            raise HttpError(404, "no such account", id=account_id)
        if account_id == self.leaders[group_id]:
            raise HttpError(422, "invalid input", fields={"account": "a leader cannot follow itself"})
        rule = copy_rule(body.rule)
        self.rules[(group_id, account_id)] = (rule, body.enabled)
        add_follower(self.config, group_id, account_id, rule, body.enabled)
        return {"account": account_id, "enabled": body.enabled, "rule": rule_dict(rule)}


def _without_value(reason: str) -> str:
    """A refusal of a secret setting, without the value msgspec may quote (``got 'abc'``)."""
    return reason.split(", got", 1)[0]


def _login(credentials: schemas.Credentials | None) -> Login | None:
    if credentials is None:
        return None
    return Login(credentials.username or None, credentials.secret, dict(credentials.options))


def allowed_hosts(env: dict[str, str]) -> frozenset[str]:
    """``COPYTRADER_ENDPOINT_HOSTS``: comma-separated hosts an account endpoint may name
    (empty: any host)."""
    return frozenset(h.strip().lower() for h in env.get("COPYTRADER_ENDPOINT_HOSTS", "").split(",") if h.strip())

"""The records on ``copy.controls``: what the dashboard changes while the pipeline runs.

One compacted partition, three kinds of record, each keyed so that compaction keeps exactly the
current state: pause/resume (key = account or ``*``), a follower's copy rule in a group
(``rule:<group>:<account>``) and an account's definition (``account:<id>``). Records carry
state, never toggles, so replaying the topic from the beginning rebuilds the switches.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, TypeVar

import orjson

from ..brokers.base import SessionConfig
from ..common.crypto import CredentialCipher, CredentialKeyError, SecretStr
from . import schemas
from .config import Account, ConfigError, parse_rule
from .live_config import dashboard_session_id
from .scaling import CopyRule
from .schemas import SchemaError
from .schemas.guards import GuardsIn, GuardsRecord, is_guards_record
from .schemas.reconcile import ReconcileRecord, is_reconcile_record
from .schemas.tradingview import AlertTokenRecord

#: The ``copy.controls`` key that means every account (pause all copying).
ALL_ACCOUNTS = "*"
TOPIC = "copy.controls"
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class ControlCommand:
    """Pause or resume one follower (``account_id``) or all copying (``"*"``)."""

    command_id: str
    account_id: str
    paused: bool
    by: str = "system"
    at: float = 0.0

    def encode(self) -> bytes:
        return orjson.dumps(
            {
                "command_id": self.command_id,
                "account_id": self.account_id,
                "paused": self.paused,
                "by": self.by,
                "at": self.at or time.time(),
            }
        )

    @classmethod
    def decode(cls, raw: bytes) -> ControlCommand:
        """Raises ``ValueError`` naming the field on anything that is not a well-formed command."""
        return cls.from_record(_decode(raw, schemas.PauseRecord))

    @classmethod
    def from_record(cls, rec: schemas.PauseRecord) -> ControlCommand:
        return cls(rec.command_id, rec.account_id, rec.paused, rec.by, rec.at)


@dataclass(frozen=True, slots=True)
class RuleCommand:
    """Replace one follower's copy rule (and enabled flag) in one copy group.

    Same topic as pauses, key ``rule:<group>:<account>``: compaction keeps the latest rule per
    follower, so the topic is also where dashboard edits persist across restarts.
    """

    command_id: str
    group_id: str
    account_id: str
    rule: dict[str, Any]
    enabled: bool
    by: str = "system"
    at: float = 0.0

    @property
    def key(self) -> str:
        return f"rule:{self.group_id}:{self.account_id}"

    def encode(self) -> bytes:
        return orjson.dumps(
            {
                "kind": "rule",
                "command_id": self.command_id,
                "group_id": self.group_id,
                "account_id": self.account_id,
                "rule": self.rule,
                "enabled": self.enabled,
                "by": self.by,
                "at": self.at or time.time(),
            }
        )

    def parsed_rule(self) -> CopyRule:
        """Validated exactly as the YAML is; raises ``ValueError`` naming the field."""
        try:
            return parse_rule(self.rule, "rule")
        except ConfigError as exc:
            raise ValueError(str(exc)) from None


@dataclass(frozen=True, slots=True)
class AccountCommand:
    """An account as the dashboard defines it: platform, broker account, size, login.

    The login travels sealed (Fernet, ``storage.crypto``) with the key id, so the topic, its
    replicas and any consumer without the key see ciphertext only. ``session_id`` is the
    configured session the account keeps using, or its own dashboard session when it was
    added or re-pointed from the dashboard (then ``platform``/``endpoint``/``sealed`` define it).
    """

    command_id: str
    account_id: str
    platform: str
    broker_account: str
    size: str
    enabled: bool
    session_id: str
    endpoint: str | None = None
    sealed: str | None = None
    key_id: str | None = None
    by: str = "system"
    at: float = 0.0
    # Platform settings that are not secret (Tradovate's appId and cid, ...); secret ones
    # (Tradovate's API ``sec``) travel sealed with the login.
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return f"account:{self.account_id}"

    @property
    def own_session(self) -> bool:
        return self.session_id == dashboard_session_id(self.account_id)

    def encode(self) -> bytes:
        return orjson.dumps(
            {
                "kind": "account",
                "command_id": self.command_id,
                "account_id": self.account_id,
                "platform": self.platform,
                "broker_account": self.broker_account,
                "size": self.size,
                "enabled": self.enabled,
                "session_id": self.session_id,
                "endpoint": self.endpoint,
                "sealed": self.sealed,
                "key_id": self.key_id,
                "by": self.by,
                "at": self.at or time.time(),
                "options": self.options,
            }
        )

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> AccountCommand:
        """Validated by ``schemas.AccountRecord``; ``ValueError`` names the field."""
        try:
            rec = schemas.convert({"kind": "account", **data}, schemas.AccountRecord)
        except SchemaError as exc:
            raise ValueError(f"account command: {exc}") from None
        return cls.from_record(rec)

    @classmethod
    def from_record(cls, rec: schemas.AccountRecord) -> AccountCommand:
        return cls(
            rec.command_id,
            rec.account_id,
            rec.platform,
            rec.broker_account,
            str(rec.size),
            rec.enabled,
            rec.session_id,
            rec.endpoint,
            rec.sealed,
            rec.key_id,
            rec.by,
            rec.at,
            dict(rec.options),
        )

    def account(self) -> Account:
        return Account(self.account_id, self.session_id, self.platform, self.broker_account, Decimal(self.size))

    def routing_session(self) -> SessionConfig | None:
        """The account's own session without its login: enough for workers that route orders
        (platform, account names) but never connect, so they need no key."""
        if not self.own_session:
            return None
        return SessionConfig(self.platform, self.session_id, {}, self.endpoint, options=dict(self.options))

    def session(self, cipher: CredentialCipher | None) -> SessionConfig | None:
        """The account's own session with its login unsealed; None when it uses a configured one.

        Raises ``storage.crypto.CredentialKeyError`` when a login is sealed but ``cipher`` is
        missing or holds another key: a worker must not connect with a login it cannot read.
        """
        if not self.own_session:
            return None
        login = unseal_login(cipher, self.account_id, self.sealed, self.key_id)
        return SessionConfig(
            platform=self.platform,
            session_id=self.session_id,
            accounts={self.account_id: self.broker_account},
            endpoint=self.endpoint,
            username=login.username,
            secret=login.secret,
            options={**self.options, **login.options},
        )


@dataclass(frozen=True, slots=True)
class Login:
    """What a broker login needs that must stay secret: user, password or key, secret options."""

    username: str | None = None
    secret: str | None = field(default=None, repr=False)
    options: dict[str, str] = field(default_factory=dict, repr=False)


def seal_login(cipher: CredentialCipher, account_id: str, login: Login) -> str:
    """One Fernet token holding the login, bound to the account (a token moved to another
    account's record does not open)."""
    body = orjson.dumps({"username": login.username, "secret": login.secret, "options": login.options}).decode()
    return cipher.encrypt(f"account:{account_id}", body).decode()


def unseal_login(
    cipher: CredentialCipher | None, account_id: str, sealed: str | None, key_id: str | None = None
) -> Login:
    if sealed is None:
        return Login()
    if cipher is None:
        raise CredentialKeyError(
            f"account {account_id!r} has a stored login but no key is configured "
            "(COPYTRADER_SECRET_KEY or COPYTRADER_SECRET_KEY_FILE)"
        )
    opened: SecretStr = cipher.decrypt(f"account:{account_id}", sealed.encode(), key_id)
    body = orjson.loads(opened.reveal())
    return Login(body.get("username"), body.get("secret"), dict(body.get("options") or {}))


@dataclass(frozen=True, slots=True)
class AlertTokenCommand:
    """A TradingView alert URL's token for one copy group (key ``alert:<token_id>``).

    Only the token's SHA-256 digest is published: the token itself is shown once to the user
    who made it and is kept nowhere. Revoking publishes the same record with ``revoked``;
    compaction keeps the latest, so a revoked token stays revoked across restarts.
    """

    command_id: str
    token_id: str
    group_id: str
    digest: str
    revoked: bool = False
    label: str = ""
    ticker_map: dict[str, str] = field(default_factory=dict)
    per_minute: int = 30
    by: str = "system"
    at: float = 0.0

    @property
    def key(self) -> str:
        return f"alert:{self.token_id}"

    def encode(self) -> bytes:
        return orjson.dumps(
            {
                "kind": "alert_token",
                "command_id": self.command_id,
                "token_id": self.token_id,
                "group_id": self.group_id,
                "digest": self.digest,
                "revoked": self.revoked,
                "label": self.label,
                "ticker_map": self.ticker_map,
                "per_minute": self.per_minute,
                "by": self.by,
                "at": self.at or time.time(),
            }
        )

    @classmethod
    def from_record(cls, rec: AlertTokenRecord) -> AlertTokenCommand:
        return cls(
            rec.command_id,
            rec.token_id,
            rec.group_id,
            rec.digest,
            rec.revoked,
            rec.label,
            dict(rec.ticker_map),
            rec.per_minute,
            rec.by,
            rec.at,
        )


@dataclass(frozen=True, slots=True)
class ReconcileCommand:
    """Reconcile one follower (``account_id``) or every follower (``"*"``) now.

    A request, not state: workers act only on requests that arrive while they follow the topic
    (a replay at start skips old ones; a starting worker reconciles on connect anyway). Key
    ``reconcile:<account>``, so compaction keeps one per account.
    """

    command_id: str
    account_id: str
    by: str = "system"
    at: float = 0.0

    @property
    def key(self) -> str:
        return f"reconcile:{self.account_id}"

    def encode(self) -> bytes:
        return orjson.dumps(
            {
                "kind": "reconcile",
                "command_id": self.command_id,
                "account_id": self.account_id,
                "by": self.by,
                "at": self.at or time.time(),
            }
        )


@dataclass(frozen=True, slots=True)
class GuardsCommand:
    """One follower's risk guards as the dashboard set them (key ``guards:<account>``).

    State, not a change: ``guards`` is the whole set (``None``: no rules), so the latest record
    per account is the rule in force and a replay after a restart rebuilds it. It overrides
    the YAML's guards for that account in every executor and web worker.
    """

    command_id: str
    account_id: str
    guards: GuardsIn | None
    by: str = "system"
    at: float = 0.0

    @property
    def key(self) -> str:
        return f"guards:{self.account_id}"

    def encode(self) -> bytes:
        return orjson.dumps(
            schemas.to_builtins(
                GuardsRecord(
                    kind="guards",
                    account_id=self.account_id,
                    guards=self.guards,
                    command_id=self.command_id,
                    by=self.by,
                    at=self.at or time.time(),
                )
            )
        )


_LABELS: dict[type, str] = {
    schemas.PauseRecord: "control command",
    schemas.RuleRecord: "rule command",
    schemas.AccountRecord: "account command",
    AlertTokenRecord: "alert token",
    ReconcileRecord: "reconcile request",
    GuardsRecord: "guards record",
}


def _decode(raw: bytes, schema: type[T]) -> T:
    try:
        return schemas.decode(raw, schema)
    except SchemaError as exc:
        raise ValueError(f"{_LABELS.get(schema, 'control record')}: {exc}") from None


def decode_command(
    raw: bytes,
) -> ControlCommand | RuleCommand | AccountCommand | AlertTokenCommand | ReconcileCommand | GuardsCommand:
    """Any kind of record on ``copy.controls``, through its schema (``schemas.controls``);
    ``ValueError`` naming the field for anything malformed, so a replay skips it and goes on."""
    try:
        kind = schemas.record_type(raw)
    except SchemaError as exc:
        raise ValueError(f"control record: {exc}") from None
    if kind is schemas.AccountRecord:
        return AccountCommand.from_record(_decode(raw, schemas.AccountRecord))
    if kind is AlertTokenRecord:
        return AlertTokenCommand.from_record(_decode(raw, AlertTokenRecord))
    if kind is schemas.RuleRecord:
        rec = _decode(raw, schemas.RuleRecord)
        rule = schemas.to_builtins(rec.rule)
        return RuleCommand(rec.command_id, rec.group_id, rec.account_id, rule, rec.enabled, rec.by, rec.at)
    if is_guards_record(raw):
        guards = _decode(raw, GuardsRecord)
        return GuardsCommand(guards.command_id, guards.account_id, guards.guards, guards.by, guards.at)
    if is_reconcile_record(raw):
        asked = _decode(raw, ReconcileRecord)
        return ReconcileCommand(asked.command_id, asked.account_id, asked.by, asked.at)
    return ControlCommand.from_record(_decode(raw, schemas.PauseRecord))

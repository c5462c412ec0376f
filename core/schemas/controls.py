"""The three kinds of record on ``copy.controls``. Every fan-out, executor and web worker
replays the topic; a record these refuse is reported and skipped, never applied half-way.

Unknown fields are ignored (a newer worker may add some), but every known field is strict.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Literal

import msgspec

from ...common import bounds as b
from .config import RuleIn, check_size
from .types import Id, NonEmptyText, Options, Text, Time, Url

Sealed = Annotated[str, msgspec.Meta(max_length=4 * b.MAX_SECRET_LEN + 1024)]


class _Kind(msgspec.Struct):
    kind: Text = ""


class _Provenance(msgspec.Struct, kw_only=True):
    """Who sent a control record, and when: the same three fields on every kind."""

    command_id: Text = ""
    by: Text = ""
    at: Time = 0.0


class PauseRecord(_Provenance, kw_only=True):
    account_id: Id
    paused: bool


class RuleRecord(_Provenance, kw_only=True):
    kind: Literal["rule"]
    group_id: Id
    account_id: Id
    rule: RuleIn
    enabled: bool


class AccountRecord(_Provenance, kw_only=True):
    kind: Literal["account"]
    account_id: Id
    platform: Id
    broker_account: NonEmptyText
    size: Decimal
    enabled: bool
    session_id: Annotated[str, msgspec.Meta(min_length=1, max_length=2 * b.MAX_ID_LEN)]
    endpoint: Url | None = None
    sealed: Sealed | None = None
    key_id: Text | None = None
    options: Options = msgspec.field(default_factory=dict)

    def __post_init__(self) -> None:
        check_size(self.size)
        if self.endpoint is not None:
            try:
                b.check_endpoint(self.endpoint)
            except b.BoundError as exc:
                raise ValueError(f"endpoint: {exc}") from None


def record_type(raw: bytes) -> type[msgspec.Struct]:
    """Which schema a raw record follows (its ``kind``; none means pause/resume)."""
    from ...common.schema_codec import decode
    from .tradingview import AlertTokenRecord

    kind = decode(raw, _Kind).kind
    if kind == "alert_token":
        return AlertTokenRecord
    if kind == "rule":
        return RuleRecord
    if kind == "account":
        return AccountRecord
    return PauseRecord

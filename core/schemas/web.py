"""Bodies of the REST API's write routes (``web/openapi.yaml`` is checked against these)."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

import msgspec

from ...common import bounds as b
from .config import RuleIn, check_size
from .guards import GuardsIn
from .signal import SignalIn
from .tradingview import AlertTokenBody, TradingViewAlertIn
from .types import Id, NonEmptyText, Options, Secret, SecretOptions, Text, Url

AccountId = Annotated[str, msgspec.Meta(min_length=1, max_length=b.MAX_ID_LEN, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")]
Unset = msgspec.UnsetType
UNSET = msgspec.UNSET


class Credentials(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """A broker login; sealed the moment it arrives and never shown again."""

    secret: Secret
    username: Text | None = None
    options: SecretOptions = msgspec.field(default_factory=dict)


def _size(size: Decimal | None | Unset) -> None:
    if isinstance(size, Decimal):
        check_size(size)


class AccountCreate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """``POST /api/accounts``. The endpoint's URL form is checked by the registry, which
    knows the host allow-list (``COPYTRADER_ENDPOINT_HOSTS``)."""

    id: AccountId
    platform: Id
    broker_account: NonEmptyText
    size: Decimal = Decimal(50000)
    enabled: bool = True
    endpoint: Url | None = None
    options: Options = msgspec.field(default_factory=dict)
    credentials: Credentials | None = None

    def __post_init__(self) -> None:
        _size(self.size)


class AccountPatch(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """``PATCH /api/accounts/{id}``: only the fields present change."""

    platform: Id | Unset = UNSET
    broker_account: NonEmptyText | Unset = UNSET
    size: Decimal | Unset = UNSET
    enabled: bool | Unset = UNSET
    endpoint: Url | None | Unset = UNSET
    options: Options | Unset = UNSET
    credentials: Credentials | Unset = UNSET

    def __post_init__(self) -> None:
        _size(self.size)


class FollowerRuleBody(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """``PUT /api/copy-groups/{group}/followers/{account}``."""

    rule: RuleIn
    enabled: bool = True


class ControlTarget(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """``POST /api/controls/{pause,resume,flatten}``: one account, or ``*`` for all."""

    account_id: Id


class LoginBody(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """``POST /api/session``; ``next`` is where the page wants to go (kept on this site)."""

    username: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
    password: Annotated[str, msgspec.Meta(min_length=1, max_length=256)]
    next: Annotated[str, msgspec.Meta(max_length=b.MAX_URL_LEN)] | None = None


# Every write route's body schema; ``web.openapi`` puts them in the served OpenAPI document.
WRITE_BODIES: dict[tuple[str, str], type[msgspec.Struct]] = {
    ("post", "/api/session"): LoginBody,
    ("post", "/api/accounts"): AccountCreate,
    ("patch", "/api/accounts/{account_id}"): AccountPatch,
    ("put", "/api/copy-groups/{group_id}/followers/{account_id}"): FollowerRuleBody,
    ("post", "/api/controls/pause"): ControlTarget,
    ("post", "/api/controls/resume"): ControlTarget,
    ("post", "/api/controls/flatten"): ControlTarget,
    ("post", "/api/signals"): SignalIn,
    ("post", "/api/copy-groups/{group_id}/alert-tokens"): AlertTokenBody,
    ("post", "/hooks/tradingview/{group_id}/{token}"): TradingViewAlertIn,
    ("put", "/api/guards/{account_id}"): GuardsIn,
}

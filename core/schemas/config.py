"""Copy rules and the YAML configuration file: the same rule schema serves the file, the
REST API and the ``copy.controls`` rule records, so a rule refused in one is refused in all."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Annotated, Literal

import msgspec

from ...brokers.dxlink.options import FeedSymbol
from ...common import bounds as b
from .guards import GuardsIn
from .notifications import Notifications
from .reconcile import ReconcileIn
from .types import (
    ConfigOptions,
    Id,
    PositiveQuantity,
    Quantity,
    ScalingMode,
    SymbolRoot,
    Text,
    Url,
)

EnvName = Annotated[str, msgspec.Meta(min_length=1, max_length=128, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")]
SymbolMap = Annotated[dict[SymbolRoot, SymbolRoot], msgspec.Meta(max_length=b.MAX_SYMBOL_MAP)]
# A band wider than this many ticks protects nothing (ES: 250 points); a wider typo is refused.
MAX_PRICE_BAND_TICKS = 1000
PriceBandTicks = Annotated[int, msgspec.Meta(ge=0, le=MAX_PRICE_BAND_TICKS)]
# A copy older than this is netted instead of placed (docs/stale-copies.md). Below half a second
# a busy broker would net nearly every copy; an hour protects nothing.
StaleCopySeconds = Annotated[float, msgspec.Meta(ge=0.5, le=3600.0)]


class RuleIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """One follower's scaling rule (``app.scaling.CopyRule`` once validated)."""

    mode: ScalingMode = "multiplier"
    quantity: PositiveQuantity = 1
    # A number or a decimal string ("0.5"): the dashboard and the control records send strings.
    multiplier: Decimal = Decimal(1)
    max_quantity: PositiveQuantity | None = None
    min_quantity: Quantity = 1
    symbol_map: SymbolMap = msgspec.field(default_factory=dict)
    inverse: bool = False
    # Price protection (agents/fanout/price_band.py): a leader's market order becomes a limit
    # this many ticks through the touch; None leaves market orders alone. ``on_no_quote``: what
    # to do without a fresh quote (place the market order with a warning, or skip the copy).
    price_band_ticks: PriceBandTicks | None = None
    on_no_quote: Literal["market", "skip"] = "market"

    def __post_init__(self) -> None:
        try:
            b.check_decimal(self.multiplier, maximum=b.MAX_MULTIPLIER)
        except b.BoundError as exc:
            raise ValueError(f"multiplier: {exc}") from None


def check_size(size: Decimal) -> None:
    try:
        b.check_decimal(size, maximum=b.MAX_ACCOUNT_SIZE, what="size")
    except b.BoundError as exc:
        raise ValueError(f"size: {exc}") from None


class SessionIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    id: Id
    platform: Id
    endpoint: Url | None = None
    username: Text | None = None
    secret_env: EnvName | None = None
    options: ConfigOptions = msgspec.field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.endpoint is not None:
            try:
                b.check_endpoint(self.endpoint)
            except b.BoundError as exc:
                raise ValueError(f"endpoint: {exc}") from None


class AccountIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    id: Id
    session: Id
    broker_account: Id | None = None
    size: Decimal = Decimal(50000)

    def __post_init__(self) -> None:
        check_size(self.size)


class FollowerIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    account: Id
    rule: RuleIn | None = None
    enabled: bool = True
    guards: GuardsIn | None = None  # risk guards (core/guards.py); over the group's defaults


# Shorter than a broker's ack is a false alarm; longer than a minute protects nothing.
ProtectiveStopSeconds = Annotated[float, msgspec.Meta(ge=0.1, le=60.0)]


class GroupIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    leader: Id
    id: Id | None = None
    followers: Annotated[list[FollowerIn], msgspec.Meta(max_length=b.MAX_CONFIG_ITEMS)] | None = None
    enabled: bool = True
    guards: GuardsIn | None = None  # every follower's default guards
    auto_correct: bool = False  # reconciliation may place/cancel to fix drift (default: report only)
    # How long a follower may hold a position without the leader's protective stop before the
    # executor places it again or flattens (agents/execution/protective.py); null: not watched.
    protective_stop_s: ProtectiveStopSeconds | None = 2.0
    stale_copy_s: StaleCopySeconds = 5.0  # a copy this old is netted, not placed (docs/stale-copies.md)


# A quote older than an hour protects nothing; a tenth of a second is finer than any feed needs.
QuoteAge = Annotated[float, msgspec.Meta(ge=0.1, le=3600.0)]


class MarketDataIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """The price source (``market_data:``): where to connect, the token's environment variable,
    and our symbol → the feed's symbol (``ESZ6: /ESZ26:XCME``)."""

    platform: Literal["dxlink"]
    endpoint: Url
    token_env: EnvName | None = None
    symbols: Annotated[dict[str, FeedSymbol], msgspec.Meta(min_length=1, max_length=b.MAX_SYMBOL_MAP)]
    max_age_s: QuoteAge = 5.0

    def __post_init__(self) -> None:
        try:
            b.check_endpoint(self.endpoint)
        except b.BoundError as exc:
            raise ValueError(f"endpoint: {exc}") from None
        if not self.endpoint.lower().startswith(("ws://", "wss://")):
            raise ValueError("endpoint: must be a ws/wss URL (dxLink is a WebSocket protocol)")
        # Keys checked here, not by type: msgspec reports a bad key without the field's path.
        for ours in self.symbols:
            if len(ours) > b.MAX_SYMBOL_LEN or not re.fullmatch(b.SYMBOL_PATTERN, ours):
                raise ValueError(f"symbols: {ours[:40]!r} is not a symbol")


class ConfigIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """The whole file. Cross-references (a follower's account exists, ids are unique, a
    platform is known) are checked by ``app.config``, which knows the adapters."""

    sessions: Annotated[list[SessionIn], msgspec.Meta(max_length=b.MAX_CONFIG_ITEMS)] | None = None
    accounts: Annotated[list[AccountIn], msgspec.Meta(max_length=b.MAX_CONFIG_ITEMS)] | None = None
    copy_groups: Annotated[list[GroupIn], msgspec.Meta(max_length=b.MAX_CONFIG_ITEMS)] | None = None
    notifications: Notifications | None = None
    market_data: MarketDataIn | None = None
    reconcile: ReconcileIn | None = None

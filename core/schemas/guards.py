"""Risk guards per follower (prop-firm rules), as the YAML config gives them.

Strict like every door: a rule, a schedule or a time zone that does not parse is refused with
the field's path (``copy_groups[0].followers[3].guards.window.tz: unknown time zone
'Mars/Base'``). Money is a finite positive ``Decimal`` within ``MAX_GUARD_MONEY``; every count
has a bound. ``core.guards`` turns a validated ``GuardsIn`` into the rules the executor checks.

The dashboard's edits (``PUT /api/guards/{account}``) and their ``copy.controls`` record
(:class:`GuardsRecord`) go through the same ``GuardsIn``, so the three doors refuse alike.
"""

from __future__ import annotations

import zoneinfo
from decimal import Decimal
from typing import Annotated, Literal

import msgspec

from ...common import bounds as b
from .types import Id, PositiveQuantity, Text, Time

#: A loss or drawdown limit above a billion in the account currency is a typo, not a rule.
MAX_GUARD_MONEY = Decimal(10) ** 9
#: More than this many orders a minute is no limit at all for one account.
MAX_ORDERS_PER_MINUTE = 10_000
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")

Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
# Wall-clock time in the guard's time zone, 24-hour ``HH:MM``.
ClockTime = Annotated[str, msgspec.Meta(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")]
TimeZoneName = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
OnBreach = Literal["block", "flatten_and_pause"]


def check_time_zone(name: str | None) -> None:
    """An IANA name that ``zoneinfo`` knows (``America/Chicago``); refused otherwise, with the name."""
    if name is None:
        return
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"tz: unknown time zone {name[:64]!r}") from None


def check_money(value: Decimal, field: str) -> None:
    try:
        b.check_decimal(value, maximum=MAX_GUARD_MONEY, what="amount")
    except b.BoundError as exc:
        raise ValueError(f"{field}: {exc}") from None


class WindowIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """When entries may be copied: ``start``–``end`` local time on ``days``.

    A window whose end is before its start crosses midnight (``17:00``–``16:00``, CME Globex);
    ``days`` are the days on which the window *opens*. ``tz`` defaults to the guards' ``tz``.
    """

    start: ClockTime
    end: ClockTime
    days: Annotated[list[Weekday], msgspec.Meta(min_length=1, max_length=7)] = msgspec.field(
        default_factory=lambda: ["mon", "tue", "wed", "thu", "fri"]
    )
    tz: TimeZoneName | None = None

    def __post_init__(self) -> None:
        check_time_zone(self.tz)
        if self.start == self.end:
            raise ValueError("end: must differ from start (an empty window would block every entry)")


class DailyLossIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Realised plus unrealised loss since the trading day began (``day_starts`` in ``tz``)."""

    limit: Decimal
    on_breach: OnBreach = "flatten_and_pause"

    def __post_init__(self) -> None:
        check_money(self.limit, "limit")


class TrailingDrawdownIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Equity may not fall ``limit`` below its peak.

    ``basis``: ``intraday`` trails every new high of realised + unrealised P&L (Apex-style);
    ``end_of_day`` trails only the equity at each trading day's close (Topstep-style).
    ``stop_trailing_at``: the peak stops rising at this profit (the threshold then stays at
    ``stop_trailing_at - limit``, as prop firms lock it at the starting balance).
    """

    limit: Decimal
    basis: Literal["intraday", "end_of_day"] = "intraday"
    stop_trailing_at: Decimal | None = None
    on_breach: OnBreach = "flatten_and_pause"

    def __post_init__(self) -> None:
        check_money(self.limit, "limit")
        if self.stop_trailing_at is not None:
            check_money(self.stop_trailing_at, "stop_trailing_at")


class GuardsIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """A follower's guards (or a copy group's defaults: a follower's own fields win).

    Every field is optional; an unset one is no rule. ``tz`` and ``day_starts`` say when the
    trading day turns over for the daily loss (``17:00`` ``America/Chicago`` for CME futures).
    """

    max_contracts_per_symbol: PositiveQuantity | None = None
    max_contracts_total: PositiveQuantity | None = None
    max_orders_per_minute: Annotated[int, msgspec.Meta(ge=1, le=MAX_ORDERS_PER_MINUTE)] | None = None
    daily_loss: DailyLossIn | None = None
    trailing_drawdown: TrailingDrawdownIn | None = None
    window: WindowIn | None = None
    tz: TimeZoneName | None = None
    day_starts: ClockTime | None = None

    def __post_init__(self) -> None:
        check_time_zone(self.tz)


class _Kind(msgspec.Struct):
    kind: str = ""


class GuardsRecord(msgspec.Struct, kw_only=True):
    """A follower's guards as the dashboard set them, on ``copy.controls`` (key
    ``guards:<account>``): the whole set, not a change, so compaction keeps the current rules
    and a replay rebuilds them. ``guards: null`` (or ``{}``) means no rules. Unknown top-level
    fields are ignored like on every control record; the rules themselves are strict."""

    kind: Literal["guards"]
    account_id: Id
    guards: GuardsIn | None = None
    command_id: Text = ""
    by: Text = ""
    at: Time = 0.0


def is_guards_record(raw: bytes) -> bool:
    """Whether a ``copy.controls`` record is a guards record (any decode error: no)."""
    try:
        return msgspec.json.decode(raw, type=_Kind).kind == "guards"
    except (msgspec.DecodeError, msgspec.ValidationError):
        return False

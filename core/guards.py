"""Risk guards per follower: the rules, as the executor checks them (prop-firm limits).

Built once from the validated schema (``schemas.guards.GuardsIn``); pure data plus the two
time questions the rules ask: is the trading window open now, and which trading day is it.
Times are wall-clock times in an IANA zone (``zoneinfo``), so a window or a day that starts
at 17:00 Chicago time stays at 17:00 across daylight-saving changes. The running state (what
the account holds, its P&L, its peak) lives in ``core.guard_state``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from .schemas.guards import WEEKDAYS, GuardsIn

UTC_NAME = "UTC"

# Reason codes on ``order.errors`` (agents/notify turns every ``GUARD_*`` into an alert).
MAX_CONTRACTS = "GUARD_MAX_CONTRACTS"
MAX_CONTRACTS_TOTAL = "GUARD_MAX_CONTRACTS_TOTAL"
ORDER_RATE = "GUARD_ORDER_RATE"
WINDOW = "GUARD_WINDOW"
DAILY_LOSS = "GUARD_DAILY_LOSS"
DRAWDOWN = "GUARD_DRAWDOWN"
NO_MARK = "GUARD_NO_MARK"
#: The saved figures (the day's realised P&L, the drawdown's peak) did not read back at start.
STATE_LOST = "GUARD_STATE_LOST"


def _clock(text: str) -> time:
    hours, minutes = text.split(":")
    return time(int(hours), int(minutes))


@dataclass(frozen=True, slots=True)
class TradingWindow:
    """Entries allowed from ``start`` to ``end`` local time on the weekdays it opens (0 = Monday)."""

    start: time
    end: time
    days: frozenset[int]
    tz: ZoneInfo

    def is_open(self, now: datetime) -> bool:
        local = now.astimezone(self.tz)
        at = local.time().replace(tzinfo=None)
        weekday = local.weekday()
        if self.start < self.end:
            return weekday in self.days and self.start <= at < self.end
        # Crosses midnight: the evening part belongs to today, the morning part to yesterday.
        if at >= self.start:
            return weekday in self.days
        return at < self.end and (weekday - 1) % 7 in self.days

    def describe(self) -> str:
        names = ",".join(WEEKDAYS[d] for d in sorted(self.days))
        return f"{self.start:%H:%M}-{self.end:%H:%M} {names} {self.tz.key}"


@dataclass(frozen=True, slots=True)
class LossRule:
    limit: Decimal
    on_breach: str  # "block" | "flatten_and_pause"

    @property
    def flattens(self) -> bool:
        return self.on_breach == "flatten_and_pause"


@dataclass(frozen=True, slots=True)
class DrawdownRule(LossRule):
    basis: str = "intraday"  # or "end_of_day"
    stop_trailing_at: Decimal | None = None


@dataclass(frozen=True, slots=True)
class GuardRules:
    """One follower account's guards; ``None`` fields are no rule."""

    max_contracts_per_symbol: int | None = None
    max_contracts_total: int | None = None
    max_orders_per_minute: int | None = None
    daily_loss: LossRule | None = None
    trailing_drawdown: DrawdownRule | None = None
    window: TradingWindow | None = None
    tz: ZoneInfo = ZoneInfo(UTC_NAME)
    day_starts: time = time(0, 0)

    @property
    def needs_marks(self) -> bool:
        """Loss and drawdown rules count unrealised P&L, which needs market prices."""
        return self.daily_loss is not None or self.trailing_drawdown is not None

    def trading_day(self, now: datetime) -> date:
        """The trading day ``now`` belongs to: a day starting at 17:00 is named after the
        calendar day it mostly covers (Sunday 17:00 Chicago begins Monday's day)."""
        local = now.astimezone(self.tz).replace(tzinfo=None)
        start = timedelta(hours=self.day_starts.hour, minutes=self.day_starts.minute)
        return (local - start + (timedelta(days=1) if start else timedelta(0))).date()

    def next_day_start(self, now: datetime) -> datetime:
        """When the trading day after ``now``'s begins (so the day is recomputed only then)."""
        local = now.astimezone(self.tz)
        start = local.replace(hour=self.day_starts.hour, minute=self.day_starts.minute, second=0, microsecond=0)
        return start if start > local else start + timedelta(days=1)

    def describe(self) -> list[str]:
        """One short line per rule, as the dashboard lists them."""
        lines = []
        if self.max_contracts_per_symbol is not None:
            lines.append(f"max {self.max_contracts_per_symbol} contracts per symbol")
        if self.max_contracts_total is not None:
            lines.append(f"max {self.max_contracts_total} contracts in total")
        if self.max_orders_per_minute is not None:
            lines.append(f"max {self.max_orders_per_minute} orders a minute")
        if self.daily_loss is not None:
            lines.append(f"daily loss {self.daily_loss.limit} ({self.daily_loss.on_breach})")
        if self.trailing_drawdown is not None:
            rule = self.trailing_drawdown
            lines.append(f"trailing drawdown {rule.limit} {rule.basis} ({rule.on_breach})")
        if self.window is not None:
            lines.append(f"window {self.window.describe()}")
        return lines


def merge(group: GuardsIn | None, follower: GuardsIn | None) -> GuardsIn | None:
    """A copy group's defaults under a follower's own guards: the follower's set fields win."""
    if group is None or follower is None:
        return follower or group
    fields = {name: getattr(follower, name) for name in GuardsIn.__struct_fields__}
    for name, value in fields.items():
        if value is None:
            fields[name] = getattr(group, name)
    return GuardsIn(**fields)


def build(raw: GuardsIn) -> GuardRules:
    """A validated ``GuardsIn`` → :class:`GuardRules` (time zones resolved once, here)."""
    tz = ZoneInfo(raw.tz or UTC_NAME)
    window = None
    if raw.window is not None:
        w = raw.window
        window = TradingWindow(
            _clock(w.start), _clock(w.end), frozenset(WEEKDAYS.index(d) for d in w.days), ZoneInfo(w.tz) if w.tz else tz
        )
    daily = raw.daily_loss
    drawdown = raw.trailing_drawdown
    return GuardRules(
        max_contracts_per_symbol=raw.max_contracts_per_symbol,
        max_contracts_total=raw.max_contracts_total,
        max_orders_per_minute=raw.max_orders_per_minute,
        daily_loss=LossRule(daily.limit, daily.on_breach) if daily else None,
        trailing_drawdown=(
            DrawdownRule(drawdown.limit, drawdown.on_breach, drawdown.basis, drawdown.stop_trailing_at)
            if drawdown
            else None
        ),
        window=window,
        tz=tz,
        day_starts=_clock(raw.day_starts or "00:00"),
    )

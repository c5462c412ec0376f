"""One follower account's standing against its guards, and the check before each order.

Why in memory and synchronous: the check runs in the account's executor lane right before the
broker call, for every copy, so it must cost microseconds (no I/O, no lock, no await). The
facts it needs arrive on the same event loop: the executor tells it each order it sends and
each outcome, the fill pump each fill and cancel. Nothing else writes it.

What counts:

* **Exposure** of a symbol is the worst case the account can reach: its net position plus
  every working order on the side being added to (a resting limit may fill). An order is
  *reducing* when it is opposite to the position and no larger than it; reducing orders,
  cancels and flattens are never refused, by any rule.
* **P&L** uses average-cost arithmetic (``brokers.positions``, the same as the tracker):
  realised from fills, unrealised from the mark the caller supplies (the executor uses the
  fresh touch the position would close at: bid for a long, ask for a short). Without a fresh
  mark for an open position the loss is *unknown*: entries are refused (``GUARD_NO_MARK``),
  exits still pass, and an unknown figure never triggers a flatten by itself.
* **Trailing drawdown** is measured on equity since this worker started tracking the account
  (realised since then plus unrealised). ``intraday`` raises the peak with every evaluation;
  ``end_of_day`` raises it only when the trading day turns over.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from decimal import Decimal

from ..brokers.instruments import instrument_for
from ..brokers.model import Side
from ..brokers.positions import apply_fill
from . import guards as g
from .config import CopyConfig
from .quotes import QuoteBook

#: symbol, signed net position → the price that position is marked at, or None (no fresh quote).
Marks = Callable[[str, int], Decimal | None]
RATE_WINDOW_S = 60.0
#: Client ids whose fills were counted before their order was registered (a fill can beat the ack).
MAX_EARLY_FILLS = 1024


@dataclass(frozen=True, slots=True)
class Refusal:
    code: str
    message: str
    breach: bool = False  # a loss/drawdown limit was reached: the executor may flatten and pause
    flatten: bool = False
    first: bool = False  # the breach was found just now: act on it (once)


@dataclass(slots=True)
class Holding:
    net: int = 0
    average: Decimal | None = None
    point_value: Decimal | None = None  # None: an instrument we do not know (never marked)


@dataclass(slots=True)
class Working:
    symbol: str
    direction: int  # +1 buy, -1 sell
    remaining: int


@dataclass(frozen=True, slots=True)
class Figures:
    """The loss figures now; ``None`` when an open position has no fresh mark."""

    day_pnl: Decimal | None
    equity: Decimal | None
    peak: Decimal
    unmarked: str | None = None  # the symbol without a fresh mark


class AccountGuard:
    def __init__(
        self, account_id: str, rules: g.GuardRules, marks: Marks, monotonic: Callable[[], float] = time.monotonic
    ) -> None:
        self.account_id = account_id
        self.rules = rules
        self.marks = marks
        self._monotonic = monotonic
        self.holdings: dict[str, Holding] = {}
        self.working: dict[str, Working] = {}
        self._working_sums: dict[tuple[str, int], int] = {}  # (symbol, ±1) → remaining, summed
        self._early_fills: dict[str, int] = {}
        self.realised_today = Decimal(0)
        self.realised_total = Decimal(0)
        self.peak = Decimal(0)
        self.last_equity = Decimal(0)
        self.day: date | None = None
        self._next_day = datetime.min.replace(tzinfo=UTC)
        self.sent_at: deque[float] = deque()
        self.breached: dict[str, Refusal] = {}  # rule code → the breach, until it clears
        self.fills_seen = 0

    # -- the check, on the copy path --------------------------------------------------------
    def check(
        self, action: str, symbol: str, side: str, quantity: int, target: str | None, now: datetime
    ) -> Refusal | None:
        """None when the order may go; else the rule it breaks, with the numbers."""
        self._roll(now)
        if action in ("cancel", "flatten"):
            return None
        direction = 1 if side == "buy" else -1
        if action == "modify":
            order = self.working.get(target or "")
            quantity -= order.remaining if order is not None else 0
            if quantity <= 0:
                return None  # a price change or a smaller order adds nothing
        holding = self.holdings.get(symbol)
        if holding is not None and holding.net * direction < 0 and quantity <= abs(holding.net):
            return None  # reducing: exits are never blocked
        rules = self.rules
        if rules.max_orders_per_minute is not None:
            self._forget_old()
            if len(self.sent_at) >= rules.max_orders_per_minute:
                return Refusal(
                    g.ORDER_RATE,
                    f"max {rules.max_orders_per_minute} orders a minute: {len(self.sent_at)} sent in the last minute",
                )
        if rules.window is not None and not rules.window.is_open(now):
            local = now.astimezone(rules.window.tz)
            return Refusal(g.WINDOW, f"outside trading window {rules.window.describe()} (now {local:%a %H:%M})")
        for breach in self.breached.values():
            return breach
        if rules.needs_marks:
            refusal = self._loss_refusal(self.figures(now))
            if refusal is not None and refusal.breach:  # none was in force: this is the first
                self.breached[refusal.code] = refusal
                return replace(refusal, first=True)
            if refusal is not None:
                return refusal
        return self._exposure_refusal(symbol, direction, quantity)

    def _exposure_refusal(self, symbol: str, direction: int, quantity: int) -> Refusal | None:
        rules = self.rules
        if rules.max_contracts_per_symbol is None and rules.max_contracts_total is None:
            return None
        holding = self.holdings.get(symbol)
        net = holding.net if holding is not None else 0
        working = self._working_on(symbol, direction)
        after = abs(net + direction * (working + quantity))
        limit = rules.max_contracts_per_symbol
        if limit is not None and after > limit:
            return Refusal(
                g.MAX_CONTRACTS,
                f"max {limit} contracts per symbol: {symbol} holds {net:+d}, working {working}, "
                f"requested {quantity} (would be {after})",
            )
        limit = rules.max_contracts_total
        if limit is not None:
            others = sum(self._worst(s) for s in {*self.holdings, *(s for s, _ in self._working_sums)} - {symbol})
            total = others + max(after, self._worst(symbol))
            if total > limit:
                return Refusal(
                    g.MAX_CONTRACTS_TOTAL,
                    f"max {limit} contracts in total: {others + self._worst(symbol)} held or working, "
                    f"requested {quantity} {symbol} (would be {total})",
                )
        return None

    def _loss_refusal(self, figures: Figures) -> Refusal | None:
        if figures.unmarked is not None:
            return Refusal(
                g.NO_MARK, f"no fresh price for open position {figures.unmarked}: loss unknown, entries refused"
            )
        return self._breach(figures)

    def _breach(self, figures: Figures) -> Refusal | None:
        """The first loss limit reached that is not already in force (both can be)."""
        rules = self.rules
        if rules.daily_loss is not None and figures.day_pnl is not None and g.DAILY_LOSS not in self.breached:
            loss, limit = -figures.day_pnl, rules.daily_loss.limit
            if loss >= limit:
                return Refusal(
                    g.DAILY_LOSS,
                    f"daily loss {_money(loss)}/{_money(limit)} (realised {_money(self.realised_today)}, "
                    f"unrealised {_money(figures.day_pnl - self.realised_today)})",
                    breach=True,
                    flatten=rules.daily_loss.flattens,
                )
        if rules.trailing_drawdown is not None and figures.equity is not None and g.DRAWDOWN not in self.breached:
            rule = rules.trailing_drawdown
            drawdown = figures.peak - figures.equity
            if drawdown >= rule.limit:
                return Refusal(
                    g.DRAWDOWN,
                    f"trailing drawdown {_money(drawdown)}/{_money(rule.limit)} ({rule.basis}: peak "
                    f"{_money(figures.peak)}, equity {_money(figures.equity)})",
                    breach=True,
                    flatten=rule.flattens,
                )
        return None

    # -- figures -------------------------------------------------------------------------
    def figures(self, now: datetime) -> Figures:
        """Day P&L and equity now; the intraday peak follows equity as it is measured."""
        self._roll(now)
        unrealised = Decimal(0)
        for symbol, holding in self.holdings.items():
            if holding.net == 0 or holding.average is None:
                continue
            mark = self.marks(symbol, holding.net) if holding.point_value is not None else None
            if mark is None or holding.point_value is None:
                return Figures(None, None, self.peak, unmarked=symbol)
            unrealised += (mark - holding.average) * holding.net * holding.point_value
        equity = self.realised_total + unrealised
        self.last_equity = equity
        rule = self.rules.trailing_drawdown
        if rule is not None and rule.basis == "intraday":
            self._raise_peak(equity)
        return Figures(self.realised_today + unrealised, equity, self.peak)

    def evaluate(self, now: datetime) -> Refusal | None:
        """A loss or drawdown limit newly reached (the monitor and each fill ask); recorded so
        it is acted on once, and refused from then on until the day turns over."""
        if not self.rules.needs_marks:
            return None
        self._roll(now)
        breach = self._breach(self.figures(now))
        if breach is None or breach.code in self.breached:
            return None
        self.breached[breach.code] = breach
        return replace(breach, first=True)

    def standing(self, now: datetime) -> list[str]:
        """Where the account stands against each rule, one short line each (the dashboard)."""
        rules, lines = self.rules, []
        symbols = sorted({*self.holdings, *(s for s, _ in self._working_sums)})
        if rules.max_contracts_per_symbol is not None:
            limit = rules.max_contracts_per_symbol
            lines += [f"{s} {self._worst(s)}/{limit}" for s in symbols if self._worst(s)]
        if rules.max_contracts_total is not None:
            lines.append(f"total {sum(self._worst(s) for s in symbols)}/{rules.max_contracts_total}")
        if rules.max_orders_per_minute is not None:
            self._forget_old()
            lines.append(f"orders {len(self.sent_at)}/{rules.max_orders_per_minute} a minute")
        if rules.needs_marks:
            figures = self.figures(now)
            if figures.unmarked is not None:
                lines.append(f"loss unknown (no fresh price for {figures.unmarked})")
            if rules.daily_loss is not None and figures.day_pnl is not None:
                lines.append(f"daily loss {_money(max(-figures.day_pnl, Decimal(0)))}/{_money(rules.daily_loss.limit)}")
            if rules.trailing_drawdown is not None and figures.equity is not None:
                drawdown = figures.peak - figures.equity
                lines.append(f"drawdown {_money(max(drawdown, Decimal(0)))}/{_money(rules.trailing_drawdown.limit)}")
        if rules.window is not None:
            lines.append("window open" if rules.window.is_open(now) else "outside window")
        lines += [f"breached: {code}" for code in self.breached]
        return lines

    # -- facts, off the copy path ----------------------------------------------------------
    def sent(self, client_id: str, action: str, symbol: str, side: str, quantity: int, target: str | None) -> None:
        """An order passed the check and goes to the broker: it counts as working (and toward
        the rate) from now, not from its ack, so a lost ack never hides exposure."""
        if action in ("place", "modify"):
            self.sent_at.append(self._monotonic())
        if action == "place":
            filled = self._early_fills.pop(client_id, 0)
            if quantity - filled > 0:
                order = self.working[client_id] = Working(symbol, 1 if side == "buy" else -1, 0)
                self._remaining(client_id, order, quantity - filled)
        elif action == "modify" and target in self.working:
            self._remaining(target, self.working[target], quantity)

    def finished(self, client_id: str) -> None:
        """Rejected, cancelled or expired: no longer working."""
        order = self.working.get(client_id)
        if order is not None:
            self._remaining(client_id, order, 0)

    def flattened(self, symbol: str) -> None:
        """A flatten cancels the account's working orders (of ``symbol``; all for ``""``)."""
        for client_id, order in [(k, w) for k, w in self.working.items() if not symbol or w.symbol == symbol]:
            self._remaining(client_id, order, 0)

    def fill(
        self,
        client_id: str | None,
        symbol: str,
        side: str,
        quantity: int,
        price: Decimal,
        leaves: int,
        at: datetime | None = None,
    ) -> None:
        """One fill; ``at`` (its time) puts it in its trading day when fills are replayed."""
        if at is not None:
            self._roll(at)
        self.fills_seen += 1
        signed = quantity if side == "buy" else -quantity
        holding = self.holdings.get(symbol) or self.holdings.setdefault(
            symbol, Holding(point_value=_point_value(symbol))
        )
        # An unknown instrument: the position still counts, its P&L in points (and never marked).
        point_value = holding.point_value or Decimal(1)
        holding.net, holding.average, realised = apply_fill(holding.net, holding.average, signed, price, point_value)
        self.realised_today += realised
        self.realised_total += realised
        if client_id:
            order = self.working.get(client_id)
            if order is not None:
                self._remaining(client_id, order, leaves)
            elif leaves > 0 and len(self._early_fills) < MAX_EARLY_FILLS:
                self._early_fills[client_id] = self._early_fills.get(client_id, 0) + quantity

    def seed_working(self, client_id: str, symbol: str, side: str, remaining: int) -> None:
        """A working order the broker reports that this guard did not see sent (placed before
        the account was guarded, or before this worker started): it counts toward exposure
        until its fill, cancel or expiry arrives like any other's."""
        if client_id in self.working or remaining <= 0:
            return
        order = self.working[client_id] = Working(symbol, 1 if side == "buy" else -1, 0)
        self._remaining(client_id, order, remaining)

    def set_rules(self, rules: g.GuardRules) -> None:
        """New rules from the dashboard (``copy.controls``), kept with what the account holds,
        its P&L and its peak: the next check uses them. A breach in force stays only while its
        rule is unchanged; an edited or removed rule is judged afresh at the next check or
        monitor round (and breached, and acted on, again if the account is still beyond it).
        A new time zone or day start recomputes the trading day, which may begin a new one."""
        for code in changed_limits(self.rules, rules):
            self.breached.pop(code, None)
        self.rules = rules
        self._next_day = datetime.min.replace(tzinfo=UTC)

    def seed(self, symbol: str, net: int, average: Decimal | None) -> None:
        """The broker's position at connect, before this worker saw any fill of the account."""
        self.holdings[symbol] = Holding(net, average, _point_value(symbol))

    # -- internals -------------------------------------------------------------------------
    def _working_on(self, symbol: str, direction: int) -> int:
        return self._working_sums.get((symbol, direction), 0)

    def _remaining(self, client_id: str, order: Working, remaining: int) -> None:
        """Set a working order's remainder, keeping the per-(symbol, side) sums the check reads."""
        remaining = max(remaining, 0)
        key = (order.symbol, order.direction)
        total = self._working_sums.get(key, 0) + remaining - order.remaining
        if total:
            self._working_sums[key] = total
        else:
            self._working_sums.pop(key, None)
        order.remaining = remaining
        if remaining == 0:
            self.working.pop(client_id, None)

    def _worst(self, symbol: str) -> int:
        holding = self.holdings.get(symbol)
        net = holding.net if holding is not None else 0
        return max(abs(net + self._working_on(symbol, 1)), abs(net - self._working_on(symbol, -1)))

    def _forget_old(self) -> None:
        horizon = self._monotonic() - RATE_WINDOW_S
        while self.sent_at and self.sent_at[0] <= horizon:
            self.sent_at.popleft()

    def _raise_peak(self, equity: Decimal) -> None:
        rule = self.rules.trailing_drawdown
        cap = rule.stop_trailing_at if rule is not None else None
        peak = max(self.peak, equity)
        self.peak = min(peak, cap) if cap is not None else peak

    def _roll(self, now: datetime) -> None:
        if self.day is not None and now < self._next_day:
            return  # the usual case: one comparison, no time-zone arithmetic
        day = self.rules.trading_day(now)
        self._next_day = self.rules.next_day_start(now)
        if day == self.day:
            return
        if self.day is not None:
            rule = self.rules.trailing_drawdown
            if rule is not None and rule.basis == "end_of_day":
                self._raise_peak(self.last_equity)
            self.realised_today = Decimal(0)
            self.breached.pop(g.DAILY_LOSS, None)  # a daily limit is per day; a drawdown stays
        self.day = day


def changed_limits(old: g.GuardRules, new: g.GuardRules) -> set[str]:
    """The breach codes whose rule an edit changed (a daily loss also by its day's bounds)."""
    changed = set()
    if (old.daily_loss, old.tz, old.day_starts) != (new.daily_loss, new.tz, new.day_starts):
        changed.add(g.DAILY_LOSS)
    if old.trailing_drawdown != new.trailing_drawdown:
        changed.add(g.DRAWDOWN)
    return changed


def has_rules(rules: g.GuardRules) -> bool:
    """Whether any rule is set (a dashboard edit that clears every field removes the guards)."""
    return any(
        value is not None
        for value in (
            rules.max_contracts_per_symbol,
            rules.max_contracts_total,
            rules.max_orders_per_minute,
            rules.daily_loss,
            rules.trailing_drawdown,
            rules.window,
        )
    )


def rules_by_account(config: CopyConfig) -> dict[str, g.GuardRules]:
    """Each follower account's guards (``core.config`` made sure one account has one set)."""
    found: dict[str, g.GuardRules] = {}
    for group in config.groups:
        for follower in group.followers:
            if follower.guards is not None:
                found.setdefault(follower.account_id, follower.guards)
    return found


def quote_marks(quotes: QuoteBook | None) -> Marks:
    """A position is marked where it would close: the fresh bid for a long, the ask for a short
    (the reference when that side is missing); no fresh quote, no mark."""

    def mark(symbol: str, net: int) -> Decimal | None:
        quote = quotes.fresh(symbol) if quotes is not None else None
        if quote is None:
            return None
        touch = quote.touch(Side.SELL if net > 0 else Side.BUY)
        return touch if touch is not None else quote.reference()

    return mark


def _point_value(symbol: str) -> Decimal | None:
    try:
        return instrument_for(symbol).point_value
    except (KeyError, ValueError):
        return None


def _money(value: Decimal) -> str:
    return f"{value.quantize(Decimal('0.01'))}"

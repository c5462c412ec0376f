"""Fan-out planning: one leader signal → one intent (or one recorded refusal) per follower.

Pure and synchronous so it is cheap on the hot path and testable without Kafka. A follower
that cannot take the copy (paused, scaled to zero, unknown symbol) yields an ``OrderError``
with the reason instead of silently dropping out.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from ...brokers.instruments import instrument_for
from ...core import ids
from ...core.config import CopyConfig, CopyGroup, Follower
from ...core.control_records import ALL_ACCOUNTS
from ...core.quotes import QuoteBook
from ...core.records import OrderError, OrderIntent, TradeSignal, stamp
from ...core.scaling import CopyRule, ScaledToZero, follower_side, follower_symbol, scaled_quantity
from .intent_build import build_intent
from .price_band import NO_QUOTE, BandRefused, Pricing, price_market_order, reference_price

ACTION_FOR_KIND = {"new": "place", "modify": "modify", "cancel": "cancel", "flatten": "flatten"}


@dataclass(slots=True)
class Controls:
    """Runtime switches the dashboard flips: pause one follower, or all copying.

    The dashboard runs in another process, so it never touches this object: it publishes
    commands on ``copy.controls`` and every fan-out worker applies them here
    (``agents.fanout.controls``). Commands carry state (``paused`` true/false), not toggles, so
    replaying the topic from the start always yields the current switches.
    """

    paused_accounts: set[str] = field(default_factory=set)
    paused_all: bool = False
    # (group id, follower) → (rule, enabled) set from the dashboard; replaces the config's.
    rules: dict[tuple[str, str], tuple[CopyRule, bool]] = field(default_factory=dict)

    def set_rule(self, group_id: str, account_id: str, rule: CopyRule, enabled: bool) -> None:
        self.rules[(group_id, account_id)] = (rule, enabled)

    def is_paused(self, account_id: str) -> bool:
        return self.paused_all or account_id in self.paused_accounts

    def set_paused(self, account_id: str, paused: bool) -> None:
        """Apply one command; ``account_id`` ``"*"`` is the switch for all copying."""
        if account_id == ALL_ACCOUNTS:
            self.paused_all = paused
        elif paused:
            self.paused_accounts.add(account_id)
        else:
            self.paused_accounts.discard(account_id)


class FanoutPlanner:
    def __init__(self, config: CopyConfig, controls: Controls | None = None, quotes: QuoteBook | None = None) -> None:
        self.config = config
        self.controls = controls or Controls()
        #: Latest market prices (price band, reference price); None without a market-data source.
        self.quotes = quotes
        # The leader's net position per (leader, symbol), from its fill signals (same partition
        # as its orders: signals are keyed by symbol). It tells an exit from an entry: exits are
        # never banded. A restarted worker starts at 0 (see docs/architecture.md, price band).
        self.leader_net: dict[tuple[str, str], int] = {}
        self._references: dict[str, Decimal | None] = {}

    def plan(self, signal: TradeSignal) -> tuple[list[OrderIntent], list[OrderError]]:
        """Intents for every enabled follower of the signal's leader, plus refusals."""
        intents: list[OrderIntent] = []
        errors: list[OrderError] = []
        if signal.kind == "fill":
            key = (signal.leader_account, signal.symbol)
            self.leader_net[key] = self.leader_net.get(key, 0) + (1 if signal.side == "buy" else -1) * signal.quantity
            return intents, errors  # leader fills are tracked, not copied: the order was
        followers = self.config.followers_by_leader.get(signal.leader_account)
        if followers is None:
            errors.append(
                self._error(signal, "unknown", f"no copy group has leader {signal.leader_account!r}", "UNKNOWN_LEADER")
            )
            return intents, errors
        stamps = stamp(signal.stamps, "fanned_out")
        self._references.clear()  # one quote lookup per symbol per signal, not per follower
        reduces = signal.kind == "flatten" or (signal.kind == "new" and self._is_exit(signal))
        for group, follower in followers:
            try:
                intent = self._intent(signal, group, follower, stamps, errors, reduces)
            except BandRefused as exc:
                errors.append(self._error(signal, follower.account_id, str(exc), exc.code))
                continue
            except (ScaledToZero, KeyError, ValueError, ArithmeticError) as exc:
                # ArithmeticError: decimal's InvalidOperation/Overflow on a value that slipped
                # past validation costs this follower this copy, never the group its copies.
                errors.append(
                    self._error(signal, follower.account_id, str(exc).strip("'\"") or type(exc).__name__, "RULE")
                )
                continue
            if intent is not None:
                intents.append(intent)
            else:
                errors.append(self._error(signal, follower.account_id, "follower paused or disabled", "PAUSED"))
        return intents, errors

    def _intent(
        self,
        signal: TradeSignal,
        group: CopyGroup,
        follower: Follower,
        stamps: dict[str, float],
        warnings: list[OrderError],
        reduces: bool = False,
    ) -> OrderIntent | None:
        account_id = follower.account_id
        rule, enabled = self.controls.rules.get((group.group_id, account_id), (follower.rule, follower.enabled))
        if not enabled:
            return None  # disabled: it never received the entry either
        # Cancels and flattens go through a pause: pausing must never strand a working order.
        if signal.kind in ("new", "modify") and self.controls.is_paused(account_id):
            return None
        account = self.config.accounts[account_id]
        symbol = follower_symbol(rule, signal.symbol)
        if signal.kind != "flatten":
            instrument_for(symbol)  # unknown mapped symbol → KeyError → recorded refusal
        quantity = 0
        if signal.kind in ("new", "modify"):
            leader = self.config.accounts.get(signal.leader_account)
            quantity = scaled_quantity(rule, signal.quantity, leader.size if leader else None, account.size)
        target = None
        if signal.kind in ("modify", "cancel"):
            target = ids.follower_order_id(signal.leader_account, signal.leader_order_id, account_id)
        side = follower_side(rule, signal.side)
        pricing = Pricing(signal.order_type, signal.limit_price)
        if rule.price_band_ticks is not None and signal.kind == "new" and signal.order_type == "market":
            if not self._is_exit(signal):
                pricing = price_market_order(self.quotes, symbol, side, rule.price_band_ticks, rule.on_no_quote)
        if pricing.warning is not None:
            warnings.append(self._error(signal, account_id, pricing.warning, NO_QUOTE, suffix="band"))
        reference = self._reference(symbol) if signal.kind in ("new", "flatten") else None
        action = ACTION_FOR_KIND[signal.kind]
        return build_intent(
            client_order_id=ids.client_order_id(signal.signal_id, account_id),
            signal_id=signal.signal_id,
            account_id=account_id,
            platform=account.platform,
            leader_account=signal.leader_account,
            action=action,
            symbol=symbol,
            side=side,
            quantity=quantity or max(signal.quantity, 1),
            order_type=pricing.order_type,
            limit_price=pricing.limit_price,
            stop_price=signal.stop_price,
            target_client_order_id=target,
            leader_symbol=signal.symbol,
            leader_quantity=signal.quantity,
            stamps=stamps,
            reference_price=reference,
            band_ticks=pricing.band_ticks,
            band_touch=pricing.band_touch,
            **_stale_fields(action, pricing.order_type, group, reduces),
        )

    def _reference(self, symbol: str) -> Decimal | None:
        if symbol not in self._references:
            self._references[symbol] = reference_price(self.quotes, symbol)
        return self._references[symbol]

    def _is_exit(self, signal: TradeSignal) -> bool:
        """The leader's order reduces (or reverses) its position: never banded."""
        net = self.leader_net.get((signal.leader_account, signal.symbol), 0)
        return net != 0 and (net > 0) != (signal.side == "buy")

    @staticmethod
    def _error(signal: TradeSignal, account_id: str, reason: str, code: str, suffix: str = "fanout") -> OrderError:
        return OrderError(
            error_id=f"{signal.signal_id}|{account_id}|{suffix}",
            stage="fanout",
            reason=reason,
            account_id=account_id,
            signal_id=signal.signal_id,
            code=code,
            stamps=signal.stamps,
        )


def _stale_fields(action: str, order_type: str, group: CopyGroup, reduces: bool) -> dict[str, Any]:
    """What the executor needs for a copy that reaches its lane late (``agents/execution/
    netting.py``): a market copy carries its group's limit and is netted past it; an exit or
    flatten is served before entries from a short request budget. Given to the intent's
    constructor (not set afterwards), so its ``__post_init__`` checks them too."""
    if action == "place" and order_type == "market":
        return {"reduces_position": reduces, "stale_after_s": group.stale_copy_s}
    return {"reduces_position": reduces}


def expected_pairs(signals: Iterable[TradeSignal], config: CopyConfig) -> set[tuple[str, str]]:
    """(signal id, follower) pairs that should each produce exactly one follower order."""
    return {
        (s.signal_id, f.account_id)
        for s in signals
        if s.kind in ACTION_FOR_KIND
        for _, f in config.followers_by_leader.get(s.leader_account, ())
    }

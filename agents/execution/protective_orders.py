"""The orders and records of the protective-stop watcher (``protective.py``).

Every client id here is derived from the original stop copy's client id (and an attempt
number), never random: a restarted executor that re-sends one finds it in the attempt journal
or at the broker by that id, so a replacement or a flatten is never doubled.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from ...core import ids
from ...core.records import OrderError, OrderIntent

#: Signal ids of the watcher's own orders start with this (never a kill-switch id).
PROTECT_SIGNAL_PREFIX = ids.PROTECT_SIGNAL_PREFIX


class Unverifiable(Exception):  # noqa: N818 - it names the situation, like the brokers' errors
    """The broker's state cannot be read now (session down, snapshot failed): do not act."""


@dataclass(frozen=True, slots=True)
class Truth:
    """What the broker says about one follower's symbol: its net position and its working
    stop orders as (client id or None, side sign)."""

    position: int
    working_stops: tuple[tuple[str | None, int], ...] = ()


def _stamps(now: float) -> dict[str, float]:
    return {"detected": now, "published": now, "fanned_out": now}


def _derived(original: OrderIntent, what: str, **fields: Any) -> OrderIntent:
    signal = ids.protective_signal_id(original.client_order_id, what)
    base: dict[str, Any] = {
        "client_order_id": ids.client_order_id(signal, original.account_id),
        "signal_id": signal,
        "account_id": original.account_id,
        "platform": original.platform,
        "leader_account": original.leader_account,
        "symbol": original.symbol,
        "side": original.side,
        "quantity": original.quantity,
        "leader_symbol": original.leader_symbol,
        "leader_quantity": original.leader_quantity,
    }
    return OrderIntent(**{**base, **fields})


def replacement(original: OrderIntent, attempt: int, quantity: int, now: float) -> OrderIntent:
    """The stop again, as the leader last set it, no larger than the position it protects
    (a bigger stop would open the other way when it triggers)."""
    return _derived(
        original,
        f"replace:{attempt}",
        action="place",
        quantity=max(1, quantity),
        order_type=original.order_type,
        limit_price=original.limit_price,
        stop_price=original.stop_price,
        stamps=_stamps(now),
    )


def cancel(original: OrderIntent, target: str, attempt: int, now: float) -> OrderIntent:
    """Cancel a copy whose outcome was never known, before its replacement goes out."""
    return _derived(original, f"cancel:{attempt}", action="cancel", target_client_order_id=target, stamps=_stamps(now))


def flatten(original: OrderIntent, attempt: int, now: float) -> OrderIntent:
    """Close the follower's position in the symbol (and its working orders there)."""
    return _derived(original, f"flatten:{attempt}", action="flatten", stamps=_stamps(now))


def forward(leader_change: OrderIntent, live_id: str) -> OrderIntent:
    """The leader's modify or cancel of its stop, sent on to the stop that replaced our copy
    (it was aimed at the copy that went missing)."""
    return _derived(
        leader_change,
        "forward",
        action=leader_change.action,
        quantity=leader_change.quantity,
        limit_price=leader_change.limit_price,
        stop_price=leader_change.stop_price,
        target_client_order_id=live_id,
        stamps=leader_change.stamps,
    )


def modified(copy: OrderIntent, change: OrderIntent) -> OrderIntent:
    """The stop copy as the leader's modify leaves it (a modify sets absolute values)."""
    limit: Decimal | None = change.limit_price if change.limit_price is not None else copy.limit_price
    stop: Decimal | None = change.stop_price if change.stop_price is not None else copy.stop_price
    fields = {**copy.as_dict(), "quantity": change.quantity or copy.quantity, "limit_price": limit}
    return OrderIntent(**{**fields, "stop_price": stop})


def error(
    account_id: str,
    symbol: str,
    position: int | None,
    naked_s: float,
    code: str,
    action: str,
    intent: OrderIntent | None,
    episode: str,
) -> OrderError:
    """One ``order.errors`` record: the symbol, the position and how long it was naked."""
    held = "unknown" if position is None else f"{position:+d}"
    reason = f"{account_id} held {held} {symbol} without the leader's protective stop for {naked_s:.2f} s: {action}"
    what = intent.client_order_id if intent is not None else episode
    return OrderError(
        error_id=f"protect|{account_id}|{symbol}|{code}|{what}",
        stage="execute",
        reason=reason,
        account_id=account_id,
        signal_id=intent.signal_id if intent is not None else None,
        client_order_id=intent.client_order_id if intent is not None else None,
        code=code,
        payload=json.dumps({"symbol": symbol, "position": position, "naked_s": round(naked_s, 3)}),
    )

"""Reconciliation, the pure part: what a follower should hold, what it holds, what to do.

Pure functions over snapshots, so every case (in sync, drifted either way, orphan, missing
leader, stale leader, repeated reconcile) is tested without a broker or Kafka. The worker side
(``agents/reconcile``) only fetches snapshots, guards when to act and sends what this module
plans.

What a follower should hold is its copy groups' answer to the leader's *broker-side* state:
each leader's net position per symbol scaled by the follower's rule (``core/scaling.py``:
symbol map, inverse, size ratio, caps), summed over the follower's groups; and one working
order for each of the leaders' working orders, known by the client id the copy would carry
(``core/ids.py``). A follower order whose client id is ours (``CT…``) but matches no working
leader order is an orphan; an order without our id (the trader's own, or a platform that does
not report client ids) is *foreign*: counted, never touched.

Corrections carry idempotency keys derived from (account, symbol, the leader snapshots'
generation, the position seen, the target), so a reconcile repeated on the same state plans
the same key and the executor, which never runs a key twice, places it once.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import msgspec

from ..brokers.model import AccountSnapshot, OrderEvent
from . import ids
from .config import CopyConfig
from .control_records import ALL_ACCOUNTS, ReconcileCommand
from .scaling import ScaledTooLarge, ScaledToZero, follower_side, follower_symbol, scaled_quantity, scales_positions
from .schemas import SchemaError, decode
from .schemas.reconcile import MAX_SNAPSHOT_ITEMS, LeaderSnapshotRecord, WorkingOrderIn

#: Reason codes on ``order.errors``.
DRIFT_POSITION = "DRIFT_POSITION"
ORPHAN_ORDER = "ORPHAN_ORDER"
MISSING_ORDER = "MISSING_ORDER"
RECONCILE_UNAVAILABLE = "RECONCILE_UNAVAILABLE"
RECONCILE_CORRECTION = "RECONCILE_CORRECTION"
#: Working-order ids a report carries at most (a status record stays small).
MAX_REPORTED = 500
#: Signal ids of correction intents start with this (the order log shows where they came from).
SIGNAL_PREFIX = "reconcile:"


class Unavailable(Exception):
    """The state needed to reconcile cannot be read: say why, change nothing."""


@dataclass(frozen=True, slots=True)
class WorkingOrder:
    broker_order_id: str
    client_order_id: str | None
    symbol: str
    side: str
    quantity: int

    @property
    def ours(self) -> bool:
        return bool(self.client_order_id and self.client_order_id.startswith(ids.CLIENT_ID_PREFIX))


def _working(orders: Iterable[OrderEvent]) -> tuple[WorkingOrder, ...]:
    return tuple(
        WorkingOrder(o.broker_order_id, o.client_order_id, o.symbol, o.side.value, o.quantity - o.filled_quantity)
        for o in orders
        if not o.status.is_final
    )


def _positions(snapshot: AccountSnapshot) -> dict[str, int]:
    return {p.symbol: p.net_quantity for p in snapshot.positions if p.net_quantity != 0}


@dataclass(frozen=True, slots=True)
class BrokerState:
    """One account as its broker reported it (positions without zeros, working orders)."""

    account_id: str
    taken_at: float
    positions: Mapping[str, int]
    orders: tuple[WorkingOrder, ...] = ()
    error: str | None = None  # the snapshot failed: the rest means nothing
    trigger: str = ""  # why a leader's snapshot was taken (connect, schedule, request, ...)

    @classmethod
    def of(cls, snapshot: AccountSnapshot) -> BrokerState:
        return cls(
            snapshot.account_id, snapshot.taken_at.timestamp(), _positions(snapshot), _working(snapshot.open_orders)
        )

    @classmethod
    def failed(cls, account_id: str, taken_at: float, reason: str) -> BrokerState:
        return cls(account_id, taken_at, {}, (), reason)

    def encode(self, trigger: str = "") -> bytes:
        """The ``leader.snapshots`` record (``schemas.reconcile.LeaderSnapshotRecord``).

        A leader with more working orders or positions than a record carries is published as
        a failed snapshot that says so: every follower refused the whole record (the schema's
        bound), so its reconciliation stopped with a log line and nothing on any topic.
        """
        too_many = max(len(self.orders), len(self.positions))
        if self.error is None and too_many > MAX_SNAPSHOT_ITEMS:
            what = "working orders" if len(self.orders) > MAX_SNAPSHOT_ITEMS else "positions"
            reason = f"{too_many} {what}: more than the {MAX_SNAPSHOT_ITEMS} a leader snapshot carries"
            return BrokerState.failed(self.account_id, self.taken_at, reason).encode(trigger)
        record = LeaderSnapshotRecord(
            leader=self.account_id,
            taken_at=self.taken_at,
            positions=dict(self.positions),
            orders=[
                WorkingOrderIn(
                    broker_order_id=o.broker_order_id,
                    client_order_id=o.client_order_id,
                    symbol=o.symbol,
                    side=o.side,  # type: ignore[arg-type]  # Side.value is "buy" or "sell"
                    quantity=o.quantity,
                )
                for o in self.orders
            ],
            error=self.error[:256] if self.error else None,
            trigger=trigger[:256],
        )
        return msgspec.json.encode(record)

    @classmethod
    def decode(cls, raw: bytes) -> BrokerState:
        """Strictly through the schema; ``ValueError`` naming the field on anything else."""
        try:
            rec = decode(raw, LeaderSnapshotRecord)
        except SchemaError as exc:
            raise ValueError(f"leader snapshot: {exc}") from None
        orders = tuple(
            WorkingOrder(o.broker_order_id, o.client_order_id, o.symbol, o.side, o.quantity) for o in rec.orders
        )
        positions = {s: q for s, q in rec.positions.items() if q != 0}
        return cls(rec.leader, rec.taken_at, positions, orders, rec.error, rec.trigger)


@dataclass(frozen=True, slots=True)
class ExpectedOrder:
    client_order_id: str
    leader: str
    leader_order_id: str
    symbol: str


@dataclass(frozen=True, slots=True)
class Target:
    """What the copy groups say the follower should hold, and from which leader snapshots."""

    account_id: str
    positions: Mapping[str, int]
    orders: Mapping[str, ExpectedOrder]
    generation: str  # the leader snapshots it was computed from (part of correction keys)
    leader_taken_at: float  # the oldest of those snapshots
    auto_correct: bool
    # False when a copy rule scales each order, not the position (``scaling.scales_positions``):
    # the leader's position does not tell the follower's, so positions are shown, not compared.
    positions_checked: bool = True


def target_for(
    config: CopyConfig, account_id: str, leaders: Mapping[str, BrokerState], now: float, max_age_s: float
) -> Target:
    """The follower's target from its groups' leaders; ``Unavailable`` when a leader's
    snapshot is missing, failed or older than ``max_age_s`` (never a guess from old data)."""
    memberships = [
        (group, follower)
        for members in config.followers_by_leader.values()
        for group, follower in members
        if follower.account_id == account_id and follower.enabled and group.enabled
    ]
    if not memberships:
        raise Unavailable(f"{account_id} follows no enabled copy group")
    positions: dict[str, int] = {}
    orders: dict[str, ExpectedOrder] = {}
    stamps: list[str] = []
    oldest = now
    checked = True  # every membership's rule scales positions (see Target.positions_checked)
    follower_size = config.accounts[account_id].size if account_id in config.accounts else None
    for group, follower in memberships:
        leader = leaders.get(group.leader)
        if leader is None:
            raise Unavailable(f"no snapshot of leader {group.leader} yet")
        if leader.error is not None:
            raise Unavailable(f"leader {group.leader} snapshot failed: {leader.error}")
        age = now - leader.taken_at
        if age > max_age_s:
            raise Unavailable(f"leader {group.leader} snapshot is {age:.1f} s old (bound {max_age_s:g} s)")
        oldest = min(oldest, leader.taken_at)
        stamps.append(f"{group.leader}@{leader.taken_at:.3f}")
        leader_size = config.accounts[group.leader].size if group.leader in config.accounts else None
        rule = follower.rule
        checked = checked and scales_positions(rule, leader_size, follower_size)
        for symbol, net in leader.positions.items():
            symbol_here = follower_symbol(rule, symbol)
            try:
                quantity = scaled_quantity(rule, abs(net), leader_size, follower_size)
            except ScaledToZero:
                quantity = 0
            except (ScaledTooLarge, ValueError) as exc:
                raise Unavailable(f"{symbol}: {exc}") from None
            side = follower_side(rule, "buy" if net > 0 else "sell")
            positions[symbol_here] = positions.get(symbol_here, 0) + (quantity if side == "buy" else -quantity)
        for order in leader.orders:
            client_id = ids.follower_order_id(group.leader, order.broker_order_id, account_id)
            orders[client_id] = ExpectedOrder(
                client_id, group.leader, order.broker_order_id, follower_symbol(rule, order.symbol)
            )
    auto = all(group.auto_correct for group, _ in memberships)
    return Target(account_id, positions, orders, ",".join(sorted(stamps)), oldest, auto, checked)


@dataclass(frozen=True, slots=True)
class SymbolDrift:
    symbol: str
    expected: int
    actual: int

    @property
    def difference(self) -> int:
        """Contracts the follower lacks (positive: it should buy)."""
        return self.expected - self.actual


@dataclass(frozen=True, slots=True)
class Comparison:
    account_id: str
    drifts: tuple[SymbolDrift, ...]
    orphans: tuple[WorkingOrder, ...]
    missing: tuple[ExpectedOrder, ...]
    foreign: tuple[WorkingOrder, ...]
    positions: Mapping[str, int] = field(default_factory=dict)
    open_orders: int = 0
    working: tuple[str, ...] = ()  # broker ids of every working order (the dashboard's "Open")
    positions_checked: bool = True  # False: the copy rule does not let positions be compared

    @property
    def in_sync(self) -> bool:
        return not (self.drifts or self.orphans or self.missing)

    def fingerprint(self) -> tuple[object, ...]:
        """What must stay the same between two looks before a drift is acted upon."""
        return (
            tuple((d.symbol, d.expected, d.actual) for d in self.drifts),
            tuple(sorted(o.broker_order_id for o in self.orphans)),
        )


def compare(target: Target, follower: BrokerState) -> Comparison:
    """Follower positions and working orders against the target; zero positions are flat."""
    symbols = sorted(set(target.positions) | set(follower.positions)) if target.positions_checked else []
    drifts = tuple(
        SymbolDrift(s, target.positions.get(s, 0), follower.positions.get(s, 0))
        for s in symbols
        if target.positions.get(s, 0) != follower.positions.get(s, 0)
    )
    # A stop the protective watcher placed again stands in for the copy it replaces.
    stands_in = {
        alias: cid for cid in target.orders for alias in ids.protective_replacement_ids(cid, target.account_id)
    }
    present = {stands_in.get(o.client_order_id, o.client_order_id) for o in follower.orders if o.client_order_id}
    orphans = tuple(
        o
        for o in follower.orders
        if o.ours and o.client_order_id not in target.orders and o.client_order_id not in stands_in
    )
    foreign = tuple(o for o in follower.orders if not o.ours)
    missing = tuple(e for cid, e in sorted(target.orders.items()) if cid not in present)
    return Comparison(
        target.account_id,
        drifts,
        orphans,
        missing,
        foreign,
        dict(follower.positions),
        len(follower.orders),
        tuple(o.broker_order_id for o in follower.orders),
        target.positions_checked,
    )


@dataclass(frozen=True, slots=True)
class Correction:
    """One order that brings the follower back: a market order for a position drift, a
    cancel for an orphan. ``client_order_id`` is the idempotency key."""

    account_id: str
    action: str  # "place" or "cancel"
    client_order_id: str
    symbol: str
    side: str
    quantity: int
    target_client_order_id: str | None = None
    reason: str = ""

    @property
    def signal_id(self) -> str:
        return f"{SIGNAL_PREFIX}{self.account_id}:{self.client_order_id}"


def corrections(target: Target, comparison: Comparison) -> list[Correction]:
    """The orders that make the follower match: deterministic in every field."""
    planned: list[Correction] = []
    account = comparison.account_id
    for orphan in comparison.orphans:
        cid = orphan.client_order_id or ""
        planned.append(
            Correction(
                account,
                "cancel",
                ids.client_order_id(f"{SIGNAL_PREFIX}cancel:{cid}", account),
                orphan.symbol,
                orphan.side,
                max(orphan.quantity, 1),
                target_client_order_id=cid,
                reason=f"orphan order {orphan.broker_order_id} ({cid}): its leader order is gone",
            )
        )
    for drift in comparison.drifts:
        key = f"{SIGNAL_PREFIX}{target.generation}:{drift.symbol}:{drift.actual}>{drift.expected}"
        planned.append(
            Correction(
                account,
                "place",
                ids.client_order_id(key, account),
                drift.symbol,
                "buy" if drift.difference > 0 else "sell",
                abs(drift.difference),
                reason=f"{drift.symbol}: holds {drift.actual}, should hold {drift.expected}",
            )
        )
    return planned


def report(comparison: Comparison, since: float | None, checked_at: float) -> dict[str, Any]:
    """The ``reconciliation`` field of ``account.status`` (the dashboard's row reads it)."""
    return {
        "state": "in_sync" if comparison.in_sync else "drifted",
        "since": since,
        "checked_at": checked_at,
        "drift": {
            d.symbol: {"expected": d.expected, "actual": d.actual, "difference": d.difference}
            for d in comparison.drifts
        },
        "orphans": [o.client_order_id for o in comparison.orphans],
        "missing": [e.leader_order_id for e in comparison.missing],
        "foreign_orders": len(comparison.foreign),
        "positions": dict(sorted(comparison.positions.items())),
        "open_orders": comparison.open_orders,
        "working_orders": list(comparison.working[:MAX_REPORTED]),
        "positions_checked": comparison.positions_checked,
        "reason": None,
    }


def leader_report(state: BrokerState) -> dict[str, Any]:
    """A leader's broker-side state on ``account.status`` (leaders are not reconciled: they
    are the reference), so the dashboard shows the leader's broker truth too."""
    return {
        "state": "leader",
        "since": None,
        "checked_at": state.taken_at,
        "positions": dict(sorted(state.positions.items())),
        "open_orders": len(state.orders),
        "working_orders": [o.broker_order_id for o in state.orders[:MAX_REPORTED]],
        "reason": None,
    }


def unavailable_report(reason: str, since: float | None, checked_at: float) -> dict[str, Any]:
    return {"state": "unavailable", "since": since, "checked_at": checked_at, "reason": reason[:500]}


def request(config: CopyConfig, account_id: str, by: str, command_id: str | None = None) -> ReconcileCommand:
    """The ``copy.controls`` record every door sends (API, dashboard, CLI): one follower or
    ``"*"``. ``KeyError`` for an account that is not a follower (nothing to reconcile)."""
    if account_id != ALL_ACCOUNTS and account_id not in config.follower_accounts():
        raise KeyError(account_id)
    return ReconcileCommand(command_id or f"reconcile-{secrets.token_hex(8)}", account_id, by, time.time())

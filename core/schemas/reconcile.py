"""Reconciliation's doors: the ``reconcile:`` config section, the REST body, the
``copy.controls`` request record and the ``leader.snapshots`` record.

Every one of them is read by a worker that must not crash on it: strict types, bounded
strings, finite bounded numbers. A leader snapshot is the one a reconciler corrects from, so
its quantities are bounded like every order quantity and a malformed one is refused whole.
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

from ...common import bounds as b
from .types import Id, Side, Symbol, Text, Time

#: The shortest schedule: reconciling asks every broker for a snapshot; faster is a load test.
MIN_INTERVAL_S = 1.0
MAX_INTERVAL_S = 3600.0
IntervalS = Annotated[float, msgspec.Meta(ge=MIN_INTERVAL_S, le=MAX_INTERVAL_S)]
AgeS = Annotated[float, msgspec.Meta(ge=1.0, le=2 * MAX_INTERVAL_S)]
SettleS = Annotated[float, msgspec.Meta(ge=0.0, le=60.0)]
TimeoutS = Annotated[float, msgspec.Meta(ge=0.1, le=120.0)]
Fraction = Annotated[float, msgspec.Meta(ge=0.0, le=0.5)]
SignedQuantity = Annotated[int, msgspec.Meta(ge=-b.MAX_QUANTITY, le=b.MAX_QUANTITY)]
Quantity = Annotated[int, msgspec.Meta(ge=0, le=b.MAX_QUANTITY)]
MAX_SNAPSHOT_ITEMS = 1000


class ReconcileIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """``reconcile:`` in the config file; every field optional with the documented default."""

    enabled: bool = True  # false: no snapshots, no reports, no corrections (a bench's request count)
    interval_s: IntervalS = 30.0
    jitter: Fraction = 0.1  # spreads the leaders' snapshots over ±10% of the interval
    max_leader_age_s: AgeS = 45.0  # an older leader snapshot is never corrected from
    settle_s: SettleS = 2.0  # a drift must stay the same this long before it is corrected
    snapshot_timeout_s: TimeoutS = 5.0


class ReconcileBody(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """``POST /api/reconcile``: every account (no body, ``{}``) or one (``{"account_id": …}``)."""

    account_id: Id | None = None


class ReconcileRecord(msgspec.Struct, kw_only=True):
    """A reconcile request on ``copy.controls`` (key ``reconcile:<account>`` or ``reconcile:*``)."""

    kind: Literal["reconcile"]
    account_id: Id
    command_id: Text = ""
    by: Text = ""
    at: Time = 0.0


class _Kind(msgspec.Struct):
    kind: Text = ""


def is_reconcile_record(raw: bytes) -> bool:
    """Whether a ``copy.controls`` record is a reconcile request (any decode error: no)."""
    try:
        return msgspec.json.decode(raw, type=_Kind).kind == "reconcile"
    except (msgspec.DecodeError, msgspec.ValidationError):
        return False


class WorkingOrderIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    broker_order_id: Annotated[str, msgspec.Meta(min_length=1, max_length=b.MAX_SIGNAL_ID_LEN)]
    client_order_id: Annotated[str, msgspec.Meta(max_length=b.MAX_SIGNAL_ID_LEN)] | None = None
    symbol: Symbol
    side: Side
    quantity: Quantity


class LeaderSnapshotRecord(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """The leader's broker-side state (key: the leader account) or why it could not be read.

    ``error`` set means the snapshot failed: ``positions`` and ``orders`` are then empty and
    mean nothing (a reconciler reports it and changes nothing).
    """

    leader: Id
    taken_at: Time
    positions: Annotated[dict[str, SignedQuantity], msgspec.Meta(max_length=MAX_SNAPSHOT_ITEMS)] = msgspec.field(
        default_factory=dict
    )
    orders: Annotated[list[WorkingOrderIn], msgspec.Meta(max_length=MAX_SNAPSHOT_ITEMS)] = msgspec.field(
        default_factory=list
    )
    error: Text | None = None
    trigger: Text = ""

    def __post_init__(self) -> None:
        for symbol in self.positions:
            if not symbol or len(symbol) > b.MAX_SYMBOL_LEN:
                raise ValueError(f"positions: {symbol[:40]!r} is not a symbol")

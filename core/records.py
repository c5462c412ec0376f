"""The records that travel on CopyTrader's topics.

Faust ``Record``s with validation on construction, ``Decimal`` prices and timezone-aware UTC
event times. Every record carries ``stamps``: wall-clock seconds (``time.time()``) at each stage
of ARCHITECTURE.md (``detected``, ``published``, ``fanned_out``, ``sent``, ``acked``,
``filled``), copied forward from record to record so one copy's latency waterfall can be drawn
from its last record alone. Wall-clock, not monotonic, because stages run in different processes.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, ClassVar

import faust
from orjson import loads as json_loads

from ..brokers.model import OrderType, Side
from ..common.clock import utcnow
from .schemas.bounds import MAX_QUANTITY

SIGNAL_KINDS = ("new", "modify", "cancel", "fill", "flatten")
INTENT_ACTIONS = ("place", "modify", "cancel", "flatten")
EXECUTION_KINDS = (
    "ack",
    "fill",
    "partial_fill",
    "reject",
    "modified",
    "cancelled",
    "flattened",
    "fill_bust",
    "fill_correction",
)
#: A bust/correction names the fill it changes (``corrects`` = that fill's execution id) and the
#: values reported before (``original_*``); ``quantity``/``price`` are the values now (0/None: bust).
CORRECTION_KINDS = ("fill_bust", "fill_correction")
STAGES = ("detected", "published", "fanned_out", "sent", "acked", "filled")


def stamp(stamps: dict[str, float], stage: str) -> dict[str, float]:
    """Return a copy of ``stamps`` with ``stage`` set to now (records stay effectively immutable)."""
    return {**stamps, stage: time.time()}


class RecordError(ValueError):
    """A record failed validation; ``field`` names the offending field."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


def _choice(field: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise RecordError(field, f"must be one of {', '.join(allowed)}; got {value!r}")


def _utc(field: str, value: datetime) -> datetime:
    """Aware times are normalised to UTC; a naive time is ambiguous and refused."""
    if value.tzinfo is None:
        raise RecordError(field, "must be timezone-aware (naive times are ambiguous)")
    return value.astimezone(UTC)


def _order_prices(order_type: str, limit: Decimal | None, stop: Decimal | None) -> None:
    _choice("order_type", order_type, tuple(t.value for t in OrderType))
    if order_type in ("limit", "stop_limit") and limit is None:
        raise RecordError("limit_price", f"required for a {order_type} order")
    if order_type in ("stop", "stop_limit") and stop is None:
        raise RecordError("stop_price", f"required for a {order_type} order")
    for name, price in (("limit_price", limit), ("stop_price", stop)):
        _price(name, price)


def _price(name: str, price: Decimal | None) -> None:
    """Finite and positive: ``Infinity`` would be filled at Infinity, ``NaN`` cannot even be
    compared (decimal raises ``InvalidOperation``). Cheap enough for every record."""
    if price is None:
        return
    try:
        number = price if isinstance(price, Decimal) else Decimal(str(price))
        ok = number.is_finite() and number > 0
    except ArithmeticError:
        ok = False
    if not ok:
        raise RecordError(name, f"must be a finite positive price; got {price}")


class _Base(faust.Record, abstract=True, serializer="json", coerce=True, isodates=True, decimals=True):
    """Shared record options: JSON on the wire, coerced types, ISO dates, Decimal prices."""

    _kind: ClassVar[str] = ""

    def as_dict(self) -> dict[str, Any]:
        """Plain dict without Faust's metadata (for the web, logs and the database sink)."""
        return {k: v for k, v in self.asdict().items() if not k.startswith("__")}


class TradeSignal(_Base):
    """A leader's trade event, normalised: the input of fan-out.

    ``signal_id`` is derived from the leader event (see ``app.ids``), so a leader event seen
    twice (reconnect, replay) produces the same id and, downstream, the same client order ids.
    """

    signal_id: str
    leader_account: str
    platform: str
    symbol: str
    side: str
    quantity: int
    kind: str = "new"
    order_type: str = "market"
    limit_price: Decimal | None = None
    stop_price: Decimal | None = None
    fill_price: Decimal | None = None
    leader_order_id: str = ""
    source: str = "adapter"
    occurred_at: datetime = faust.models.fields.DatetimeField(default=None, required=False)
    stamps: dict[str, float] = {}  # noqa: RUF012 - Faust copies defaults per instance

    def __post_init__(self) -> None:
        if not self.signal_id:
            raise RecordError("signal_id", "must not be empty")
        if not self.leader_account:
            raise RecordError("leader_account", "must not be empty")
        _choice("kind", self.kind, SIGNAL_KINDS)
        _choice("side", self.side, tuple(s.value for s in Side))
        if self.kind != "flatten" and self.quantity <= 0:
            raise RecordError("quantity", f"must be positive; got {self.quantity}")
        if self.kind in ("new", "modify"):
            _order_prices(self.order_type, self.limit_price, self.stop_price)
        self.occurred_at = _utc("occurred_at", self.occurred_at or utcnow())
        if not self.leader_order_id:
            self.leader_order_id = self.signal_id


class OrderIntent(_Base):
    """One follower's order derived from one signal: the input of the executor.

    ``client_order_id`` is the idempotency key derived from (signal, follower);
    ``target_client_order_id`` names the follower order a modify or cancel acts on.
    """

    client_order_id: str
    signal_id: str
    account_id: str
    platform: str
    leader_account: str
    action: str
    symbol: str
    side: str
    quantity: int
    order_type: str = "market"
    limit_price: Decimal | None = None
    stop_price: Decimal | None = None
    target_client_order_id: str | None = None
    leader_symbol: str = ""
    leader_quantity: int = 0
    stamps: dict[str, float] = {}  # noqa: RUF012
    # The fresh quote's reference price (mid, else last) when fan-out planned this copy, and the
    # price band that turned a leader's market order into this limit (agents/fanout/price_band.py).
    reference_price: Decimal | None = None
    band_ticks: int | None = None
    band_touch: Decimal | None = None
    # Stale copies (agents/execution/netting.py, docs/stale-copies.md): the copy group's limit on
    # a copy's age (None: never netted) and whether the copy reduces the follower's exposure
    # (served first from a short request budget).
    stale_after_s: float | None = None
    reduces_position: bool = False

    def __post_init__(self) -> None:
        _choice("action", self.action, INTENT_ACTIONS)
        _stale_fields(self.stale_after_s, self.reduces_position)
        _price("reference_price", self.reference_price)
        _price("band_touch", self.band_touch)
        _choice("side", self.side, tuple(s.value for s in Side))
        if self.action in ("place", "modify") and not 0 < self.quantity <= MAX_QUANTITY:
            raise RecordError("quantity", f"must be between 1 and {MAX_QUANTITY}; got {self.quantity}")
        if self.action == "place":
            _order_prices(self.order_type, self.limit_price, self.stop_price)
        if self.action in ("modify", "cancel") and not self.target_client_order_id:
            raise RecordError("target_client_order_id", f"required for {self.action}")


#: A stale-copy limit of an hour or more protects nothing (the config allows 0.5 to 3600 s).
MAX_STALE_AFTER_S = 3600.0


def _stale_fields(stale_after_s: object, reduces_position: object) -> None:
    """Finite, bounded, of the right type: a value off the wire must never stall a lane."""
    if stale_after_s is not None:
        number = stale_after_s if isinstance(stale_after_s, int | float) and not isinstance(stale_after_s, bool) else -1
        if not 0 < number <= MAX_STALE_AFTER_S:  # NaN fails both comparisons
            raise RecordError("stale_after_s", f"must be a number in (0, {MAX_STALE_AFTER_S:g}]; got {stale_after_s!r}")
    if not isinstance(reduces_position, bool):
        raise RecordError("reduces_position", f"must be true or false; got {reduces_position!r}")


class IntentBatch(_Base):
    """The intents of one signal that land on one ``orders.requests`` partition.

    One message per partition instead of one per follower: at 200 followers that is 10 Kafka
    messages per signal instead of 200, which is what keeps the fan-out tail short. Each
    account always maps to the same partition (Kafka's murmur2 of the account id), so
    per-account order holds exactly as if every intent were keyed by its account.
    """

    batch_id: str
    intents: list[OrderIntent]
    # Set by the consumer, not sent: when the broker appended this batch (LogAppendTime).
    appended: float | None = None


class Execution(_Base):
    """What the broker did with a follower order (or what the leader's own order did)."""

    execution_id: str
    account_id: str
    platform: str
    kind: str
    client_order_id: str | None = None
    broker_order_id: str | None = None
    signal_id: str | None = None
    symbol: str = ""
    side: str = ""
    quantity: int = 0
    price: Decimal | None = None
    cumulative_quantity: int = 0
    leaves_quantity: int = 0
    duplicate: bool = False
    is_leader: bool = False
    request_outcome: bool = False  # True on the executor's one answer to an intent (ack or reject)
    reason: str | None = None
    corrects: str | None = None  # fill_bust/fill_correction: execution id of the fill it changes
    original_quantity: int = 0
    original_price: Decimal | None = None
    occurred_at: datetime = faust.models.fields.DatetimeField(default=None, required=False)
    stamps: dict[str, float] = {}  # noqa: RUF012
    # Copied from the follower's intent: the reference price at fan-out and the price band.
    reference_price: Decimal | None = None
    band_ticks: int | None = None
    band_touch: Decimal | None = None

    def __post_init__(self) -> None:
        _choice("kind", self.kind, EXECUTION_KINDS)
        _price("price", self.price)
        _price("reference_price", self.reference_price)
        if self.occurred_at is None:
            self.occurred_at = utcnow()


class Position(_Base):
    """Net position of one account in one symbol, with realised P&L in the account currency."""

    account_id: str
    symbol: str
    net_quantity: int = 0
    average_price: Decimal | None = None
    realized_pnl: Decimal = Decimal(0)
    fills: int = 0
    recent_fill_ids: list[str] = []  # noqa: RUF012 - bounded window for duplicate-fill detection
    updated_at: datetime = faust.models.fields.DatetimeField(default=None, required=False)

    def __post_init__(self) -> None:
        if self.updated_at is None:
            self.updated_at = utcnow()


#: Records one ``trade.executions`` or ``positions.updates`` record carries at most: about
#: 0.7 KB each, so a record stays far below Kafka's 1 MB message limit.
MAX_PER_RECORD = 500
MAX_EXECUTIONS_PER_RECORD = MAX_PER_RECORD


def _check_batch(field: str, items: list[Any], kind: type) -> None:
    """A batch's bounds; reading the field also builds the nested records now, so a bad one
    fails the decode, not a later stage that iterates them (Faust builds them lazily)."""
    if not 0 < len(items) <= MAX_PER_RECORD:
        raise RecordError(field, f"must hold 1 to {MAX_PER_RECORD}; got {len(items)}")
    for item in items:
        if not isinstance(item, kind):
            raise RecordError(field, f"must hold {kind.__name__} records; got {type(item).__name__}")


class ExecutionBatch(_Base):
    """Executions of accounts that share one ``trade.executions`` partition, in their order.

    Why: every record costs each of its three to four consumers (tracker, sink, dashboard,
    observer) a fixed price in Kafka and Faust machinery that dwarfs the work on the record
    itself (#16). The executor publishes what it has queued for one partition as one record:
    a copy's ack and its immediate fill, or a signal's acks for every follower on that
    partition. An account always maps to the same partition (:func:`core.topics.partition_for`,
    Kafka's own partitioner), so per-account order and the tracker's co-partitioned table hold
    exactly as with one record per execution, as :class:`IntentBatch` does for intents.
    """

    executions: list[Execution]

    def __post_init__(self) -> None:
        _check_batch("executions", self.executions, Execution)


class PositionBatch(_Base):
    """The positions one ``trade.executions`` record moved, as one ``positions.updates`` record
    (its accounts share the partition, as they did in :class:`ExecutionBatch`)."""

    positions: list[Position]

    def __post_init__(self) -> None:
        _check_batch("positions", self.positions, Position)


def _carried(raw: bytes, field: str, batch: type[_Base], single: type[_Base]) -> list[Any]:
    """The records one batched topic's record carries: a batch, or one bare record (what
    producers before batching, and tools that write to the topic by hand, send).

    Raises ``ValueError`` (``RecordError`` or a JSON error) on anything else, so each consumer's
    poison-record guard reports and skips it.
    """
    data = json_loads(raw)
    if not isinstance(data, dict):
        raise RecordError(field, f"must be a JSON object; got {type(data).__name__}")
    try:
        if field in data:
            return list(getattr(batch.from_data(data), field))
        one = single.from_data(data)
    except TypeError as exc:  # a missing field, a list where a record belongs
        raise RecordError(field, str(exc)) from None
    if not isinstance(one, single):
        raise RecordError(field, f"not a {single.__name__}: {type(one).__name__}")
    return [one]


def executions_of(raw: bytes) -> list[Execution]:
    """The executions of one ``trade.executions`` record (see :func:`_carried`)."""
    return _carried(raw, "executions", ExecutionBatch, Execution)


def positions_of(raw: bytes) -> list[Position]:
    """The positions of one ``positions.updates`` record (see :func:`_carried`)."""
    return _carried(raw, "positions", PositionBatch, Position)


class AccountStatus(_Base):
    """Health of one account's broker session, as the dashboard shows it."""

    account_id: str
    platform: str
    connection: str
    circuit: str = "closed"
    rate_headroom: float = 1.0
    last_error: str | None = None
    orders_placed: int = 0
    rejects: int = 0
    last_copy_ms: float | None = None
    updated_at: datetime = faust.models.fields.DatetimeField(default=None, required=False)
    # Set only by the reconciler (``core/reconcile.py`` ``report``): broker-side positions and
    # working orders and the drift against the copy groups; None on session-health reports.
    reconciliation: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        if self.updated_at is None:
            self.updated_at = utcnow()


class OrderError(_Base):
    """Anything that did not become a follower order, with the reason: nothing vanishes."""

    error_id: str
    stage: str
    reason: str
    account_id: str = "unknown"
    signal_id: str | None = None
    client_order_id: str | None = None
    code: str | None = None
    payload: str | None = None
    occurred_at: datetime = faust.models.fields.DatetimeField(default=None, required=False)
    stamps: dict[str, float] = {}  # noqa: RUF012

    def __post_init__(self) -> None:
        _choice("stage", self.stage, ("ingest", "fanout", "execute", "track"))
        if self.occurred_at is None:
            self.occurred_at = utcnow()


class Heartbeat(_Base):
    """A worker is alive; ``roles`` says what it runs."""

    worker_id: str
    sequence: int
    roles: list[str] = []  # noqa: RUF012
    assigned_partitions: int = 0
    sent_at: datetime = faust.models.fields.DatetimeField(default=None, required=False)

    def __post_init__(self) -> None:
        if self.sent_at is None:
            self.sent_at = utcnow()


#: Errors one ``order.errors`` record carries at most: an error may carry a 4 KB payload (an
#: answer nobody could read), so fewer than executions, to stay far below Kafka's 1 MB limit.
MAX_ERRORS_PER_RECORD = 100


class ErrorBatch(_Base):
    """Errors of accounts that share one ``order.errors`` partition, in their order.

    Why: a netted run of stale copies reports each copy on ``order.errors``, and every record
    costs each of its consumers (notify, store, dashboard, observer) the fixed price of
    carrying a record (#16, #18's soak). The executor publishes what it queued for one
    partition as one record, as it does with :class:`ExecutionBatch`.
    """

    errors: list[OrderError]

    def __post_init__(self) -> None:
        if not 0 < len(self.errors) <= MAX_ERRORS_PER_RECORD:
            raise RecordError("errors", f"must hold 1 to {MAX_ERRORS_PER_RECORD}; got {len(self.errors)}")
        for error in self.errors:
            if not isinstance(error, OrderError):
                raise RecordError("errors", f"must hold OrderError records; got {type(error).__name__}")


def errors_of(raw: bytes) -> list[OrderError]:
    """The errors of one ``order.errors`` record: a batch, or one bare error (producers before
    batching, the fan-out and reconciler, tools), see :func:`_carried`."""
    return _carried(raw, "errors", ErrorBatch, OrderError)

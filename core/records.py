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
from ..common.bounds import (
    MAX_BROKER_ORDER_ID_LEN,
    MAX_DECIMAL_DIGITS,
    MAX_EXECUTION_ID_LEN,
    MAX_ID_LEN,
    MAX_POSITION_FILLS,
    MAX_POSITION_QUANTITY,
    MAX_PRICE,
    MAX_QUANTITY,
    MAX_REALIZED_PNL,
    MAX_REASON_LEN,
    MAX_RECENT_FILL_IDS,
    MAX_RECORD_STAMPS,
    MAX_SIGNAL_ID_LEN,
    MAX_STAMP_NAME_LEN,
    MAX_STAMP_S,
    MAX_SYMBOL_LEN,
)
from ..common.clock import utcnow
from . import fill_window, record_codec
from .record_codec import RecordError as RecordError  # where every stage imports it from
from .schemas.config import MAX_PRICE_BAND_TICKS

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


#: Allowed values named once: building these tuples from the enums on every record cost more
#: than the rest of an intent's checks.
SIDES = tuple(s.value for s in Side)
ORDER_TYPES = tuple(t.value for t in OrderType)


def _choice(field: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise RecordError(field, f"must be one of {', '.join(allowed)}; got {value!r}")


def _utc(field: str, value: datetime) -> datetime:
    """Aware times are normalised to UTC; a naive time is ambiguous and refused."""
    if value.tzinfo is None:
        raise RecordError(field, "must be timezone-aware (naive times are ambiguous)")
    return value.astimezone(UTC)


def _order_prices(order_type: str, limit: Decimal | None, stop: Decimal | None) -> None:
    _choice("order_type", order_type, ORDER_TYPES)
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

    @classmethod
    def loads(cls, s: bytes, *, default_serializer: Any = None, serializer: Any = None) -> Any:
        """Decoded by msgspec from the record's own fields (``core/record_codec.py``: 4–6×
        cheaper than Faust's coercion, and strict about types); the record's checks run as
        before."""
        return record_codec.decode(cls, s)

    @classmethod
    def from_data(cls, data: Any, *, preferred_type: Any = None) -> Any:
        """What Faust calls for an agent's ``value_type``, a table's values and a nested
        record: built as :meth:`loads` builds it. A record of another type (Faust's namespace
        says so) is left to Faust, which picks that type."""
        if isinstance(data, dict):
            meta = data.get("__faust")
            namespace = meta.get("ns") if isinstance(meta, dict) else None
            if namespace is None or namespace == cls._options.namespace:
                return record_codec.convert(cls, data)
        return super().from_data(data, preferred_type=preferred_type)


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
        _choice("side", self.side, SIDES)
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
        _choice("side", self.side, SIDES)
        if self.action in ("place", "modify") and not 0 < self.quantity <= MAX_QUANTITY:
            raise RecordError("quantity", f"must be between 1 and {MAX_QUANTITY}; got {self.quantity}")
        if self.action == "place":
            _order_prices(self.order_type, self.limit_price, self.stop_price)
        if self.action in ("modify", "cancel") and not self.target_client_order_id:
            raise RecordError("target_client_order_id", f"required for {self.action}")
        _copied_into_executions(self)


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


EXECUTION_SIDES = ("", *SIDES)  # "" on executions that carry no side (a warm-up ack)


def _text(field: str, value: object, maximum: int, *, optional: bool = False, empty: bool = True) -> None:
    """A string of at most ``maximum`` characters (None only when ``optional``)."""
    if value is None and optional:
        return
    if not isinstance(value, str):
        raise RecordError(field, f"must be text; got {type(value).__name__}")
    if len(value) > maximum or (not empty and not value):
        raise RecordError(field, f"must be 1 to {maximum} characters; got {len(value)}")


def _whole(field: str, value: object, low: int, high: int, *, optional: bool = False) -> None:
    """An int in [low, high]; a bool is not a number here (``True`` contracts is a bug)."""
    if value is None and optional:
        return
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise RecordError(field, f"must be a whole number in {low}..{high}; got {_short(value)}")


def _decimal(field: str, value: object, maximum: Decimal, *, signed: bool = False, optional: bool = True) -> None:
    """A finite Decimal of at most MAX_DECIMAL_DIGITS digits: positive and at most ``maximum``,
    or with ``signed`` any sign within ``±maximum``. ``NaN`` fails every comparison, and a
    60,000-digit number costs real CPU in every sum it meets."""
    if value is None and optional:
        return
    if not isinstance(value, Decimal) or not value.is_finite():
        raise RecordError(field, f"must be a finite decimal; got {_short(value)}")
    if len(value.as_tuple().digits) > MAX_DECIMAL_DIGITS:
        raise RecordError(field, f"at most {MAX_DECIMAL_DIGITS} significant digits")
    if not (-maximum <= value <= maximum if signed else 0 < value <= maximum):
        span = f"within ±{maximum}" if signed else f"positive and at most {maximum}"
        raise RecordError(field, f"must be {span}; got {value:.6g}")


def _flag(field: str, value: object) -> None:
    if not isinstance(value, bool):
        raise RecordError(field, f"must be true or false; got {_short(value)}")


def _stamps(value: object) -> None:
    """Stage stamps: a few dozen short names, each a finite ``time.time()`` (bools refused):
    a text stamp used to raise TypeError in the tracker, outside any guard."""
    if not isinstance(value, dict) or len(value) > MAX_RECORD_STAMPS:
        raise RecordError("stamps", f"must map at most {MAX_RECORD_STAMPS} stage names to times")
    for name, at in value.items():
        if at.__class__ is float and 0.0 <= at <= MAX_STAMP_S and name.__class__ is str:
            if 0 < len(name) <= MAX_STAMP_NAME_LEN:
                continue  # the usual case, inline: every record, every stage
        if not isinstance(name, str) or not 0 < len(name) <= MAX_STAMP_NAME_LEN:
            raise RecordError("stamps", f"stage names are 1 to {MAX_STAMP_NAME_LEN} characters")
        if not isinstance(at, int | float) or isinstance(at, bool) or not 0 <= at <= MAX_STAMP_S:
            raise RecordError("stamps", f"{name} must be a time in seconds; got {_short(at)}")


def _prose(field: str, value: object) -> str | None:
    """Text for people, cut to MAX_REASON_LEN rather than refused (see there)."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise RecordError(field, f"must be text; got {type(value).__name__}")
    return value if len(value) <= MAX_REASON_LEN else value[: MAX_REASON_LEN - 1] + "…"


def _short(value: object) -> str:
    """A refused value in an error message, cut: the message goes to logs and order.errors."""
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _copied_into_executions(intent: OrderIntent) -> None:
    """What the executor copies from an intent into its ack or reject :class:`Execution`
    passes that record's bounds here, at the intent's door: refused there, it would fail
    while the lane reports the intent, where nothing can say so any more."""
    _whole("quantity", intent.quantity, 0, MAX_POSITION_QUANTITY)  # a flatten's; placed orders: MAX_QUANTITY
    _text("account_id", intent.account_id, MAX_ID_LEN, empty=False)
    _text("platform", intent.platform, MAX_ID_LEN)
    _text("client_order_id", intent.client_order_id, MAX_ID_LEN)
    _text("signal_id", intent.signal_id, MAX_SIGNAL_ID_LEN)
    _text("symbol", intent.symbol, MAX_SYMBOL_LEN)
    _decimal("reference_price", intent.reference_price, MAX_PRICE)
    _decimal("band_touch", intent.band_touch, MAX_PRICE)
    _whole("band_ticks", intent.band_ticks, 0, MAX_PRICE_BAND_TICKS, optional=True)
    _stamps(intent.stamps)


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
        # Read from __dict__: Faust's field descriptors cost a Python call per attribute read,
        # and this runs for every execution every stage builds or reads (#16).
        values = self.__dict__
        _choice("kind", values["kind"], EXECUTION_KINDS)
        for name, maximum, optional in _EXECUTION_TEXT:
            value = values[name]
            if not (value.__class__ is str and 0 < len(value) <= maximum):  # the usual case, inline
                _text(name, value, maximum, optional=optional, empty=name not in _NOT_EMPTY)
        _choice("side", values["side"], EXECUTION_SIDES)
        # A flatten closes a whole position with one order, so an execution (its ack, its fill)
        # may carry a position's contracts: more than a copied order's MAX_QUANTITY.
        for name in ("quantity", "cumulative_quantity", "leaves_quantity", "original_quantity"):
            value = values[name]
            if not (value.__class__ is int and 0 <= value <= MAX_POSITION_QUANTITY):
                _whole(name, value, 0, MAX_POSITION_QUANTITY)
        for name in ("price", "original_price", "reference_price", "band_touch"):
            if values[name] is not None:
                _decimal(name, values[name], MAX_PRICE)
        if values["band_ticks"] is not None:
            _whole("band_ticks", values["band_ticks"], 0, MAX_PRICE_BAND_TICKS)
        for name in ("duplicate", "is_leader", "request_outcome"):
            if values[name].__class__ is not bool:
                _flag(name, values[name])
        reason = values["reason"]
        if reason is not None and (not isinstance(reason, str) or len(reason) > MAX_REASON_LEN):
            self.reason = _prose("reason", reason)
        _stamps(values["stamps"])
        if values["occurred_at"] is None:
            values["occurred_at"] = utcnow()  # what the field's descriptor stores for a datetime
        elif not isinstance(values["occurred_at"], datetime):
            raise RecordError("occurred_at", "must be an ISO time")


#: Execution's text fields: (name, most characters, may be None).
_EXECUTION_TEXT = (
    ("execution_id", MAX_EXECUTION_ID_LEN, False),
    ("account_id", MAX_ID_LEN, False),
    ("platform", MAX_ID_LEN, False),
    ("client_order_id", MAX_ID_LEN, True),
    ("broker_order_id", MAX_BROKER_ORDER_ID_LEN, True),
    ("signal_id", MAX_SIGNAL_ID_LEN, True),
    ("symbol", MAX_SYMBOL_LEN, False),
    ("corrects", MAX_EXECUTION_ID_LEN, True),
)
_NOT_EMPTY = frozenset({"execution_id", "account_id"})


#: A position's fields that are the tracker's duplicate-fill window: no view shows them.
POSITION_WINDOW_FIELDS = frozenset({"recent_fill_ids", "fill_window"})


class Position(_Base):
    """Net position of one account in one symbol, with realised P&L in the account currency."""

    account_id: str
    symbol: str
    net_quantity: int = 0
    average_price: Decimal | None = None
    realized_pnl: Decimal = Decimal(0)
    fills: int = 0
    #: Read only: the window as positions written before session 27 carried it (a list of fill
    #: ids). A record built with it holds it in ``fill_window`` instead, and this list empty.
    recent_fill_ids: list[str] = []  # noqa: RUF012 - Faust copies defaults per instance
    updated_at: datetime = faust.models.fields.DatetimeField(default=None, required=False)
    #: The recent fill ids' digests, the tracker's duplicate-fill check (``core/fill_window.py``).
    fill_window: str = ""

    def __post_init__(self) -> None:
        values = self.__dict__  # see Execution.__post_init__
        _text("account_id", values["account_id"], MAX_ID_LEN, empty=False)
        _text("symbol", values["symbol"], MAX_SYMBOL_LEN)
        _whole("net_quantity", values["net_quantity"], -MAX_POSITION_QUANTITY, MAX_POSITION_QUANTITY)
        _decimal("average_price", values["average_price"], MAX_PRICE)
        _decimal("realized_pnl", values["realized_pnl"], MAX_REALIZED_PNL, signed=True, optional=False)
        _whole("fills", values["fills"], 0, MAX_POSITION_FILLS)
        window = values["fill_window"]
        if window != "":
            problem = fill_window.problem(window)
            if problem is not None:
                raise RecordError("fill_window", problem)
        fill_ids = values["recent_fill_ids"]
        if fill_ids:
            if not isinstance(fill_ids, list) or len(fill_ids) > MAX_RECENT_FILL_IDS:
                raise RecordError("recent_fill_ids", f"must list at most {MAX_RECENT_FILL_IDS} execution ids")
            for fill_id in fill_ids:
                _text("recent_fill_ids", fill_id, MAX_EXECUTION_ID_LEN)
            # A position from the old changelog: its ids become the window, so a fill counted
            # before the upgrade is still recognised when it is delivered again after it.
            self.fill_window = fill_window.of_ids(fill_ids, window)
            self.recent_fill_ids = []
        elif not isinstance(fill_ids, list):
            raise RecordError("recent_fill_ids", f"must list at most {MAX_RECENT_FILL_IDS} execution ids")
        if values["updated_at"] is None:
            self.updated_at = utcnow()
        elif not isinstance(values["updated_at"], datetime):
            raise RecordError("updated_at", "must be an ISO time")


#: Records one ``trade.executions`` or ``positions.updates`` record carries at most: about
#: 0.7 KB each, so a record stays far below Kafka's 1 MB message limit.
MAX_PER_RECORD = 500
MAX_EXECUTIONS_PER_RECORD = MAX_PER_RECORD


def _check_batch(field: str, items: list[Any], kind: type) -> None:
    """A batch's bounds and item types (the decoder has already built the nested records;
    a batch built in Python may still hold something else)."""
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
    poison-record guard reports and skips it: whatever goes wrong while decoding (a type,
    an overflow, a date nobody can read) is a ``RecordError``, never another exception.
    """
    if isinstance(raw, bytes) and raw.startswith(b'{"' + field.encode() + b'":'):
        # What every producer writes (the batch's one field first): decoded straight from the
        # bytes, without a dict in between (``core/record_codec.py``).
        try:
            return list(getattr(record_codec.decode(batch, raw), field))
        except RecordError:
            raise
        except Exception as exc:  # noqa: BLE001 - as below: the record, never the stage
            raise RecordError(field, str(exc)[:300] or type(exc).__name__) from None
    data = json_loads(raw)  # orjson's JSONDecodeError is a ValueError, for bytes that are not JSON or not bytes
    if not isinstance(data, dict):
        raise RecordError(field, f"must be a JSON object; got {type(data).__name__}")
    # Faust's type tag decides nothing: the topic says what it carries, and a tag naming no
    # record made Faust raise KeyError (past every ValueError guard), one naming another record
    # built that record. (Nested records' tags are unknown fields to the strict decoder.)
    data.pop("__faust", None)
    try:
        if field in data:
            items = data[field]
            if not isinstance(items, list) or not 0 < len(items) <= MAX_PER_RECORD:
                raise RecordError(field, f"must be a list of 1 to {MAX_PER_RECORD}")
            return list(getattr(batch.from_data(data), field))
        one = single.from_data(data)
    except RecordError:
        raise
    except Exception as exc:  # noqa: BLE001 - a missing field, a bad date...: the record, never the stage
        raise RecordError(field, str(exc)[:300] or type(exc).__name__) from None
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
        # Text for people, often a broker's own words (an exception's message, an answer
        # nobody could read): cut as an execution's reason is, so no error outgrows a record.
        for name in ("reason", "payload"):
            value = self.__dict__[name]
            if isinstance(value, str) and len(value) > MAX_REASON_LEN:
                setattr(self, name, _prose(name, value))
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

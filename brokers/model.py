"""The broker-neutral order model every adapter speaks.

Plain dataclasses, no Faust: ``brokers/`` is asyncio code that must not depend on the stream
application. Commands are immutable and carry the client order id derived upstream, so a
redelivered command can never become a second order. Prices are ``Decimal`` and times are
timezone-aware UTC.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from ..common.clock import utcnow  # timezone-aware now: naive datetimes never enter the model


class Side(str, enum.Enum):
    BUY = "buy"
    SELL = "sell"

    @property
    def sign(self) -> int:
        return 1 if self is Side.BUY else -1

    def opposite(self) -> Side:
        return Side.SELL if self is Side.BUY else Side.BUY


class OrderType(str, enum.Enum):
    MARKET = "market"
    LIMIT = "limit"
    STOP = "stop"
    STOP_LIMIT = "stop_limit"


class TimeInForce(str, enum.Enum):
    DAY = "day"
    GTC = "gtc"
    IOC = "ioc"
    FOK = "fok"


class OrderStatus(str, enum.Enum):
    PENDING = "pending"
    WORKING = "working"
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    CANCELLED = "cancelled"
    REJECTED = "rejected"
    EXPIRED = "expired"

    @property
    def is_final(self) -> bool:
        return self in _FINAL_STATUSES


_FINAL_STATUSES = frozenset({OrderStatus.FILLED, OrderStatus.CANCELLED, OrderStatus.REJECTED, OrderStatus.EXPIRED})


class ConnectionState(str, enum.Enum):
    DISCONNECTED = "disconnected"
    CONNECTING = "connecting"
    CONNECTED = "connected"
    DEGRADED = "degraded"


# --------------------------------------------------------------------------- commands


@dataclass(frozen=True, slots=True)
class Bracket:
    """Exit orders attached to an entry, as distances from the entry fill price.

    ``reference_price`` is where a platform that needs absolute exit prices before the fill
    (Tradovate placeOSO) anchors them when the entry has no price of its own (a market entry):
    the copier knows it, it is the leader's fill. The adapter re-anchors at the real fill.
    """

    take_profit: Decimal | None = None
    stop_loss: Decimal | None = None
    reference_price: Decimal | None = None


@dataclass(frozen=True, slots=True)
class PlaceOrder:
    """NewOrderSingle: place one order on one account."""

    account_id: str
    client_order_id: str
    symbol: str
    side: Side
    quantity: int
    order_type: OrderType = OrderType.MARKET
    limit_price: Decimal | None = None
    stop_price: Decimal | None = None
    time_in_force: TimeInForce = TimeInForce.DAY
    bracket: Bracket | None = None

    def __post_init__(self) -> None:
        if self.quantity <= 0:
            raise ValueError(f"quantity must be positive, got {self.quantity}")
        needs_limit = self.order_type in (OrderType.LIMIT, OrderType.STOP_LIMIT)
        needs_stop = self.order_type in (OrderType.STOP, OrderType.STOP_LIMIT)
        if needs_limit and self.limit_price is None:
            raise ValueError(f"{self.order_type.value} order needs limit_price")
        if needs_stop and self.stop_price is None:
            raise ValueError(f"{self.order_type.value} order needs stop_price")


@dataclass(frozen=True, slots=True)
class ModifyOrder:
    """OrderCancelReplaceRequest: change quantity or prices of a working order."""

    account_id: str
    client_order_id: str
    quantity: int | None = None
    limit_price: Decimal | None = None
    stop_price: Decimal | None = None


@dataclass(frozen=True, slots=True)
class CancelOrder:
    """OrderCancelRequest, addressed by the client order id we assigned."""

    account_id: str
    client_order_id: str


@dataclass(frozen=True, slots=True)
class FlattenPosition:
    """Cancel working orders and close the position in one symbol (or all when ``None``)."""

    account_id: str
    client_order_id: str
    symbol: str | None = None


# --------------------------------------------------------------------------- results


@dataclass(frozen=True, slots=True)
class OrderAck:
    """The broker accepted a request; ``duplicate`` says it had seen the client id before."""

    account_id: str
    client_order_id: str
    broker_order_id: str
    status: OrderStatus
    acked_at: datetime = field(default_factory=utcnow)
    duplicate: bool = False


# --------------------------------------------------------------------------- events


@dataclass(frozen=True, slots=True)
class OrderEvent:
    """An order changed state at the broker (accepted, modified, cancelled, rejected...)."""

    account_id: str
    client_order_id: str | None
    broker_order_id: str
    symbol: str
    side: Side
    order_type: OrderType
    quantity: int
    status: OrderStatus
    filled_quantity: int = 0
    limit_price: Decimal | None = None
    stop_price: Decimal | None = None
    reason: str | None = None
    timestamp: datetime = field(default_factory=utcnow)


@dataclass(frozen=True, slots=True)
class FillEvent:
    """One execution; ``leaves_quantity > 0`` means the fill was partial."""

    account_id: str
    client_order_id: str | None
    broker_order_id: str
    fill_id: str
    symbol: str
    side: Side
    quantity: int
    price: Decimal
    cumulative_quantity: int
    leaves_quantity: int
    timestamp: datetime = field(default_factory=utcnow)

    @property
    def is_partial(self) -> bool:
        return self.leaves_quantity > 0


@dataclass(frozen=True, slots=True)
class FillCorrection:
    """The broker busted or corrected an execution it had reported as ``fill_id``.

    FIX ExecType H (Trade Cancel) and G (Trade Correct); Tradovate execType ``TradeCancel`` /
    ``TradeCorrect``. A separate event, not a flag on :class:`FillEvent`, so a consumer that
    does not know it ignores it instead of counting it as one more fill. ``busted`` means the
    execution never happened (``quantity`` 0, ``price`` None); otherwise ``quantity``/``price``
    replace ``original_quantity``/``original_price``, the values reported before (so a position
    can be corrected without keeping every fill). ``correction_id`` is unique per correction.
    """

    account_id: str
    client_order_id: str | None
    broker_order_id: str
    fill_id: str
    correction_id: str
    symbol: str
    side: Side
    busted: bool
    quantity: int
    price: Decimal | None
    original_quantity: int
    original_price: Decimal
    timestamp: datetime = field(default_factory=utcnow)


@dataclass(frozen=True, slots=True)
class PositionEvent:
    """The broker's own view of a position (net quantity, signed)."""

    account_id: str
    symbol: str
    net_quantity: int
    average_price: Decimal | None
    realized_pnl: Decimal = Decimal(0)
    timestamp: datetime = field(default_factory=utcnow)


@dataclass(frozen=True, slots=True)
class ConnectionEvent:
    """The session's transport changed state (used for health and reconnect handling)."""

    state: ConnectionState
    reason: str | None = None
    timestamp: datetime = field(default_factory=utcnow)


BrokerEvent = OrderEvent | FillEvent | FillCorrection | PositionEvent | ConnectionEvent


# --------------------------------------------------------------------------- snapshots


@dataclass(frozen=True, slots=True)
class AccountSnapshot:
    """What the broker says now: used to reconcile after a reconnect."""

    account_id: str
    balance: Decimal
    open_orders: tuple[OrderEvent, ...]
    positions: tuple[PositionEvent, ...]
    taken_at: datetime = field(default_factory=utcnow)


@dataclass(frozen=True, slots=True)
class SessionHealth:
    """Health a session reports; ``rate_headroom`` is the fraction of its request budget left."""

    platform: str
    state: ConnectionState
    circuit: str = "closed"
    last_error: str | None = None
    rate_headroom: float = 1.0
    latency_ms_p50: float | None = None
    checked_at: datetime = field(default_factory=utcnow)


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What a platform can do; the executor and conformance suite read it, never guess.

    ``client_id_dedupe``: the platform documents that it refuses a second order with the same
    client order id. No platform we support does, so this stays False and the executor looks
    an order up (``BrokerAdapter.lookup``) instead of trusting a resend.
    ``lookup``: the adapter can find an order at the broker by our client order id.
    ``fill_corrections``: the adapter reports busted/corrected executions as ``FillCorrection``.
    ``reject_reasons``: a reject carries the broker's reason text (NinjaTrader's ATI reports
    only the state ``Rejected``; the copy is still reported rejected, with no text to show).
    """

    order_entry: bool = True
    market_data: bool = False
    order_types: frozenset[OrderType] = frozenset(OrderType)
    modify: bool = True
    brackets: bool = False
    oco: bool = False
    flatten: bool = True
    client_id_dedupe: bool = False
    lookup: bool = True
    partial_fills: bool = True
    snapshot: bool = True
    fill_corrections: bool = False
    reject_reasons: bool = True

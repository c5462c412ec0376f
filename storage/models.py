"""The database schema as SQLAlchemy 2.x typed models.

Money and prices are ``Numeric(18, 6)`` (never floats); every timestamp is stored in UTC and
read back timezone-aware (:class:`UTCDateTime`), because SQLite keeps no offset and a naive
time read back from it would silently be taken as local time.

The migrations in ``storage/migrations`` create exactly this schema (a test compares them);
``position_snapshots`` and ``pnl_series`` are created there as TimescaleDB hypertables or
PostgreSQL range-partitioned tables when the database allows, which the model does not need to
know: their primary keys include ``ts`` so all three layouts accept the same rows.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Numeric,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

from ..common.bounds import MAX_EXECUTION_ID_LEN, MAX_ID_LEN, MAX_SIGNAL_ID_LEN
from ..common.clock import utcnow

#: An audit entry's natural id: a signal's, an intent's, an execution's (the longest, 512) or an
#: error's id (``<signal id>|<stage>`` and the like: at most a signal id and a short suffix).
MAX_NATURAL_ID_LEN = MAX_EXECUTION_ID_LEN + 64

CORRECTS_WHERE = "corrects IS NOT NULL"
AUDIT_KINDS = ("signal", "intent", "request", "response", "execution", "error")
MONEY = Numeric(18, 6)
NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """``DateTime(timezone=True)`` that refuses naive input and always returns aware UTC."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime refused: store timezone-aware UTC times")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: UTCDateTime(),
        Decimal: MONEY,
        dict[str, Any]: JSON(),
    }


class User(Base):
    """A dashboard login; ``password_hash`` is a ``storage.passwords`` scrypt string."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(256))
    is_active: Mapped[bool] = mapped_column(Boolean, default=True, server_default="1")
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")
    created_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=func.now())
    last_login_at: Mapped[datetime | None]


class Account(Base):
    """A trading account, leader or follower (mirrors ``accounts:`` of the copy config)."""

    __tablename__ = "accounts"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    platform: Mapped[str] = mapped_column(String(32))
    session: Mapped[str] = mapped_column(String(64))
    broker_account: Mapped[str] = mapped_column(String(128))
    size: Mapped[Decimal] = mapped_column(MONEY, default=Decimal(50000))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True, server_default="1")
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow, server_default=func.now())


class BrokerCredential(Base):
    """One broker session's secret, encrypted by ``storage.crypto`` (never stored in clear).

    ``key_id`` is a short fingerprint of the key that encrypted the blob, so a wrong key is
    reported as such instead of as corrupted data, and key rotation knows what to re-encrypt.
    """

    __tablename__ = "broker_credentials"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    session: Mapped[str] = mapped_column(String(64), unique=True)
    platform: Mapped[str] = mapped_column(String(32))
    username: Mapped[str | None] = mapped_column(String(128))
    secret_blob: Mapped[bytes] = mapped_column(LargeBinary)
    key_id: Mapped[str] = mapped_column(String(16))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow, server_default=func.now())


class CopyGroup(Base):
    """A leader and the followers that copy it (``copy_groups:`` of the config)."""

    __tablename__ = "copy_groups"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    leader_account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True, server_default="1")
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow, server_default=func.now())


class CopyRule(Base):
    """How one follower of one group scales the leader (fields of ``app.scaling.CopyRule``)."""

    __tablename__ = "copy_rules"
    __table_args__ = (UniqueConstraint("group_id", "follower_account_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    group_id: Mapped[str] = mapped_column(ForeignKey("copy_groups.id", ondelete="CASCADE"))
    follower_account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"))
    mode: Mapped[str] = mapped_column(String(16), default="multiplier")
    quantity: Mapped[int] = mapped_column(Integer, default=1)
    multiplier: Mapped[Decimal] = mapped_column(MONEY, default=Decimal(1))
    max_quantity: Mapped[int | None] = mapped_column(Integer)
    min_quantity: Mapped[int] = mapped_column(Integer, default=1)
    inverse: Mapped[bool] = mapped_column(Boolean, default=False)
    symbol_map: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True, server_default="1")


class AuditEntry(Base):
    """One link of the append-only, hash-chained audit log (see ``storage.audit``).

    ``natural_id`` is the record's own id (signal id, client order id, execution id, error
    id): ``(kind, natural_id)`` is unique, so a Kafka redelivery cannot append twice. Update
    and delete are refused by triggers the migration installs; the hash chain catches what a
    privileged user does anyway.
    """

    __tablename__ = "audit_log"
    __table_args__ = (
        UniqueConstraint("kind", "natural_id"),
        CheckConstraint(f"kind IN ({', '.join(repr(k) for k in AUDIT_KINDS)})", name="kind"),
        # 0005: only this secondary index; an order's entries are found through the unique
        # (kind, natural_id) and the executions table (see the migration).
        Index(None, "signal_id"),
    )

    seq: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=False
    )
    occurred_at: Mapped[datetime]
    kind: Mapped[str] = mapped_column(String(16))
    # As wide as the records' doors let ids through (0004: they were 200, and PostgreSQL refused
    # a longer execution or signal id, leaving its execution out of the store and this log).
    natural_id: Mapped[str] = mapped_column(String(MAX_NATURAL_ID_LEN))
    signal_id: Mapped[str | None] = mapped_column(String(MAX_SIGNAL_ID_LEN))
    client_order_id: Mapped[str | None] = mapped_column(String(64))
    account_id: Mapped[str | None] = mapped_column(String(64))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    latency_ms: Mapped[float | None] = mapped_column(Float)
    prev_hash: Mapped[str] = mapped_column(String(64))
    # Not unique since 0005: each hash covers its seq (the primary key) and the previous hash.
    hash: Mapped[str] = mapped_column(String(64))
    recorded_at: Mapped[datetime] = mapped_column(default=utcnow)


class ExecutionRow(Base):
    """Every ``Execution`` record, with its stage stamps and the latencies derived from them.

    The latencies are computed once at write time (``storage.mapping``) so reports can filter
    and aggregate them with plain SQL on both dialects instead of parsing JSON per row.
    """

    __tablename__ = "executions"
    __table_args__ = (
        Index(None, "occurred_at"),  # 0005: the reports' range of days (was per account, per platform)
        Index(None, "client_order_id"),
        Index(None, "signal_id"),
        # NULL except on a bust or correction (0005: partial)
        Index(None, "corrects", sqlite_where=text(CORRECTS_WHERE), postgresql_where=text(CORRECTS_WHERE)),
        Index(None, "broker_order_id"),  # 0003: a copy's slippage looks up its leader's fills by it
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True)
    execution_id: Mapped[str] = mapped_column(String(MAX_EXECUTION_ID_LEN), unique=True)
    account_id: Mapped[str] = mapped_column(String(64))
    platform: Mapped[str] = mapped_column(String(MAX_ID_LEN))
    kind: Mapped[str] = mapped_column(String(16))
    client_order_id: Mapped[str | None] = mapped_column(String(64))
    broker_order_id: Mapped[str | None] = mapped_column(String(128))
    signal_id: Mapped[str | None] = mapped_column(String(MAX_SIGNAL_ID_LEN))
    symbol: Mapped[str] = mapped_column(String(32), default="")
    side: Mapped[str] = mapped_column(String(8), default="")
    quantity: Mapped[int] = mapped_column(Integer, default=0)
    price: Mapped[Decimal | None] = mapped_column(MONEY)
    cumulative_quantity: Mapped[int] = mapped_column(Integer, default=0)
    leaves_quantity: Mapped[int] = mapped_column(Integer, default=0)
    is_leader: Mapped[bool] = mapped_column(Boolean, default=False)
    duplicate: Mapped[bool] = mapped_column(Boolean, default=False)
    request_outcome: Mapped[bool] = mapped_column(Boolean, default=False)
    reason: Mapped[str | None] = mapped_column(Text)
    occurred_at: Mapped[datetime]
    stamps: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    e2e_ms: Mapped[float | None] = mapped_column(Float)
    internal_ms: Mapped[float | None] = mapped_column(Float)
    fill_ms: Mapped[float | None] = mapped_column(Float)
    # A bust or correction names the fill it changes (its execution id) and what it was (0002).
    corrects: Mapped[str | None] = mapped_column(String(MAX_EXECUTION_ID_LEN))
    original_quantity: Mapped[int | None] = mapped_column(Integer)
    original_price: Mapped[Decimal | None] = mapped_column(MONEY)
    # The copy's reference price at fan-out and its price band (from the record), and the
    # slippage of a follower fill, positive = worse for the follower, NULL = unknown (0003,
    # ``storage.slippage``): against the leader's average fill and against the reference.
    reference_price: Mapped[Decimal | None] = mapped_column(MONEY)
    band_ticks: Mapped[int | None] = mapped_column(Integer)
    band_touch: Mapped[Decimal | None] = mapped_column(MONEY)
    leader_price: Mapped[Decimal | None] = mapped_column(MONEY)
    slippage_leader_ticks: Mapped[Decimal | None] = mapped_column(MONEY)
    slippage_leader_amount: Mapped[Decimal | None] = mapped_column(MONEY)
    slippage_ref_ticks: Mapped[Decimal | None] = mapped_column(MONEY)
    slippage_ref_amount: Mapped[Decimal | None] = mapped_column(MONEY)


class PositionSnapshot(Base):
    """Every ``positions.updates`` record: the full-resolution position history (time series)."""

    __tablename__ = "position_snapshots"

    account_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    symbol: Mapped[str] = mapped_column(String(32), primary_key=True)
    ts: Mapped[datetime] = mapped_column(primary_key=True)
    net_qty: Mapped[int] = mapped_column(Integer)
    avg_price: Mapped[Decimal | None] = mapped_column(MONEY)
    realized_pnl: Mapped[Decimal] = mapped_column(MONEY)
    fills: Mapped[int] = mapped_column(Integer, default=0)


class PnlPoint(Base):
    """P&L per (account, symbol) per minute: the last position of each minute (time series).

    Charts and daily P&L read this compact series instead of every snapshot; the row of a
    minute is upserted only by a newer ``last_update_at``, so a redelivered older update
    cannot move it backwards.
    """

    __tablename__ = "pnl_series"

    account_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    symbol: Mapped[str] = mapped_column(String(32), primary_key=True)
    ts: Mapped[datetime] = mapped_column(primary_key=True)
    last_update_at: Mapped[datetime]
    net_qty: Mapped[int] = mapped_column(Integer)
    avg_price: Mapped[Decimal | None] = mapped_column(MONEY)
    realized_pnl: Mapped[Decimal] = mapped_column(MONEY)


class StorageMeta(Base):
    """Facts about this database that code must look up, e.g. which time-series layout ran."""

    __tablename__ = "storage_meta"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

"""Engines and the few dialect differences the rest of the package must not care about.

SQLite is the embedded default, PostgreSQL the production database; the helpers here hide the
three places where they differ for us: connection set-up (pragmas), "insert unless present"
(both spell it ``ON CONFLICT``, through different SQLAlchemy constructs) and "the UTC day of a
timestamp" for daily reports.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import Engine, create_engine, event, func
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.sql import ColumnElement

from . import DEFAULT_DATABASE_URL


def database_url_from_env(url: str | None = None) -> str:
    """An explicit URL wins, then ``COPYTRADER_DATABASE_URL``, then the embedded SQLite file."""
    return url or os.environ.get("COPYTRADER_DATABASE_URL") or DEFAULT_DATABASE_URL


def make_engine(url: str | None = None, **kw: Any) -> Engine:
    """Create an engine; for a SQLite file, create its folder and switch on WAL and FKs.

    WAL lets the dashboard read while the sink writes; ``foreign_keys`` is off by default in
    SQLite, which would let copy rules point at accounts that do not exist.
    """
    url = database_url_from_env(url)
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database or ""
        if database and database != ":memory:" and not database.startswith("file:"):
            Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        kw.setdefault("connect_args", {"timeout": 30})
    else:
        kw.setdefault("pool_pre_ping", True)
        if parsed.get_driver_name() == "psycopg2":
            # An executemany SQLAlchemy cannot fold into multi-row INSERTs (an UPDATE; an INSERT
            # ... ON CONFLICT without RETURNING, since 2.1) goes in pages of statements per
            # round trip instead of one round trip per row (#16).
            kw.setdefault("executemany_mode", "values_plus_batch")
    kw.setdefault("json_serializer", serialize_json)
    engine = create_engine(url, **kw)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


class JsonText(str):
    """JSON already encoded (the audit payload's canonical text): :func:`serialize_json` stores
    it as it is instead of encoding the same value a second time."""

    __slots__ = ()


_STR = frozenset({str})
_FLOAT = frozenset({float})


def serialize_json(value: Any) -> str:
    """The JSON columns' encoder on our engines: ``json.dumps``, except for :class:`JsonText`
    and a dict of finite floats by name (an execution's stage stamps), which orjson encodes in
    a tenth of the time (#16): the same numbers read back, spelled without spaces."""
    kind = type(value)
    if kind is JsonText:
        return str.__str__(value)
    if (
        kind is dict
        and {*map(type, value.values())} == _FLOAT
        and {*map(type, value)} == _STR
        and all(map(math.isfinite, value.values()))
    ):
        return orjson.dumps(value).decode()
    return json.dumps(value)


def stores_json_text(db: Session | Any) -> bool:
    """Whether this session's engine stores :class:`JsonText` as JSON (one made by
    :func:`make_engine`); any other engine would store it as a JSON string, so it gets values."""
    return getattr(db.get_bind().dialect, "_json_serializer", None) is serialize_json


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
    finally:
        cursor.close()


def session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions that keep loaded values after commit (rows are handed to other threads)."""
    return sessionmaker(engine, expire_on_commit=False)


def insert_for(dialect_name: str, table: Any) -> postgresql.Insert | sqlite.Insert:
    """A dialect ``INSERT`` that supports ``on_conflict_do_nothing`` / ``_do_update``."""
    if dialect_name == "postgresql":
        return postgresql.insert(table)
    if dialect_name == "sqlite":
        return sqlite.insert(table)
    raise ValueError(f"unsupported database {dialect_name!r}: CopyTrader stores to SQLite or PostgreSQL")


def utc_day(dialect_name: str, column: Any) -> ColumnElement[Any]:
    """The UTC calendar day of a timestamp column, for ``GROUP BY``.

    On SQLite timestamps are stored as naive UTC strings, so ``date()`` is already the UTC
    day; PostgreSQL's ``timestamptz`` must be converted explicitly, or the session time zone
    would decide which day a trade at 23:30 UTC belongs to.
    """
    if dialect_name == "postgresql":
        return func.date(func.timezone("UTC", column))
    return func.date(column)

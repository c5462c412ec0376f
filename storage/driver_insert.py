"""Bulk inserts on SQLite compiled once, their parameters converted in one tight loop (#16).

A Core ``executemany`` costs SQLAlchemy's per-row parameter machinery (``construct_params``,
a dict per row, then each column's bind processor through the type system): about as much CPU
as SQLite's own insert. :class:`DriverInsert` compiles the statement once for the engine's
dialect, converts each row to the tuple the driver takes with the very bind processors
SQLAlchemy would apply (a faster, tested equivalent for :class:`~.models.UTCDateTime`), and
hands the batch to ``exec_driver_sql``: same SQL, same values, same wrapped errors.

SQLite only: on PostgreSQL SQLAlchemy's ``insertmanyvalues`` turns an executemany into a few
multi-row statements, which matters more there than the parameter machinery, so the writer
keeps Core's path for it (:func:`bulk_insert`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Dialect
from sqlalchemy.exc import StatementError
from sqlalchemy.orm import Session
from sqlalchemy.sql.dml import Insert

from .models import UTCDateTime

Convert = Callable[[Any], Any]


def utc_text(slow: Convert) -> Convert:
    """What :class:`UTCDateTime` then SQLite's ``DATETIME`` make of a value (``slow``, the
    types' own processor), with the common case done directly: an exact ``datetime`` in UTC."""

    def convert(value: Any) -> Any:
        if type(value) is datetime and value.tzinfo is UTC:
            # naive UTC in SQLite's storage format "YYYY-MM-DD HH:MM:SS.ffffff" (isoformat pads
            # the year to four digits as "%04d" does); "+00:00" cut off
            return value.isoformat(" ", "microseconds")[:-6]
        return slow(value)

    return convert


def _type_processor(type_: Any, dialect: Dialect) -> Convert | None:
    processor: Convert | None = type_.dialect_impl(dialect).bind_processor(dialect)
    return processor


class DriverInsert:
    """One INSERT (``ON CONFLICT`` clauses included) for rows with the given keys."""

    def __init__(self, statement: Insert, keys: Sequence[str], dialect: Dialect) -> None:
        if dialect.name != "sqlite" or dialect.paramstyle != "qmark":
            raise ValueError("DriverInsert is for SQLite's qmark parameters")
        compiled = statement.compile(dialect=dialect, column_keys=list(keys))
        self.sql = compiled.string
        order = compiled.positiontup or []
        table = statement.table
        converters: list[tuple[str, Convert | None]] = []
        for name in order:
            type_ = table.c[name].type
            processor = _type_processor(type_, dialect)
            if isinstance(type_, UTCDateTime) and processor is not None:
                processor = utc_text(processor)
            converters.append((name, processor))
        if sorted(order) != sorted(keys):
            raise ValueError(f"statement binds {order}, rows have {list(keys)}")
        self._converters = converters

    def parameters(self, rows: Sequence[Mapping[str, Any]]) -> list[tuple[Any, ...]]:
        converters = self._converters
        return [tuple([row[k] if c is None else c(row[k]) for k, c in converters]) for row in rows]

    def execute(self, connection: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
        try:
            parameters = self.parameters(rows)
        except Exception as exc:  # as SQLAlchemy reports a bind processor's refusal
            raise StatementError(f"({type(exc).__module__}.{type(exc).__name__}) {exc}", self.sql, None, exc) from exc
        connection.exec_driver_sql(self.sql, parameters)


def bulk_insert(db: Session, core: Insert, driver: DriverInsert | None, rows: Sequence[Mapping[str, Any]]) -> None:
    """``rows`` through ``driver`` on SQLite, through Core's executemany otherwise."""
    if driver is not None:
        driver.execute(db.connection(), rows)
    else:
        db.execute(core, rows)

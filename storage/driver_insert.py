"""Bulk inserts on SQLite compiled once, their parameters converted column by column (#16).

A Core ``executemany`` costs SQLAlchemy's per-row parameter machinery (``construct_params``,
a dict per row, then each column's bind processor through the type system): about as much CPU
as SQLite's own insert. :class:`DriverInsert` compiles the statement once for the engine's
dialect, converts the rows to the tuples the driver takes with the very bind processors
SQLAlchemy would apply (a faster, tested equivalent for :class:`~.models.UTCDateTime`), each
column's values in one ``map`` (only the columns whose type has a processor), and
hands the batch to ``exec_driver_sql``: same SQL, same values, same wrapped errors.

SQLite only: on PostgreSQL SQLAlchemy's ``insertmanyvalues`` turns an executemany into a few
multi-row statements, which matters more there than the parameter machinery, so the writer
keeps Core's path for it (:func:`bulk_insert`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from operator import itemgetter
from typing import Any

from sqlalchemy import Connection, Dialect
from sqlalchemy.exc import StatementError
from sqlalchemy.orm import Session
from sqlalchemy.sql.dml import Insert

from .models import UTCDateTime

Convert = Callable[[Any], Any]
ColumnConvert = Callable[[Sequence[Any]], Sequence[Any]]
_NOTHING = object()  # no value seen yet


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


def _each(convert: Convert) -> ColumnConvert:
    return lambda values: list(map(convert, values))


def _each_time(convert: Convert) -> ColumnConvert:
    """A time column: a value the same object as the one before is spelled once (a batch's
    ``recorded_at``; a fill's ``occurred_at`` next to its own)."""

    def column(values: Sequence[Any]) -> list[Any]:
        out: list[Any] = []
        last: Any = _NOTHING
        text: Any = None
        for value in values:
            if value is not last:
                last, text = value, convert(value)
            out.append(text)
        return out

    return column


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
        order = list(compiled.positiontup or [])
        if sorted(order) != sorted(keys) or len(order) < 2:
            raise ValueError(f"statement binds {order}, rows have {list(keys)}")
        table = statement.table
        converted: list[tuple[int, ColumnConvert]] = []
        self._processors: dict[str, Convert] = {}
        for index, name in enumerate(order):
            type_ = table.c[name].type
            processor = _type_processor(type_, dialect)
            if isinstance(type_, UTCDateTime) and processor is not None:
                processor = utc_text(processor)
                converted.append((index, _each_time(processor)))
            elif processor is not None:
                converted.append((index, _each(processor)))
            if processor is not None:
                self._processors[name] = processor
        #: The keys in the order the statement binds them (and :meth:`execute_prepared` takes).
        self.order = tuple(order)
        self._values = itemgetter(*order)  # a row's values in the statement's order, as a tuple
        self._converted = converted

    def convert(self, key: str, value: Any) -> Any:
        """One value of column ``key`` as the driver takes it (what :meth:`parameters` makes)."""
        processor = self._processors.get(key)
        return value if processor is None else processor(value)

    def parameters(self, rows: Sequence[Mapping[str, Any]]) -> list[tuple[Any, ...]]:
        """Column by column: the values of each converted column go through its processor in
        one ``map``, instead of a Python loop over every column of every row (#16)."""
        if not rows:
            return []
        columns: list[Sequence[Any]] = list(zip(*map(self._values, rows), strict=True))
        for index, convert in self._converted:
            columns[index] = convert(columns[index])
        return list(zip(*columns, strict=True))

    def execute(self, connection: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
        try:
            parameters = self.parameters(rows)
        except Exception as exc:  # as SQLAlchemy reports a bind processor's refusal
            raise StatementError(f"({type(exc).__module__}.{type(exc).__name__}) {exc}", self.sql, None, exc) from exc
        connection.exec_driver_sql(self.sql, parameters)

    def execute_prepared(self, connection: Connection, parameters: Sequence[tuple[Any, ...]]) -> None:
        """Rows its caller already spelled as the driver takes them, in :attr:`order` (the
        audit append, which writes every value itself: ``storage.audit``)."""
        connection.exec_driver_sql(self.sql, list(parameters))


def bulk_insert(db: Session, core: Insert, driver: DriverInsert | None, rows: Sequence[Mapping[str, Any]]) -> None:
    """``rows`` through ``driver`` on SQLite, through Core's executemany otherwise."""
    if driver is not None:
        driver.execute(db.connection(), rows)
    else:
        db.execute(core, rows)

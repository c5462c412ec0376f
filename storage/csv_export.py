"""The one CSV writer: every report the dashboard and the CLI export goes through it.

Spreadsheet-safe: a text cell starting with ``= + - @`` (a broker's reject text, an account
name) would run as a formula in Excel or LibreOffice, so it gets a leading quote — unless it
is a number, which a negative P&L written as text is. Floats are latencies and ratios: three
decimals. Times are the audit trail's UTC format.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from dataclasses import fields, is_dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from .canonical import format_time

__all__ = ["CSV_UNSAFE", "cell", "to_csv"]

CSV_UNSAFE = ("=", "+", "-", "@", "\t", "\r")


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return format_time(value)
    if isinstance(value, (date, Decimal)):
        return str(value)
    if isinstance(value, float):
        return f"{value:.3f}"
    text = str(value)
    if text.startswith(CSV_UNSAFE) and not _is_number(text):
        return "'" + text
    return text


def _columns(rows: Sequence[Any], row_type: type | None) -> list[str]:
    kind = row_type or (type(rows[0]) if rows else None)
    if kind is not None and is_dataclass(kind):
        return [f.name for f in fields(kind)]
    return list(rows[0]) if rows else []


def to_csv(rows: Sequence[Mapping[str, Any]] | Sequence[Any], row_type: type | None = None) -> str:
    """CSV text with a header row; rows are dataclasses or mappings (a header also when there
    are no rows, given a dataclass ``row_type``)."""
    columns = _columns(rows, row_type)
    if not columns:
        return ""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        get = row.get if isinstance(row, Mapping) else (lambda name, _row=row: getattr(_row, name))
        writer.writerow([cell(get(name)) for name in columns])
    return out.getvalue()

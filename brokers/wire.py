"""What every JSON wire protocol's codec needs the same way: strict JSON and a raw excerpt.

Strict, because a broker's answer with ``NaN``, ``Infinity`` or ``1e999999`` in a price is not
JSON (Python's ``json`` would accept it) and must be refused as an unreadable answer, never
carried into an order as a float that is not a number. The excerpt is what an error keeps of
the offending text, so a report shows what was sent without holding megabytes.
"""

from __future__ import annotations

import json
import math
from typing import Any

#: How much of an unreadable frame or answer an error keeps (enough to see what it was).
RAW_LIMIT = 1000


def excerpt(raw: str | bytes | None, limit: int = RAW_LIMIT) -> str:
    """The first ``limit`` characters of ``raw`` (bytes shown as Python would), marked when cut."""
    if raw is None:
        return ""
    text = raw if isinstance(raw, str) else repr(raw)[2:-1]
    return text if len(text) <= limit else f"{text[:limit]}... [{len(text) - limit} more chars]"


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"non-finite number {name} is not JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number {text[:40]} overflows a float")
    return value


def strict_json(text: str | bytes) -> Any:
    """``json.loads`` that refuses NaN, ±Infinity and overflowing numbers. Raises ``ValueError``
    (syntax, bad UTF-8, those numbers, ints past Python's digit limit) or ``RecursionError``."""
    return json.loads(text, parse_constant=_refuse_constant, parse_float=_finite_float)

"""The audit log's canonical JSON: one spelling per value, so a hash can be recomputed.

:func:`canonical_json` is the definition (``to_jsonable`` then the standard encoder with sorted
keys, no whitespace, UTF-8 kept). :func:`payload_json` gives the same text faster for the
payloads the sink writes (#16): a payload made only of values that orjson spells exactly as
that encoder does (exact ``str``/``int``/``bool``/``None``, finite floats in ``[1e-4, 1e16)``,
``Decimal``, ``datetime``, dicts with ``str`` keys, lists, tuples) is encoded by orjson in one
call; anything else, and anything orjson refuses (a 65-bit int, a lone surrogate), goes the
long way. Property tests compare both with the definitions before #16.
"""

from __future__ import annotations

import base64
import enum
import json
import math
from collections.abc import Iterable
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import orjson


def format_time(value: datetime) -> str:
    """One spelling per instant: UTC, microseconds, ``Z`` (aware times only)."""
    if value.tzinfo is None:
        raise ValueError("naive datetime in audit content: use timezone-aware UTC")
    if value.tzinfo is not UTC:
        value = value.astimezone(UTC)
    # isoformat is faster than strftime and spells the same for a plain datetime from year 1000
    # (below, strftime's %Y does not pad; a subclass may spell isoformat its own way).
    if type(value) is datetime and value.year >= 1000:
        return value.isoformat(timespec="microseconds")[:-6] + "Z"  # "+00:00" → "Z"
    return value.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


_PLAIN = frozenset({str, int, bool, type(None)})  # exact types that are JSON as they are


def to_jsonable(value: Any) -> Any:
    """Plain JSON values; Decimal and times become strings so no precision depends on a parser."""
    kind = type(value)
    if kind is str or kind is int or value is None or kind is bool:  # the common cases first
        return value
    if kind is dict:  # plain values inline: most of a record's fields need no call
        return {k if type(k) is str else str(k): v if type(v) in _PLAIN else to_jsonable(v) for k, v in value.items()}
    if kind is float:
        if not math.isfinite(value):
            raise ValueError("NaN/infinity cannot be stored in the audit log")
        return value
    if kind is Decimal:
        return str(value)
    if kind is datetime:
        return format_time(value)
    return _to_jsonable_other(value)


def _to_jsonable_other(value: Any) -> Any:
    """:func:`to_jsonable` for everything but exact ``str``/``int``/``bool``/``None``/``dict``
    (subclasses included: the ``isinstance`` order here is the definition)."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError("NaN/infinity cannot be stored in the audit log")
        return value
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        return format_time(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, enum.Enum):
        return to_jsonable(value.value)
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        items = [to_jsonable(v) for v in value]
        return sorted(items, key=canonical_json) if isinstance(value, (set, frozenset)) else items
    raise TypeError(f"cannot put {type(value).__name__} in the audit log")


_ENCODE = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode


def canonical_json(value: Any) -> str:
    """Sorted keys, no whitespace, UTF-8 kept: the same content always gives the same text."""
    return _ENCODE(to_jsonable(value))


# --------------------------------------------------------------------------- the fast path

#: What orjson spells exactly as ``_ENCODE(to_jsonable(...))`` once the default below has
#: turned ``Decimal`` and ``datetime`` into the same strings ``to_jsonable`` does. Exact types
#: only: a subclass (an ``IntEnum``, a ``StrEnum``) has its own rules and goes the long way.
_SAME_SPELLING = frozenset({str, int, bool, type(None), Decimal, datetime})
#: Python writes floats outside this range in exponent form (``1e-05``, ``1e+16``) and orjson
#: spells some of them differently (``0.00001``); inside it, and for zero, both write
#: ``float.__repr__``. NaN and infinities fall outside too (orjson would write ``null``).
_FLOAT_LOW, _FLOAT_HIGH = 1e-4, 1e16
_FAST = (
    orjson.OPT_SORT_KEYS
    | orjson.OPT_PASSTHROUGH_DATETIME
    | orjson.OPT_PASSTHROUGH_SUBCLASS
    | orjson.OPT_PASSTHROUGH_DATACLASS
)


_STR_KEYS = frozenset({str})


def _fast_dict(value: dict[Any, Any]) -> bool:
    """Whether orjson encodes this dict exactly as the canonical encoder (see ``_SAME_SPELLING``).

    The keys' types are collected in C (a record has some thirty keys, all ``str``)."""
    return {*map(type, value)} <= _STR_KEYS and _fast_items(value.values())


def _fast_items(values: Iterable[Any]) -> bool:
    for item in values:
        kind = type(item)
        if kind in _SAME_SPELLING:
            continue
        if kind is float:
            if not (item == 0.0 or _FLOAT_LOW <= abs(item) < _FLOAT_HIGH):  # NaN fails both
                return False
        elif kind is dict:
            if not _fast_dict(item):
                return False
        elif kind is list or kind is tuple:
            if not _fast_items(item):
                return False
        else:
            return False
    return True


def _fast_default(value: Any) -> str:
    """orjson's hook for the two types it leaves to us: the strings ``to_jsonable`` makes."""
    if type(value) is Decimal:
        return str(value)
    if type(value) is datetime:
        return format_time(value)  # a naive time raises: orjson refuses, the long way decides
    raise TypeError(type(value).__name__)


def payload_json(payload: Any) -> tuple[str, Any | None]:
    """``canonical_json(payload)``, and the plain-JSON form when the long way computed it
    (``None`` after the fast path: :func:`json.loads` of the text gives the same value)."""
    if type(payload) is dict and _fast_dict(payload):
        try:
            return orjson.dumps(payload, default=_fast_default, option=_FAST).decode(), None
        except orjson.JSONEncodeError:
            pass  # a 65-bit int, a lone surrogate, a naive time: the long way decides
    plain = to_jsonable(payload)
    return _ENCODE(plain), plain

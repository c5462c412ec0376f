"""Hostile values for the property tests at every door (imported by name: ``tests/`` is on the
path through its conftest). Two forms: JSON text fragments, spliced into an otherwise good
body so the one bad field is known, and Python values for doors fed already-parsed data."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import strategies as st

ODD_TEXT = [
    "",
    " ",
    "Infinity",
    "-Infinity",
    "NaN",
    "nan",
    "1e999999",
    "-0",
    "0",
    "5",
    "true",
    "no",
    "null",
    "x" * 60_000,
    "\u202eESZ6",
    "ES\u0000Z6",
    "🙂" * 40,
    "e\u0301" * 50,
    "javascript:alert(1)",
    "../../etc/passwd",
    "<script>alert(1)</script>",
    "%5C%5Chost",
    "\ud7ff\ue000",
]
ODD_NUMBERS = [
    float("inf"),
    float("-inf"),
    float("nan"),
    1e308,
    -1e308,
    1e30,
    1.5,
    -1,
    0,
    0.0,
    2**63,
    -(2**63),
    10**30,
    10**400,
    5e-324,
    True,
    False,
]
# Literals JSON cannot spell but producers send anyway (Python's json, JavaScript's toString).
ODD_LITERALS = ["Infinity", "-Infinity", "NaN", "1e999999", "-1e999999", "1" + "0" * 5000, "0." + "0" * 5000 + "1"]


def _deep(depth: int, open_: str, close: str, leaf: str = "1") -> str:
    return open_ * depth + leaf + close * depth


scalars = (
    st.sampled_from(ODD_TEXT)
    | st.sampled_from(ODD_NUMBERS)
    | st.text(max_size=40)
    | st.integers()
    | st.floats()
    | st.booleans()
    | st.none()
)
python_values: st.SearchStrategy[Any] = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
) | st.integers(50, 1200).map(lambda d: _nested_list(d))


def _nested_list(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = [value]
    return value


def _json_text(value: Any) -> str:
    return json.dumps(value, allow_nan=True)  # NaN/Infinity as JavaScript spells them


json_fragments: st.SearchStrategy[str] = (
    st.sampled_from(ODD_LITERALS)
    | scalars.map(_json_text)
    | st.integers(1, 1500).map(lambda d: _deep(d, "[", "]"))
    | st.integers(1, 1500).map(lambda d: _deep(d, '{"a":', "}"))
    | st.recursive(scalars, lambda inner: st.lists(inner, max_size=3), max_leaves=6).map(_json_text)
)


def splice(body: dict[str, Any], field: str, fragment: str) -> bytes:
    """``body`` as JSON with ``field`` (added when absent) set to the raw ``fragment``."""
    rest = {k: v for k, v in body.items() if k != field}
    head = json.dumps(rest)[:-1]
    sep = ", " if rest else ""
    return f"{head}{sep}{json.dumps(field)}: {fragment}}}".encode("utf-8", "surrogatepass")

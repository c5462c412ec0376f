"""``brokers.wire.strict_json``: msgspec's parser on the fast path, Python's words on a refusal.

What every JSON platform's codec (Tradovate, ProjectX) reads with. The fast path must read
every JSON document exactly as Python's ``json`` does, and refuse what the strict parse
refused, with the same reason.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from copytrader.brokers.wire import strict_json

_TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=30)
_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(10**60), max_value=10**60)
    | st.floats(allow_nan=False, allow_infinity=False)
    | _TEXT
)
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(_TEXT, inner, max_size=5),
    max_leaves=40,
)


@settings(max_examples=300, deadline=None)
@given(_VALUES, st.booleans())
def test_it_reads_every_document_as_pythons_json_does(value: Any, as_bytes: bool) -> None:
    text = json.dumps(value)
    read = strict_json(text.encode() if as_bytes else text)
    assert read == json.loads(text)
    assert json.dumps(read) == text  # the same types too (an int stays an int, exactly)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ('{"price": NaN}', "non-finite number NaN is not JSON"),
        ("[Infinity]", "non-finite number Infinity is not JSON"),
        ('{"qty": -Infinity}', "non-finite number -Infinity is not JSON"),
        ('{"price": 1e999999}', "number 1e999999 overflows a float"),
        ("[-1E400]", "number -1E400 overflows a float"),
        ('{"a": 1', "Expecting ',' delimiter"),
        ("", "Expecting value"),
        ("[1, 2,]", "Expecting value"),
        ('{"x": 1} trailing', "Extra data"),
        ("1" * 5000, "digits"),
        ('"\\ud800"', None),  # an escaped lone surrogate: Python's json takes it, no UTF-8 can hold it
    ],
)
def test_what_it_refuses_it_refuses_with_a_reason(text: str, reason: str | None) -> None:
    with pytest.raises(ValueError, match=reason):
        strict_json(text)


@pytest.mark.parametrize("raw", [b"\xff\xfe", b'{"a": "\xc3"}', "[\ud800]"])
def test_bytes_that_are_not_utf8_are_refused(raw: str | bytes) -> None:
    with pytest.raises(ValueError):
        strict_json(raw)


def test_nesting_past_the_parsers_depth_is_a_recursion_error() -> None:
    with pytest.raises(RecursionError):
        strict_json("[" * 100_000 + "]" * 100_000)

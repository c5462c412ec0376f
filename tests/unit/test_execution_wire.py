"""The executor's outcome batches encoded straight to bytes against Faust's own encoding: the
same bytes on ``trade.executions`` for every kind of execution, however it was built."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from copytrader.agents.execution.router import new_execution
from copytrader.agents.shared.outbox import encode_executions
from copytrader.core.records import EXECUTION_KINDS, EXECUTION_SIDES, Execution, ExecutionBatch, executions_of

ids = st.text(min_size=1, max_size=24)  # any unicode: orjson and Faust must escape alike
optional_ids = st.none() | ids
#: Positive, within the records' bounds, with every exponent form (``1.25``, ``1E+2``, ``5000``).
prices = st.none() | st.builds(
    lambda digits, exponent, normal: (
        Decimal(digits).scaleb(exponent).normalize() if normal else Decimal(digits).scaleb(exponent)
    ),
    st.integers(1, 10**8),
    st.integers(-6, 2),
    st.booleans(),
).filter(lambda d: d <= 10**6)
quantities = st.integers(0, 1_000_000)
#: Aware times in UTC and in other offsets, with and without microseconds (orjson and Faust's
#: ``on_default`` must write each alike; ``Z`` only for UTC).
times = st.none() | st.builds(
    lambda when, micro, offset: when.replace(microsecond=micro, tzinfo=timezone(timedelta(minutes=offset))),
    st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1)),
    st.sampled_from([0, 1, 999_999, 123_456]),
    st.sampled_from([0, 60, -300, 330]),
)
stamps = st.dictionaries(st.text(min_size=1, max_size=12), st.floats(min_value=0, max_value=4e9), max_size=6)


@st.composite
def execution_fields(draw: st.DrawFn) -> dict[str, Any]:
    """What the router, the fill pump and the correction path pass, every field's kind of value."""
    fields: dict[str, Any] = {
        "execution_id": draw(ids),
        "account_id": draw(ids),
        "platform": draw(st.sampled_from(["paper", "tradovate", "fix"])),
        "kind": draw(st.sampled_from(EXECUTION_KINDS)),
        "client_order_id": draw(optional_ids),
        "broker_order_id": draw(optional_ids),
        "signal_id": draw(optional_ids),
        "symbol": draw(st.sampled_from(["ESZ6", "MNQZ6", "6EZ6"])),
        "side": draw(st.sampled_from(EXECUTION_SIDES)),
        "quantity": draw(quantities),
        "price": draw(prices),
        "cumulative_quantity": draw(quantities),
        "leaves_quantity": draw(quantities),
        "duplicate": draw(st.booleans()),
        "is_leader": draw(st.booleans()),
        "request_outcome": draw(st.booleans()),
        "reason": draw(st.none() | st.text(max_size=40)),
        "corrects": draw(optional_ids),
        "original_quantity": draw(quantities),
        "original_price": draw(prices),
        "occurred_at": draw(times),
        "stamps": draw(stamps),
        "reference_price": draw(prices),
        "band_ticks": draw(st.none() | st.integers(0, 100)),
        "band_touch": draw(prices),
    }
    # fields left to their defaults, as the router leaves most of them
    for name in draw(
        st.sets(st.sampled_from(sorted(set(fields) - {"execution_id", "account_id", "platform", "kind"})))
    ):
        del fields[name]
    return fields


def built(fields: dict[str, Any], how: str) -> Execution:
    """The execution as Faust's ``__init__``, the router's maker or the consumers' decoder builds it."""
    if how == "faust":
        return Execution(**fields)
    if how == "maker":
        return new_execution(**fields)
    (decoded,) = executions_of(ExecutionBatch(executions=[Execution(**fields)]).dumps())
    return decoded


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(execution_fields(), st.sampled_from(["faust", "maker", "decoded"])), min_size=1, max_size=6))
def test_encode_executions_is_faust_dumps(drawn: list[tuple[dict[str, Any], str]]) -> None:
    executions = [built(fields, how) for fields, how in drawn]
    encoded = encode_executions(executions)
    assert encoded == ExecutionBatch(executions=executions).dumps()
    assert executions_of(encoded) == executions


def test_a_value_the_records_check_replaced_is_encoded_as_replaced() -> None:
    """A reason longer than the bound is shortened by ``__post_init__`` after the maker
    stored it: what goes out is the record's value, in its field's place."""
    execution = new_execution(
        execution_id="c1|reject",
        account_id="f1",
        platform="paper",
        kind="reject",
        reason="x" * 5000,
        occurred_at=datetime(2026, 12, 1, tzinfo=UTC),
    )
    assert len(execution.reason or "") <= 4000
    assert encode_executions([execution]) == ExecutionBatch(executions=[execution]).dumps()

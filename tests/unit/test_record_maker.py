"""``record_codec.maker_for``: a record built without Faust's descriptors is the record Faust's
own ``__init__`` builds from the same fields (the executor builds two per copy this way)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from copytrader.core.record_codec import maker_for
from copytrader.core.records import EXECUTION_KINDS, Execution, OrderError, RecordError

ids = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-|:", min_size=1, max_size=20)
times = st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2030, 1, 1), timezones=st.just(UTC))
prices = st.decimals(min_value=Decimal("0.01"), max_value=Decimal(99999), places=2)
#: Values of the field's own type, and others Faust coerces (or refuses) on the way in.
quantities = st.integers(0, 10_000) | st.booleans() | st.none() | st.integers(-5, -1)
texts = ids | st.none() | st.integers(0, 99)
decimals = st.none() | prices | prices.map(str) | st.integers(1, 9999) | st.just(Decimal("NaN"))
flags = st.booleans() | st.none() | st.integers(0, 2)
stamps = st.none() | st.dictionaries(st.sampled_from(["sent", "acked", "filled"]), st.floats(1.6e9, 2e9), max_size=3)

execution_fields = st.fixed_dictionaries(
    {"execution_id": ids, "account_id": ids, "platform": st.sampled_from(["paper", "tradovate"])},
    optional={
        "kind": st.sampled_from(EXECUTION_KINDS) | st.just("bogus"),
        "client_order_id": texts,
        "broker_order_id": texts,
        "signal_id": texts,
        "symbol": st.sampled_from(["ESZ6", "MNQZ6"]),
        "side": st.sampled_from(["buy", "sell", ""]),
        "quantity": quantities,
        "price": decimals,
        "cumulative_quantity": quantities,
        "leaves_quantity": quantities,
        "duplicate": flags,
        "request_outcome": flags,
        "reason": st.none() | st.text(max_size=30),
        "occurred_at": times,  # None: each would take its own now
        "stamps": stamps,
        "reference_price": decimals,
        "band_ticks": st.none() | st.integers(0, 100) | st.booleans(),
    },
)


def built(make: Any, fields: dict[str, Any]) -> tuple[str, Any]:
    try:
        return "ok", make(**fields)
    except Exception as exc:  # noqa: BLE001 - what each builder raises is compared
        return type(exc).__name__, None


@settings(max_examples=200, deadline=None)
@given(execution_fields)
def test_an_execution_is_the_one_faust_builds_from_the_same_fields(fields: dict[str, Any]) -> None:
    fields.setdefault("kind", "fill")
    fields.setdefault("occurred_at", datetime(2026, 12, 1, tzinfo=UTC))  # else each takes its own now
    theirs = built(Execution, fields)
    ours = built(maker_for(Execution), fields)
    assert ours[0] == theirs[0]
    if theirs[0] == "ok":
        assert ours[1] == theirs[1]
        assert ours[1].dumps() == theirs[1].dumps()
        assert ours[1].asdict() == theirs[1].asdict()
        assert ours[1].__dict__.keys() == theirs[1].__dict__.keys()
        assert type(ours[1].price) is type(theirs[1].price)


def test_the_records_checks_run() -> None:
    make = maker_for(Execution)
    with pytest.raises(RecordError, match="kind"):
        make(execution_id="x", account_id="a", platform="paper", kind="bogus")
    with pytest.raises(RecordError, match="quantity"):
        make(execution_id="x", account_id="a", platform="paper", kind="fill", quantity=-1)
    made = make(execution_id="x", account_id="a", platform="paper", kind="ack")
    assert made.occurred_at is not None and made.occurred_at.tzinfo is not None  # __post_init__ filled it


def test_a_missing_or_unknown_field_is_a_type_error_as_from_init() -> None:
    make = maker_for(Execution)
    with pytest.raises(TypeError):
        make(execution_id="x", account_id="a", kind="ack")  # no platform
    with pytest.raises(TypeError):
        make(execution_id="x", account_id="a", platform="paper", kind="ack", colour="red")


def test_other_records_too() -> None:
    fields: dict[str, Any] = {"error_id": "e1", "stage": "execute", "reason": "no", "account_id": "f1", "code": "X"}
    fields["occurred_at"] = datetime(2026, 12, 1, tzinfo=UTC)
    assert maker_for(OrderError)(**fields) == OrderError(**fields)
    assert maker_for(OrderError)(**fields).dumps() == OrderError(**fields).dumps()

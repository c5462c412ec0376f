"""The msgspec decoder (``core/record_codec.py``) against Faust's own: same records from the
same JSON, stricter types, and the record's own checks still run."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import faust
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from copytrader.core import record_codec
from copytrader.core.records import (
    EXECUTION_KINDS,
    AccountStatus,
    Execution,
    ExecutionBatch,
    IntentBatch,
    OrderError,
    OrderIntent,
    Position,
    RecordError,
    executions_of,
)

ids = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-|:", min_size=1, max_size=20)
prices = st.none() | st.decimals(min_value=Decimal("0.01"), max_value=Decimal(99999), places=2)
stamps = st.dictionaries(
    st.sampled_from(["detected", "published", "fanned_out", "sent", "acked", "filled"]),
    st.floats(min_value=1.6e9, max_value=2e9),
    max_size=6,
)
times = st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2030, 1, 1), timezones=st.just(UTC))

executions = st.builds(
    Execution,
    execution_id=ids,
    account_id=ids,
    platform=st.sampled_from(["paper", "tradovate", "projectx"]),
    kind=st.sampled_from(EXECUTION_KINDS),
    client_order_id=st.none() | ids,
    signal_id=st.none() | ids,
    symbol=st.sampled_from(["ESZ6", "MNQZ6"]),
    side=st.sampled_from(["buy", "sell"]),
    quantity=st.integers(0, 10_000),
    price=prices,
    cumulative_quantity=st.integers(0, 10_000),
    duplicate=st.booleans(),
    reason=st.none() | st.text(max_size=30),
    occurred_at=times,
    stamps=stamps,
    band_ticks=st.none() | st.integers(0, 100),
)
intents = st.builds(
    OrderIntent,
    client_order_id=ids,
    signal_id=ids,
    account_id=ids,
    platform=st.just("paper"),
    leader_account=ids,
    action=st.just("place"),
    symbol=st.just("ESZ6"),
    side=st.sampled_from(["buy", "sell"]),
    quantity=st.integers(1, 10_000),
    stamps=stamps,
    reference_price=prices,
    stale_after_s=st.none() | st.floats(min_value=0.5, max_value=3600),
    reduces_position=st.booleans(),
)
positions = st.builds(
    Position,
    account_id=ids,
    symbol=st.just("ESZ6"),
    net_quantity=st.integers(-10_000, 10_000),
    average_price=prices,
    realized_pnl=st.decimals(min_value=-(10**6), max_value=10**6, places=2),
    fills=st.integers(0, 1000),
    recent_fill_ids=st.lists(ids, max_size=5),
    updated_at=times,
)
errors = st.builds(
    OrderError,
    error_id=ids,
    stage=st.sampled_from(["ingest", "fanout", "execute", "track"]),
    reason=st.text(max_size=40),
    code=st.none() | ids,
    occurred_at=times,
    stamps=stamps,
)
statuses = st.builds(
    AccountStatus,
    account_id=ids,
    platform=st.just("paper"),
    connection=st.sampled_from(["up", "down"]),
    rate_headroom=st.floats(0, 1),
    last_copy_ms=st.none() | st.floats(0, 10_000),
    updated_at=times,
    reconciliation=st.none() | st.just({"drift": [], "positions": {"ESZ6": 1}}),
)


def faust_decoded(record: type[faust.Record], raw: bytes) -> Any:
    """Faust's own decoding: its generated ``__init__`` with coercion (what ``loads`` did)."""
    data = json.loads(raw)
    return record(**data, __strict__=False)


@settings(max_examples=60, deadline=None)
@given(st.one_of(executions, intents, positions, errors, statuses))
def test_the_same_json_decodes_to_the_same_record_as_faust_decodes_it(original: Any) -> None:
    raw = original.dumps()
    kind = type(original)
    ours = kind.loads(raw)
    theirs = faust_decoded(kind, raw)
    assert type(ours) is kind
    assert ours == theirs == original
    assert ours.dumps() == theirs.dumps() == raw
    assert ours.asdict() == theirs.asdict()


@settings(max_examples=30, deadline=None)
@given(st.lists(executions, min_size=1, max_size=5))
def test_a_batch_carries_the_same_records(items: list[Execution]) -> None:
    raw = ExecutionBatch(executions=items).dumps()
    decoded = executions_of(raw)
    assert decoded == items
    assert all(type(item) is Execution for item in decoded)
    assert [item.dumps() for item in decoded] == [item.dumps() for item in items]


def execution_json(**fields: Any) -> bytes:
    data = json.loads(Execution(execution_id="x1", account_id="f1", platform="paper", kind="fill", quantity=1).dumps())
    data.update(fields)
    return json.dumps(data).encode()


@pytest.mark.parametrize(
    ("fields", "path"),
    [
        ({"quantity": "2"}, "quantity"),  # Faust turned this into 2
        ({"quantity": True}, "quantity"),  # Faust kept the bool
        ({"quantity": 2.5}, "quantity"),
        ({"quantity": 1e308}, "quantity"),
        ({"stamps": {"sent": "soon"}}, "stamps[...]"),
        ({"duplicate": "yes"}, "duplicate"),
        ({"occurred_at": "yesterday"}, "occurred_at"),
        ({"execution_id": None}, "execution_id"),
        ({"kind": "teleport"}, "kind"),  # the record's own check, as before
    ],
)
def test_a_wrong_type_is_refused_with_the_fields_path(fields: dict[str, Any], path: str) -> None:
    with pytest.raises(RecordError) as refused:
        Execution.loads(execution_json(**fields))
    assert refused.value.field == path


def test_a_value_inside_a_batch_is_named_by_its_place() -> None:
    good = json.loads(execution_json())
    bad = json.loads(execution_json(quantity="3"))
    raw = json.dumps({"executions": [good, bad]}).encode()
    with pytest.raises(RecordError) as refused:
        executions_of(raw)
    assert refused.value.field == "executions[1].quantity"


def test_malformed_json_and_a_missing_field_are_refused() -> None:
    with pytest.raises(RecordError, match="truncated"):
        Execution.loads(b'{"execution_id": ')
    with pytest.raises(RecordError, match="missing required field `account_id`"):
        Execution.loads(b'{"execution_id": "x", "platform": "paper", "kind": "ack"}')


def test_null_only_where_the_field_may_be_none() -> None:
    assert Execution.loads(execution_json(price=None, occurred_at=None)).occurred_at is not None  # filled in
    with pytest.raises(RecordError) as refused:
        Execution.loads(execution_json(symbol=None))  # Faust read it as "", and never writes it
    assert refused.value.field == "symbol"


def test_each_decoded_record_has_its_own_mutable_defaults() -> None:
    raw = json.dumps({"account_id": "f1", "symbol": "ESZ6"}).encode()
    first, second = Position.loads(raw), Position.loads(raw)
    first.recent_fill_ids.append("fill-1")
    assert second.recent_fill_ids == []


def test_unknown_keys_are_ignored_and_nested_records_are_built_now() -> None:
    intent = json.loads(
        OrderIntent(
            client_order_id="c1",
            signal_id="s1",
            account_id="f1",
            platform="paper",
            leader_account="L",
            action="place",
            symbol="ESZ6",
            side="buy",
            quantity=1,
        ).dumps()
    )
    raw = json.dumps({"batch_id": "b1", "intents": [intent], "added_later": 1}).encode()
    batch = IntentBatch.loads(raw)
    assert type(batch.intents[0]) is OrderIntent
    assert batch.intents[0].quantity == 1
    assert batch.appended is None


def test_faust_builds_the_same_records_through_from_data() -> None:
    """An agent's ``value_type`` and a table's values go through ``from_data``."""
    original = Execution(execution_id="x1", account_id="f1", platform="paper", kind="ack", price=Decimal("1.25"))
    data = json.loads(original.dumps())
    assert Execution.from_data(data) == original
    assert record_codec.convert(Execution, data) == original

"""``trade.executions`` and ``positions.updates`` are doors: anyone with access to the topics
writes to them. A hostile Execution or Position is refused at decode with a ``ValueError``
naming its field, or it passes and then goes through the tracker's step and the store's
mapping without raising, with numbers the database columns hold."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import orjson
import pytest
from hostile_values import json_fragments, python_values, splice
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from copytrader.agents.shared.warmup import sample_records
from copytrader.agents.tracking.tracker import FillAccounting
from copytrader.common import bounds
from copytrader.core.records import (
    Execution,
    ExecutionBatch,
    OrderIntent,
    Position,
    RecordError,
    executions_of,
    positions_of,
)
from copytrader.storage import mapping
from copytrader.tables.positions import apply_fill

AT = datetime(2026, 3, 2, 14, 0, tzinfo=UTC)
INT32 = 2**31 - 1
MONEY_LIMIT = Decimal(10) ** 12  # Numeric(18, 6): 12 integer digits


def good_fill(n: int = 1, **kw: Any) -> Execution:
    values: dict[str, Any] = dict(
        execution_id=f"f1|B{n}|fill|{n}",
        account_id="f1",
        platform="paper",
        kind="fill",
        client_order_id=f"CT{n}",
        broker_order_id=f"B{n}",
        signal_id="L:1:new",
        symbol="ESZ6",
        side="buy",
        quantity=2,
        price=Decimal("5000.25"),
        cumulative_quantity=2,
        occurred_at=AT,
        stamps={"detected": 1.0, "sent": 1.01, "acked": 1.02, "filled": 1.03},
        reference_price=Decimal("5000"),
        band_ticks=4,
        band_touch=Decimal("5001"),
    )
    return Execution(**{**values, **kw})


def good_position(**kw: Any) -> Position:
    values: dict[str, Any] = dict(
        account_id="f1",
        symbol="ESZ6",
        net_quantity=3,
        average_price=Decimal("5000.25"),
        realized_pnl=Decimal("-125.5"),
        fills=4,
        recent_fill_ids=["f1|B0|fill|0"],
        updated_at=AT,
    )
    return Position(**{**values, **kw})


EXECUTION_BODY = {k: v for k, v in orjson.loads(good_fill().dumps()).items() if k != "__faust"}
POSITION_BODY = {k: v for k, v in orjson.loads(good_position().dumps()).items() if k != "__faust"}
stamp_maps = st.dictionaries(st.text(max_size=40), python_values, max_size=40)


def assert_rows_fit_the_database(rows: list[dict[str, Any]]) -> None:
    """What a stored row holds: integers in 32-bit columns, money in Numeric(18, 6). A value
    beyond them was SQLite's OverflowError or PostgreSQL's DataError (item 3)."""
    for row in rows:
        for name, value in row.items():
            if isinstance(value, int) and not isinstance(value, bool):
                assert -INT32 <= value <= INT32, (name, value)
            if isinstance(value, Decimal):
                assert value.is_finite() and abs(value) < MONEY_LIMIT, (name, value)


def passes_every_stage(raw: bytes) -> None:
    """Refused at decode with a ValueError, or counted, mapped and stored without raising."""
    try:
        executions = executions_of(raw)
    except ValueError:
        return
    moved, errors = FillAccounting({}).step(raw)
    assert all(error.code == "BAD_FILL" for error in errors)  # decoded: never BAD_RECORD
    seeded = good_position(recent_fill_ids=[e.execution_id for e in executions][-10:])
    for execution in executions:
        if execution.kind in ("fill", "partial_fill", "fill_bust", "fill_correction"):
            for position in (None, seeded):
                try:
                    apply_fill(position, execution)
                except (ValueError, KeyError):  # an unknown instrument, a correction of a fill
                    pass  # never counted, a position's bound: each one BAD_FILL (tests/agents)
    rows = mapping.executions_batch(executions)
    assert_rows_fit_the_database(rows.executions)
    assert_rows_fit_the_database(mapping.positions_batch(moved).snapshots)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(field=st.sampled_from(sorted(EXECUTION_BODY)), fragment=json_fragments, batched=st.booleans())
def test_any_hostile_execution_field_is_refused_at_decode_or_harmless(field: str, fragment: str, batched: bool) -> None:
    raw = splice(EXECUTION_BODY, field, fragment)
    if batched:
        raw = b'{"executions": [' + raw + b"]}"
    passes_every_stage(raw)


@settings(max_examples=60, deadline=None)
@given(body=st.fixed_dictionaries({}, optional={k: python_values for k in EXECUTION_BODY}), stamps=stamp_maps)
def test_any_hostile_execution_is_refused_at_decode_or_harmless(body: dict[str, Any], stamps: dict[str, Any]) -> None:
    data = {**EXECUTION_BODY, **body, "stamps": stamps}
    passes_every_stage(json.dumps(data, allow_nan=True).encode())


@settings(max_examples=300, deadline=None)
@given(field=st.sampled_from(sorted(POSITION_BODY)), fragment=json_fragments, batched=st.booleans())
def test_any_hostile_position_is_refused_at_decode_or_harmless(field: str, fragment: str, batched: bool) -> None:
    raw = splice(POSITION_BODY, field, fragment)
    if batched:
        raw = b'{"positions": [' + raw + b"]}"
    try:
        positions = positions_of(raw)
    except ValueError:
        return
    batch = mapping.positions_batch(positions)
    assert_rows_fit_the_database(batch.snapshots + batch.pnl)
    for position in positions:  # a restored (or forged) position, then the next fill
        try:
            apply_fill(position, good_fill(9, execution_id="f1|B9|fill|9", symbol=position.symbol))
        except (ValueError, KeyError):  # a bound, an unknown instrument: BAD_FILL
            pass


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("quantity", 1e308),
        ("quantity", 10**30),
        ("quantity", "5"),
        ("quantity", 1.5),
        ("quantity", True),
        ("quantity", bounds.MAX_POSITION_QUANTITY + 1),
        ("cumulative_quantity", -1),
        ("leaves_quantity", 10**12),
        ("original_quantity", -3),
        ("price", "Infinity"),
        ("price", "NaN"),
        ("price", "1e308"),
        ("price", 1e308),
        ("price", True),
        ("price", "1." + "1" * 30),
        ("original_price", "-5"),
        ("reference_price", "1e10"),
        ("band_ticks", 10**9),
        ("stamps", {"sent": "x"}),
        ("stamps", {"sent": True}),
        ("stamps", {"sent": 1e300}),
        ("stamps", [1, 2]),
        ("stamps", {f"s{n}": 1.0 for n in range(bounds.MAX_RECORD_STAMPS + 1)}),
        ("stamps", {"x" * 100: 1.0}),
        ("execution_id", "x" * (bounds.MAX_EXECUTION_ID_LEN + 1)),
        ("execution_id", ""),
        ("account_id", "a" * 65),
        ("broker_order_id", "b" * 129),
        ("symbol", ["ESZ6"]),
        ("side", "up"),
        ("duplicate", "yes"),
        ("reason", 5),
        ("occurred_at", 5),
    ],
)
def test_each_refusal_names_its_field(field: str, value: object) -> None:
    raw = json.dumps({**EXECUTION_BODY, field: value}).encode()
    with pytest.raises(RecordError) as refused:
        executions_of(raw)
    assert refused.value.field.startswith(field)  # the decoder may name the place: stamps[...]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("average_price", "Infinity"),
        ("average_price", "NaN"),
        ("realized_pnl", "Infinity"),
        ("realized_pnl", "-NaN"),
        ("realized_pnl", str(bounds.MAX_REALIZED_PNL + 1)),
        ("realized_pnl", 1e308),
        ("net_quantity", bounds.MAX_POSITION_QUANTITY + 1),
        ("net_quantity", 1e308),
        ("fills", -1),
        ("fills", 2**31),
        ("recent_fill_ids", ["x"] * (bounds.MAX_RECENT_FILL_IDS + 1)),
        ("recent_fill_ids", "abc"),
        ("recent_fill_ids", [1, 2]),
        ("account_id", ""),
    ],
)
def test_a_position_refusal_names_its_field(field: str, value: object) -> None:
    raw = json.dumps({**POSITION_BODY, field: value}).encode()
    with pytest.raises(RecordError) as refused:
        positions_of(raw)
    assert refused.value.field.startswith(field)  # the decoder may name the place: recent_fill_ids[0]


def test_a_position_may_hold_more_than_one_order_and_lose_money() -> None:
    """A position sums fills: its bound is above one order's, and P&L has either sign."""
    held = good_position(net_quantity=-(bounds.MAX_QUANTITY * 10), realized_pnl=-(bounds.MAX_REALIZED_PNL))
    (back,) = positions_of(held.dumps())
    assert (back.net_quantity, back.realized_pnl) == (-(bounds.MAX_QUANTITY * 10), -bounds.MAX_REALIZED_PNL)
    assert bounds.MAX_POSITION_QUANTITY > bounds.MAX_QUANTITY and bounds.MAX_REALIZED_PNL < MONEY_LIMIT


def test_every_legitimate_producer_still_passes() -> None:
    """The executor's ack, reject and fill, a leader fill, a correction, the tracker's own
    positions, the warm-up records: built and read back unchanged."""
    intent = OrderIntent(
        client_order_id="CT0123456789abcdef",
        signal_id="L:1:new",
        account_id="f1",
        platform="tradovate",
        leader_account="L",
        action="place",
        symbol="MESZ6",
        side="sell",
        quantity=bounds.MAX_QUANTITY,
        order_type="limit",
        limit_price=Decimal("5000.25"),
        reference_price=Decimal("5000"),
        band_ticks=1000,
        band_touch=Decimal("5000.5"),
        stamps={name: 1.0 + n for n, name in enumerate(("occurred", "detected", "published", "fanned_out"))},
    )
    ack = good_fill(kind="ack", price=None, quantity=intent.quantity, request_outcome=True, stamps=intent.stamps)
    reject = good_fill(kind="reject", price=None, reason="x" * 10_000, request_outcome=True)
    assert reject.reason is not None and len(reject.reason) == bounds.MAX_REASON_LEN  # prose is cut, not refused
    leader = good_fill(is_leader=True, client_order_id=None, quantity=bounds.MAX_QUANTITY)
    bust = good_fill(kind="fill_bust", quantity=0, price=None, corrects="f1|B1|fill|1", original_quantity=2)
    first, _ = apply_fill(None, good_fill(1))
    second, _ = apply_fill(first, good_fill(2, side="sell", price=Decimal("4990.75"), quantity=1))
    # The dashboard's flatten of a position larger than one order: its intent, ack and fill.
    large = bounds.MAX_QUANTITY * 3
    held, _ = apply_fill(good_position(net_quantity=large - 1), good_fill(3, quantity=1))
    flatten = OrderIntent(**{**intent.as_dict(), "action": "flatten", "quantity": held.net_quantity})
    closing = good_fill(4, side="sell", quantity=flatten.quantity, cumulative_quantity=flatten.quantity)
    flat, _ = apply_fill(held, closing)
    assert flat.net_quantity == 0
    flattened = good_fill(kind="flattened", price=None, quantity=flatten.quantity, request_outcome=True)
    records = [ack, reject, leader, bust, flattened, closing, *sample_records()]
    decoded = executions_of(ExecutionBatch(executions=[r for r in records if isinstance(r, Execution)]).dumps())
    assert [e.execution_id for e in decoded] == [r.execution_id for r in records if isinstance(r, Execution)]
    for position in (first, second, held, flat, *(r for r in records if isinstance(r, Position))):
        assert positions_of(position.dumps())[0].realized_pnl == position.realized_pnl


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("quantity", bounds.MAX_POSITION_QUANTITY + 1),
        ("quantity", -1),
        ("stamps", {"detected": "soon"}),
        ("band_ticks", 10**6),
        ("account_id", "a" * 65),
        ("reference_price", Decimal("1e12")),
    ],
)
def test_what_an_intent_hands_on_to_its_executions_is_bounded_at_the_intent(field: str, value: object) -> None:
    """The executor copies these into its ack or reject: refused later, nothing could report it."""
    values: dict[str, Any] = dict(
        client_order_id="CT1",
        signal_id="s",
        account_id="f1",
        platform="paper",
        leader_account="L",
        action="cancel",
        symbol="ESZ6",
        side="buy",
        quantity=0,
        target_client_order_id="CT0",
    )
    with pytest.raises(RecordError) as refused:
        OrderIntent(**{**values, field: value})
    assert refused.value.field == field


@pytest.mark.parametrize("tag", ["nope.Nothing", 5, None, "copytrader.core.records.Heartbeat"])
def test_faust_type_tag_on_the_wire_decides_nothing(tag: object) -> None:
    """The topic says what it carries: a tag naming no record used to raise KeyError (not a
    ValueError, so past the tracker's guard); one naming another record built that record."""
    bare = {**EXECUTION_BODY, "__faust": {"ns": tag}}
    batch = {"executions": [bare], "__faust": {"ns": tag}}
    for raw in (orjson.dumps(bare), orjson.dumps(batch)):
        (execution,) = executions_of(raw)
        assert isinstance(execution, Execution) and execution.execution_id == EXECUTION_BODY["execution_id"]
    (position,) = positions_of(orjson.dumps({**POSITION_BODY, "__faust": {"ns": tag}}))
    assert isinstance(position, Position)


def test_a_record_that_is_not_json_text_is_a_value_error() -> None:
    for raw in (None, 5, [b"{}"]):
        with pytest.raises(ValueError):
            executions_of(raw)  # type: ignore[arg-type]  # what a consumer may be handed

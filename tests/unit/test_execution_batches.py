"""``trade.executions`` records carry the executions of one partition (#16): grouped by the
partition of their account, in order, bounded in size; every consumer reads a batch, a bare
execution (older producers) and refuses anything else with a ``ValueError``."""

from __future__ import annotations

import json
from decimal import Decimal

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from copytrader.agents.shared.outbox import EXECUTION_PARTITIONS, batch_executions, batch_positions
from copytrader.app.factory import empty_config
from copytrader.core.records import (
    MAX_PER_RECORD,
    Execution,
    ExecutionBatch,
    Position,
    PositionBatch,
    executions_of,
    positions_of,
)
from copytrader.core.topics import partition_for
from copytrader.web.live import LiveState
from copytrader.web.realtime import KafkaFeed


def execution(n: int, account: str = "f001", kind: str = "ack") -> Execution:
    return Execution(
        execution_id=f"{account}|e{n}",
        account_id=account,
        platform="paper",
        kind=kind,
        signal_id=f"leader-1:{n}:new",
        client_order_id=f"c{n}",
        request_outcome=kind == "ack",
        symbol="ESZ6",
        side="buy",
        quantity=1,
        price=Decimal("5000.25") if kind == "fill" else None,
    )


def test_executions_are_grouped_by_the_partition_of_their_account_in_order() -> None:
    accounts = [f"f{n:03d}" for n in range(40)]
    executions = [execution(n, account, kind) for n, account in enumerate(accounts) for kind in ("ack", "fill")]
    batches = batch_executions(executions)
    assert sum(len(b.executions) for _, b in batches) == len(executions)
    assert len(batches) <= EXECUTION_PARTITIONS < len(executions)
    for partition, batch in batches:
        assert {partition_for(e.account_id, EXECUTION_PARTITIONS) for e in batch.executions} == {partition}
        by_account: dict[str, list[str]] = {}
        for e in batch.executions:
            by_account.setdefault(e.account_id, []).append(e.kind)
        assert all(kinds == ["ack", "fill"] for kinds in by_account.values())  # per-account order kept


def test_a_record_never_holds_more_than_the_limit() -> None:
    executions = [execution(n) for n in range(MAX_PER_RECORD * 2 + 1)]
    sizes = [len(b.executions) for _, b in batch_executions(executions)]
    assert sizes == [MAX_PER_RECORD, MAX_PER_RECORD, 1]
    with pytest.raises(ValueError, match="executions"):
        ExecutionBatch(executions=[execution(n) for n in range(MAX_PER_RECORD + 1)])


def test_a_batch_and_a_bare_execution_decode_to_the_same_executions() -> None:
    fill = execution(1, kind="fill")
    assert [e.execution_id for e in executions_of(ExecutionBatch(executions=[fill]).dumps())] == ["f001|e1"]
    (bare,) = executions_of(fill.dumps())
    assert (bare.execution_id, bare.price) == ("f001|e1", Decimal("5000.25"))


def test_one_bad_execution_refuses_its_whole_record_at_decode() -> None:
    data = orjson.loads(ExecutionBatch(executions=[execution(1), execution(2)]).dumps())
    data["executions"][1]["kind"] = "teleport"
    with pytest.raises(ValueError, match="kind"):
        executions_of(orjson.dumps(data))


@settings(max_examples=200, deadline=None)
@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
        lambda inner: (
            st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(["executions", "kind", "x"]), inner)
        ),
        max_leaves=8,
    )
)
def test_anything_else_is_a_value_error(value: object) -> None:
    raw = json.dumps(value).encode()  # NaN, infinities and huge integers too
    with pytest.raises(ValueError):
        executions_of(raw)


def test_the_dashboard_numbers_each_execution_of_a_record_and_skips_a_replayed_record() -> None:
    live = LiveState(empty_config())
    feed = KafkaFeed("127.0.0.1:1", "", live, hub=None)
    record = ExecutionBatch(executions=[execution(1), execution(2, "f002"), execution(3)]).dumps()
    changes = feed._apply("trade.executions", 4, 7, record)
    orders = [row for stream, row in changes if stream == "orders"]
    assert [(row["execution_id"], row["_o"]) for row in orders] == [
        ("f001|e1", 7000),
        ("f002|e2", 7001),
        ("f001|e3", 7002),
    ]
    assert feed._apply("trade.executions", 4, 7, record) == []  # a consumer restart replays it
    assert [row["_o"] for s, row in feed._apply("trade.executions", 4, 8, execution(4).dumps()) if s == "orders"] == [
        8000
    ]


def test_one_fetch_pushes_each_accounts_last_grid_row_and_every_other_row() -> None:
    live = LiveState(empty_config())
    feed = KafkaFeed("127.0.0.1:1", "", live, hub=None)
    record = ExecutionBatch(executions=[execution(1), execution(2, "f002"), execution(3, kind="cancelled")]).dumps()
    with live.batch() as grid:  # as the feed applies one fetch
        changes = feed._apply("trade.executions", 4, 7, record)
    assert [(stream, row["execution_id"]) for stream, row in changes] == [
        ("orders", "f001|e1"),
        ("orders", "f002|e2"),
        ("orders", "f001|e3"),
    ]
    assert [(stream, row["account_id"], row["_v"]) for stream, row in grid] == [
        ("grid", "f001", 3),
        ("grid", "f002", 2),
    ]
    assert grid[0][1]["open_orders"] == 1  # f001's row as it is after the fetch: e1 open, e3 a cancel of another


def test_positions_travel_the_same_way() -> None:
    positions = [Position(account_id=f"f{n:03d}", symbol="ESZ6", net_quantity=n) for n in range(30)]
    batches = batch_positions(positions)
    assert sum(len(b.positions) for _, b in batches) == 30
    for partition, batch in batches:
        assert {partition_for(p.account_id, EXECUTION_PARTITIONS) for p in batch.positions} == {partition}
    (_, first), *_ = batches
    assert [p.net_quantity for p in positions_of(first.dumps())] == [p.net_quantity for p in first.positions]
    assert positions_of(positions[3].dumps())[0].net_quantity == 3  # a bare position
    with pytest.raises(ValueError, match="positions"):
        positions_of(b'{"positions": []}')


def test_the_dashboard_numbers_each_position_of_a_record() -> None:
    feed = KafkaFeed("127.0.0.1:1", "", LiveState(empty_config()), hub=None)
    record = PositionBatch(
        positions=[
            Position(account_id="f001", symbol="ESZ6", net_quantity=1),
            Position(account_id="f002", symbol="ESZ6"),
        ]
    ).dumps()
    rows = [row for stream, row in feed._apply("positions.updates", 2, 5, record) if stream == "positions"]
    assert [(row["key"], row["_o"]) for row in rows] == [("f001|ESZ6", 5000), ("f002|ESZ6", 5001)]

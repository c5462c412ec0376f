"""Every reader of ``trade.executions`` and ``positions.updates`` besides the tracker and the
store (tests/agents, tests/storage): the dashboard feed, the benchmark's observer and the
soak's judge each take a hostile record as one bad record, counted, and read the next."""

from __future__ import annotations

import logging
from decimal import Decimal

import orjson
import pytest

from copytrader.app.factory import empty_config
from copytrader.core.config import parse_config
from copytrader.core.records import Execution, ExecutionBatch, Position, PositionBatch
from copytrader.demo.configgen import demo_config
from copytrader.demo.observer import RunObserver
from copytrader.demo.soak import Judge
from copytrader.web.live import LiveState
from copytrader.web.realtime import KafkaFeed


def outcome(n: int, account: str = "f001") -> Execution:
    return Execution(
        execution_id=f"{account}|e{n}",
        account_id=account,
        platform="paper",
        kind="ack",
        signal_id=f"leader-1:{n}:new",
        client_order_id=f"c{n}",
        request_outcome=True,
        symbol="ESZ6",
        side="buy",
        quantity=1,
        stamps={"detected": 1.0, "sent": 1.004, "acked": 1.01},
    )


def with_values(record: Execution | Position, **values: object) -> bytes:
    """``record`` on the wire with some values replaced, as anyone with topic access could write it."""
    data = orjson.loads(record.dumps())
    data.update(values)
    return orjson.dumps(data)


HOSTILE_EXECUTIONS = [
    b"not json",
    b"[1, 2]",
    b'{"executions": "many"}',
    with_values(outcome(9), quantity=1e308),
    with_values(outcome(8), stamps={"sent": "soon", "detected": 1.0}),
    with_values(outcome(9), account_id=["f001"]),
]
HOSTILE_POSITIONS = [
    b"{",
    with_values(Position(account_id="f001", symbol="ESZ6"), average_price="Infinity"),
    with_values(Position(account_id="f001", symbol="ESZ6"), realized_pnl="NaN"),
    with_values(Position(account_id="f001", symbol="ESZ6"), recent_fill_ids=["x"] * 10_000),
]


def test_the_dashboard_skips_hostile_records_counts_them_and_logs_once(caplog: pytest.LogCaptureFixture) -> None:
    feed = KafkaFeed("127.0.0.1:1", "", LiveState(empty_config()), hub=None)
    with caplog.at_level(logging.WARNING, logger="copytrader.web.realtime"):
        for offset, hostile in enumerate(HOSTILE_EXECUTIONS):
            assert feed._apply("trade.executions", 0, offset, hostile) == []
        for offset, hostile in enumerate(HOSTILE_POSITIONS):
            assert feed._apply("positions.updates", 0, offset, hostile) == []
    assert feed.skipped == len(HOSTILE_EXECUTIONS) + len(HOSTILE_POSITIONS)
    assert len([r for r in caplog.records if "skipped a record" in r.getMessage()]) == 1
    good = ExecutionBatch(executions=[outcome(1)]).dumps()
    assert [row["execution_id"] for s, row in feed._apply("trade.executions", 0, 99, good) if s == "orders"] == [
        "f001|e1"
    ]
    position = PositionBatch(positions=[Position(account_id="f001", symbol="ESZ6", net_quantity=2)]).dumps()
    assert [row["key"] for s, row in feed._apply("positions.updates", 0, 99, position) if s == "positions"] == [
        "f001|ESZ6"
    ]


def test_the_observer_counts_hostile_records_and_reads_on() -> None:
    observer = RunObserver("unused:9092", "", parse_config(demo_config(2), env={}))
    for hostile in HOSTILE_EXECUTIONS:
        observer.take("trade.executions", hostile)
    for hostile in HOSTILE_POSITIONS:
        observer.take("positions.updates", hostile)
    assert observer.seen.unreadable == {
        "trade.executions": len(HOSTILE_EXECUTIONS),
        "positions.updates": len(HOSTILE_POSITIONS),
    }
    observer.take("trade.executions", ExecutionBatch(executions=[outcome(1)]).dumps())
    observer.take("positions.updates", Position(account_id="f001", symbol="ESZ6", net_quantity=2).dumps())
    assert list(observer.seen.outcomes) == [("leader-1:1:new", "f001")]
    assert observer.seen.positions[("f001", "ESZ6")].net_quantity == 2


def test_the_soak_judge_counts_records_it_cannot_read_and_reads_on() -> None:
    judge = Judge()
    for hostile in HOSTILE_EXECUTIONS:
        judge.take("trade.executions", hostile)
    judge.take("order.errors", b'["not", "an", "error"]')
    # A light read, by design (demo/soak.py): it counts the 1e308 ack as an outcome (it reads no
    # quantity); the other five, and the error that is a list, are unreadable. It reads on.
    assert judge.unreadable == 6
    judge.take("trade.executions", ExecutionBatch(executions=[outcome(1)]).dumps())
    assert judge.outcomes[("leader-1:1:new", "f001")] == "ack"
    assert judge.internal_ms[-1] == pytest.approx(4.0, abs=0.01)


def test_a_hostile_price_never_reaches_the_dashboards_slippage() -> None:
    """A fill with a 24-digit price is refused at decode; the dashboard never computes with it."""
    fill = Execution(
        execution_id="f001|B1|fill|1",
        account_id="f001",
        platform="paper",
        kind="fill",
        symbol="ESZ6",
        side="buy",
        quantity=1,
        price=Decimal("5000.25"),
    )
    feed = KafkaFeed("127.0.0.1:1", "", LiveState(empty_config()), hub=None)
    assert feed._apply("trade.executions", 0, 1, with_values(fill, price="1" * 40)) == []
    assert feed.skipped == 1

"""Slippage per copy in the executions table and the slippage report, on SQLite and PostgreSQL.

Leader and follower fills reach the sink in either order and in different batches; each copy's
slippage is settled from what the table holds after every batch.
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import Engine, inspect, select, text
from sqlalchemy.orm import Session

from copytrader.core import ids
from copytrader.core.config import parse_config
from copytrader.core.records import Execution
from copytrader.storage import mapping, migrate, reports
from copytrader.storage.configsync import sync_config
from copytrader.storage.db import make_engine, session_factory
from copytrader.storage.models import ExecutionRow
from copytrader.storage.writer import BatchWriter

AT = datetime(2026, 3, 2, 14, 0, tzinfo=UTC)
NEW = ids.signal_id("L1", "77", "new")
CONFIG = {
    "sessions": [{"id": "p", "platform": "paper"}],
    "accounts": [{"id": a, "session": "p"} for a in ("L1", "F1", "F2", "F3", "L2", "F4")],
    "copy_groups": [
        {
            "id": "g1",
            "leader": "L1",
            "followers": [
                {"account": "F1"},
                {"account": "F2", "rule": {"inverse": True}},
                {"account": "F3", "rule": {"symbol_map": {"ES": "MES"}}},
            ],
        },
        {"id": "g2", "leader": "L2", "followers": [{"account": "F4"}]},
    ],
}


def ack(account: str, side: str, signal: str = NEW, reference: str | None = "5000.125") -> Execution:
    return Execution(
        execution_id=f"{account}|{signal}|ack",
        account_id=account,
        platform="paper",
        kind="ack",
        client_order_id=ids.client_order_id(signal, account),
        signal_id=signal,
        symbol="ESZ6",
        side=side,
        quantity=2,
        request_outcome=True,
        reference_price=Decimal(reference) if reference else None,
        occurred_at=AT,
    )


def fill(
    account: str, n: int, side: str, qty: int, price: str, *, signal: str | None = NEW, symbol: str = "ESZ6"
) -> Execution:
    """A follower fill; ``signal=None`` is one that arrived without its in-flight data (restart)."""
    return Execution(
        execution_id=f"{account}|B{account}|fill|{n}",
        account_id=account,
        platform="paper",
        kind="partial_fill" if n == 1 else "fill",
        client_order_id=ids.client_order_id(NEW if signal is None else signal, account),
        broker_order_id=f"B{account}",
        signal_id=signal,
        symbol=symbol,
        side=side,
        quantity=qty,
        price=Decimal(price),
        occurred_at=AT + timedelta(seconds=n),
    )


def leader_fill(n: int, qty: int, price: str, order: str = "77", leader: str = "L1") -> Execution:
    return Execution(
        execution_id=f"{leader}|{order}|fill|{n}",
        account_id=leader,
        platform="paper",
        kind="fill",
        broker_order_id=order,
        signal_id=ids.signal_id(leader, order, "fill", n),
        symbol="ESZ6",
        side="buy",
        quantity=qty,
        price=Decimal(price),
        is_leader=True,
        occurred_at=AT,
    )


def write(engine: Engine, *records: Execution) -> None:
    BatchWriter(engine).write(mapping.executions_batch(records))


def rows(db: Session, account: str) -> list[tuple[Any, ...]]:
    stmt = (
        select(
            ExecutionRow.price,
            ExecutionRow.leader_price,
            ExecutionRow.slippage_leader_ticks,
            ExecutionRow.slippage_leader_amount,
            ExecutionRow.slippage_ref_ticks,
            ExecutionRow.slippage_ref_amount,
        )
        .where(ExecutionRow.account_id == account, ExecutionRow.kind.in_(("fill", "partial_fill")))
        .order_by(ExecutionRow.occurred_at)
    )
    return [tuple(r) for r in db.execute(stmt)]


def D(text_: str) -> Decimal:
    return Decimal(text_)


def test_follower_fills_before_the_leader_fill_are_unknown_then_settled(engine: Engine) -> None:
    # Batch 1: the follower's ack and two partial fills; the leader's fill is not in yet.
    write(engine, ack("F1", "buy"), fill("F1", 1, "buy", 1, "5000.50"), fill("F1", 2, "buy", 1, "5000.75"))
    with session_factory(engine)() as db:
        first = rows(db, "F1")
    # Against the leader: unknown (NULL), never 0. Against the reference (5000.125): known.
    assert [r[1:4] for r in first] == [(None, None, None), (None, None, None)]
    assert [(r[4], r[5]) for r in first] == [(D("1.5"), D("18.75")), (D("2.5"), D("31.25"))]
    # Batch 2: the leader's two partial fills (average 5000.375) settle both follower fills.
    write(engine, leader_fill(1, 1, "5000.25"), leader_fill(2, 1, "5000.50"))
    with session_factory(engine)() as db:
        settled = rows(db, "F1")
    assert [r[1:4] for r in settled] == [
        (D("5000.375"), D("0.5"), D("6.25")),  # 0.125 worse = half a tick = $6.25 on ES
        (D("5000.375"), D("1.5"), D("18.75")),
    ]


def test_signs_follow_the_follower_side_and_the_follower_instrument(engine: Engine) -> None:
    write(engine, leader_fill(1, 2, "5000.375"))
    write(
        engine,
        ack("F2", "sell"),
        fill("F2", 1, "sell", 1, "5000.00"),  # inverse: sold lower than the leader bought: worse
        fill("F2", 2, "sell", 1, "5001.00"),  # sold higher: better, negative
        ack("F3", "buy"),
        fill("F3", 1, "buy", 2, "5000.125", symbol="MESZ6"),  # MES: $5 a point; bought lower: better
    )
    with session_factory(engine)() as db:
        assert [r[2:4] for r in rows(db, "F2")] == [(D("1.5"), D("18.75")), (D("-2.5"), D("-31.25"))]
        assert [r[2:6] for r in rows(db, "F3")] == [(D("-1"), D("-2.5"), D(0), D(0))]


def test_a_fill_without_its_in_flight_data_takes_signal_and_reference_from_its_ack(engine: Engine) -> None:
    write(engine, fill("F1", 1, "buy", 2, "5000.50", signal=None))
    write(engine, ack("F1", "buy"), leader_fill(1, 2, "5000.25"))
    with session_factory(engine)() as db:
        assert rows(db, "F1") == [(D("5000.50"), D("5000.25"), D(1), D(25), D("1.5"), D("37.5"))]


def test_unknown_leader_and_unknown_reference_stay_unknown(engine: Engine) -> None:
    hook = "webhook-123"  # a signal id that names no leader order
    write(engine, ack("F4", "buy", signal=hook, reference=None), fill("F4", 1, "buy", 1, "5000", signal=hook))
    with session_factory(engine)() as db:
        assert rows(db, "F4") == [(D(5000), None, None, None, None, None)]


def test_report_per_account_and_group_with_average_worst_and_unknowns(engine: Engine) -> None:
    with session_factory(engine).begin() as db:
        sync_config(db, parse_config(CONFIG, env={}))
    write(engine, leader_fill(1, 2, "5000.375"))
    write(
        engine,
        ack("F1", "buy"),
        fill("F1", 1, "buy", 1, "5000.50"),  # +0.5 tick
        fill("F1", 2, "buy", 1, "5001.00"),  # +2.5 ticks → copy: 1.5 ticks, $6.25 + $31.25
        ack("F2", "sell"),
        fill("F2", 1, "sell", 2, "5000.375"),  # 0 ticks, exactly the leader
        ack("F4", "buy", signal=ids.signal_id("L2", "9", "new"), reference=None),
        fill("F4", 1, "buy", 1, "5000", signal=ids.signal_id("L2", "9", "new")),  # L2 never filled: unknown
    )
    with session_factory(engine)() as db:
        found = {(r.scope, r.key): r for r in reports.slippage_report(db, date(2026, 3, 2), date(2026, 3, 3))}
        assert set(found) == {("account", "F1"), ("account", "F2"), ("account", "F4"), ("group", "g1"), ("group", "g2")}
        f1, g1, g2 = found[("account", "F1")], found[("group", "g1")], found[("group", "g2")]
        assert (f1.copies, f1.leader_known, f1.leader_avg_ticks, f1.leader_worst_ticks) == (1, 1, D("1.5"), D("1.5"))
        assert (f1.leader_total_amount, f1.ref_avg_ticks) == (D("37.5"), D("2.5"))  # ref 5000.125: 1.5 and 3.5 ticks
        assert (g1.copies, g1.leader_known, g1.leader_avg_ticks, g1.leader_worst_ticks) == (2, 2, D("0.75"), D("1.5"))
        assert (g1.leader_worst_amount, g1.leader_total_amount) == (D("37.5"), D("37.5"))
        assert (g2.copies, g2.leader_known, g2.leader_avg_ticks, g2.ref_known, g2.ref_avg_ticks) == (
            1,
            0,
            None,
            0,
            None,
        )
        assert reports.slippage_report(db, date(2026, 3, 3), None) == []
        table = list(csv.DictReader(io.StringIO(reports.slippage_csv(db))))
    g2_row = next(r for r in table if r["key"] == "g2")
    assert g2_row["leader_avg_ticks"] == "" and g2_row["copies"] == "1"  # unknown is empty, not 0


def test_0003_upgrades_with_rows_kept_and_downgrades(db_url: str) -> None:
    from alembic import command

    migrate.upgrade(db_url, revision="0002")
    engine = make_engine(db_url)
    try:
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO executions (execution_id, account_id, platform, kind, symbol, side, quantity, price,"
                    " cumulative_quantity, leaves_quantity, is_leader, duplicate, request_outcome, occurred_at, stamps)"
                    " VALUES ('x|1', 'F1', 'paper', 'fill', 'ESZ6', 'buy', 1, 5000, 1, 0, false, false, false,"
                    " '2026-03-02 14:00:00', '{}')"
                )
            )
        assert migrate.upgrade(engine=engine, revision="0003").revision == "0003"
        columns = {c["name"] for c in inspect(engine).get_columns("executions")}
        assert {"reference_price", "band_ticks", "slippage_leader_ticks", "slippage_ref_amount"} <= columns
        assert "ix_executions_broker_order_id" in {i["name"] for i in inspect(engine).get_indexes("executions")}
        with engine.connect() as conn:
            kept = conn.execute(text("SELECT execution_id, slippage_leader_ticks FROM executions")).all()
        assert [tuple(r) for r in kept] == [("x|1", None)]
        with engine.begin() as conn:
            command.downgrade(migrate.alembic_config(conn), "0002")
        assert "reference_price" not in {c["name"] for c in inspect(engine).get_columns("executions")}
    finally:
        engine.dispose()


def correction(account: str, n: int, qty: int, price: str | None) -> Execution:
    """A bust (``qty`` 0) or correction of follower fill ``n`` (as the executor publishes it)."""
    return Execution(
        execution_id=f"{account}|B{account}|correction|{n}",
        account_id=account,
        platform="paper",
        kind="fill_bust" if qty == 0 else "fill_correction",
        client_order_id=ids.client_order_id(NEW, account),
        broker_order_id=f"B{account}",
        symbol="ESZ6",
        side="buy",
        quantity=qty,
        price=Decimal(price) if price else None,
        corrects=f"{account}|B{account}|fill|{n}",
        original_quantity=1,
        original_price=Decimal("5001.00"),
        occurred_at=AT + timedelta(minutes=1),
    )


def test_a_corrected_fill_is_measured_at_its_corrected_price_and_a_busted_one_not_at_all(engine: Engine) -> None:
    with session_factory(engine).begin() as db:
        sync_config(db, parse_config(CONFIG, env={}))
    write(engine, leader_fill(1, 2, "5000.00"))
    write(engine, ack("F1", "buy"), fill("F1", 1, "buy", 1, "5001.00"), fill("F1", 2, "buy", 1, "5001.00"))
    write(engine, correction("F1", 1, 1, "5000.50"), correction("F1", 2, 0, None))
    with session_factory(engine)() as db:
        corrected, busted = rows(db, "F1")
        assert corrected[2:4] == (D(2), D(25))  # 5000.50 against 5000.00, not the reported 5001.00
        assert busted[1:] == (None, None, None, None, None)
        (f1,) = [r for r in reports.slippage_report(db) if r.key == "F1"]
    # The copy is its one remaining fill: 2 ticks, not an average with the busted one.
    assert (f1.copies, f1.leader_known, f1.leader_avg_ticks, f1.leader_total_amount) == (1, 1, D(2), D(25))

"""Reports on sample data: daily P&L, latency percentiles, rejects, drift, and their CSV."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from copytrader.common.stats import percentile
from copytrader.core.config import parse_config
from copytrader.core.records import Execution, OrderError, Position
from copytrader.storage import mapping, reports
from copytrader.storage.configsync import sync_config
from copytrader.storage.db import session_factory
from copytrader.storage.models import Account, CopyRule
from copytrader.storage.writer import BatchWriter

D1 = datetime(2026, 3, 2, 14, 0, tzinfo=UTC)
D2 = D1 + timedelta(days=1)
CONFIG = {
    "sessions": [{"id": "p", "platform": "paper"}, {"id": "t", "platform": "tradovate"}],
    "accounts": [
        {"id": "L1", "session": "p", "size": 100000},
        {"id": "F1", "session": "p", "size": 50000},
        {"id": "F2", "session": "t", "size": 50000},
        {"id": "F3", "session": "t", "size": 50000},
    ],
    "copy_groups": [
        {
            "id": "g1",
            "leader": "L1",
            "followers": [
                {"account": "F1", "rule": {"mode": "multiplier", "multiplier": 2}},
                {"account": "F2", "rule": {"mode": "fixed", "quantity": 1, "symbol_map": {"ES": "MES"}}},
                {"account": "F3", "rule": {"mode": "multiplier", "inverse": True}},
            ],
        }
    ],
}


def _pos(account: str, symbol: str, ts: datetime, net: int, pnl: str) -> Position:
    return Position(
        account_id=account,
        symbol=symbol,
        net_quantity=net,
        average_price=Decimal(5000) if net else None,
        realized_pnl=Decimal(pnl),
        fills=1,
        updated_at=ts,
    )


def _answer(n: int, platform: str, at: datetime, e2e_ms: float, internal_ms: float, kind: str = "ack") -> Execution:
    t = at.timestamp()
    return Execution(
        execution_id=f"{platform}-{n}",
        account_id="F1" if platform == "paper" else "F2",
        platform=platform,
        kind=kind,
        client_order_id=f"CT{n}",
        signal_id=f"sig{n}",
        symbol="ESM6",
        side="buy",
        quantity=1,
        request_outcome=True,
        reason="insufficient margin" if kind == "reject" else None,
        occurred_at=at,
        stamps={"detected": t, "sent": t + internal_ms / 1000, "acked": t + e2e_ms / 1000},
    )


@pytest.fixture
def loaded(engine: Engine) -> Engine:
    with session_factory(engine).begin() as db:
        sync_config(db, parse_config(CONFIG, env={}))
    batch = mapping.positions_batch(
        [
            _pos("L1", "ESM6", D1, 2, "0"),
            _pos("L1", "ESM6", D1 + timedelta(hours=1), 0, "250"),
            _pos("L1", "NQM6", D1 + timedelta(hours=2), 0, "-50"),
            _pos("L1", "ESM6", D2, 0, "400"),  # day 2: +150 on ES
            _pos("F1", "ESM6", D2, 4, "100"),  # drift check: leader flat on ES at D2 ... see below
            _pos("L1", "ESM6", D2 + timedelta(hours=1), -3, "400"),
            _pos("F1", "ESM6", D2 + timedelta(hours=1), -6, "100"),  # 2x leader: in line
            _pos("F2", "MESM6", D2 + timedelta(hours=1), -2, "0"),  # fixed 1: expected -1 → drift +(-1)
            _pos("F3", "ESM6", D2 + timedelta(hours=1), 1, "0"),  # inverse: expected +3 → drift -2
            _pos("F3", "NQM6", D2 + timedelta(hours=1), 2, "0"),  # leader flat on NQ → expected 0
        ]
    )
    answers = [_answer(i, "paper", D1, e2e_ms=10.0 * (i + 1), internal_ms=float(i + 1)) for i in range(10)]
    answers.append(_answer(99, "tradovate", D2, e2e_ms=30.0, internal_ms=3.0, kind="reject"))
    batch.extend(mapping.executions_batch(answers))
    batch.extend(
        mapping.errors_batch(
            [
                OrderError(error_id="e1", stage="ingest", reason="=HYPERLINK(bad)", code="MALFORMED", occurred_at=D1),
            ]
        )
    )
    BatchWriter(engine).write(batch)
    return engine


def test_pnl_by_day(loaded: Engine) -> None:
    with session_factory(loaded)() as db:
        rows = {(r.day, r.account_id): r for r in reports.pnl_by_day(db)}
        only_day2 = reports.pnl_by_day(db, start=D2.date(), end=D2.date() + timedelta(days=1))
    leader_d1 = rows[(D1.date(), "L1")]
    assert leader_d1.realized_pnl == Decimal(200) and leader_d1.symbols == 2  # 250 on ES, -50 on NQ
    assert rows[(D2.date(), "L1")].realized_pnl == Decimal(150)
    assert [(r.account_id, r.realized_pnl) for r in only_day2 if r.account_id == "L1"] == [("L1", Decimal(150))]


def test_latency_percentiles(loaded: Engine) -> None:
    with session_factory(loaded)() as db:
        rows = reports.latency_by_day(db)
    paper = next(r for r in rows if r.platform == "paper")
    assert paper.day == D1.date() and paper.copies == 10 and paper.account_id == "F1"
    assert paper.e2e_p50_ms == pytest.approx(55.0, abs=0.01)  # 10..100 ms, linear interpolation
    assert paper.e2e_p90_ms == pytest.approx(91.0, abs=0.01)
    assert paper.e2e_max_ms == pytest.approx(100.0, abs=0.01)
    assert paper.internal_p99_ms == pytest.approx(9.91, abs=0.01)
    tradovate = next(r for r in rows if r.platform == "tradovate")
    assert (
        tradovate.day == D2.date() and tradovate.copies == 1 and tradovate.e2e_p50_ms == pytest.approx(30.0, abs=0.01)
    )
    assert tradovate.account_id == "F2"


def test_latencies_are_rounded_to_the_microsecond(engine: Engine) -> None:
    """Reports once printed ``15.096499999999999``: figures carry at most three decimals."""
    answers = [_answer(i, "paper", D1, e2e_ms=15.0964999 + i / 3, internal_ms=1 / 3) for i in range(3)]
    BatchWriter(engine).write(mapping.executions_batch(answers))
    with session_factory(engine)() as db:
        (row,) = reports.latency_by_day(db)
        text = reports.latency_csv(db)
    for value in (row.e2e_p50_ms, row.e2e_p90_ms, row.e2e_max_ms, row.internal_p99_ms):
        assert value is not None and value == round(value, 3)
    assert "15.096499" not in text and ",15.430," in text


def test_percentile_formula() -> None:
    """One formula for the dashboard, the reports and the bench (``app.stats``)."""
    assert percentile([], 0.5) is None
    assert percentile([5.0], 0.99) == 5.0
    assert percentile([1.0, 2.0, 3.0, 4.0], 0.5) == 2.5
    assert percentile([float(v) for v in range(1, 101)], 0.99) == 99.01
    with pytest.raises(ValueError):
        percentile([1.0], 50)


def test_rejects_with_reasons_and_csv_is_injection_safe(loaded: Engine) -> None:
    with session_factory(loaded)() as db:
        found = reports.rejects(db)
        text = reports.rejects_csv(db)
    assert [(r.source, r.reason) for r in found] == [("ingest", "=HYPERLINK(bad)"), ("broker", "insufficient margin")]
    assert found[0].code == "MALFORMED"
    table = list(csv.DictReader(io.StringIO(text)))
    assert table[0]["reason"] == "'=HYPERLINK(bad)" and table[1]["reason"] == "insufficient margin"
    summary = reports.reject_summary(found)
    assert [(s.source, s.count) for s in summary] == [("ingest", 1), ("broker", 1)]


def test_drift(loaded: Engine) -> None:
    with session_factory(loaded)() as db:
        found = {(d.follower_account, d.follower_symbol): d for d in reports.drift(db)}
        before = reports.drift(db, as_of=D1 + timedelta(hours=1, minutes=30))
    assert ("F1", "ESM6") not in found
    assert found[("F2", "MESM6")].expected_net == -1 and found[("F2", "MESM6")].difference == -1
    assert found[("F3", "ESM6")].expected_net == 3 and found[("F3", "ESM6")].difference == -2
    nq = found[("F3", "NQM6")]
    assert nq.expected_net == 0 and nq.actual_net == 2 and nq.leader_symbol in (None, "NQM6")
    assert before == []  # at that time the leader was flat and no follower held anything


def test_csv_exports_have_headers_and_values(loaded: Engine) -> None:
    with session_factory(loaded)() as db:
        pnl = list(csv.DictReader(io.StringIO(reports.pnl_csv(db))))
        latency = list(csv.DictReader(io.StringIO(reports.latency_csv(db, D1.date(), D1.date() + timedelta(days=1)))))
        drift = reports.drift_csv(db)
    assert pnl[0].keys() >= {"day", "account_id", "realized_pnl"}
    assert {r["platform"] for r in latency} == {"paper"} and latency[0]["e2e_p50_ms"] == "55.000"
    assert drift.splitlines()[0].startswith("group_id,leader_account,follower_account")


def test_empty_reports_still_have_a_header(db: Session) -> None:
    assert reports.pnl_csv(db).strip() == "day,account_id,realized_pnl,cumulative_realized_pnl,symbols"
    assert reports.latency_by_day(db) == [] and reports.drift(db) == []


def test_config_sync_disables_what_left_the_config(loaded: Engine) -> None:
    smaller = {
        **CONFIG,
        "accounts": CONFIG["accounts"][:3],
        "copy_groups": [{"id": "g1", "leader": "L1", "followers": [{"account": "F1", "rule": {"multiplier": 2}}]}],
    }
    with session_factory(loaded).begin() as db:
        sync_config(db, parse_config(smaller, env={}))
    with session_factory(loaded)() as db:
        assert db.get(Account, "F3").enabled is False  # type: ignore[union-attr]
        enabled = {r.follower_account_id for r in db.query(CopyRule).filter(CopyRule.enabled.is_(True))}
    assert enabled == {"F1"}


def test_default_range() -> None:
    assert reports.default_range(7, date(2026, 3, 10)) == (date(2026, 3, 4), date(2026, 3, 11))

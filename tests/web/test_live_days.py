"""The dashboard's live state keeps a bounded number of days (#16 item 5, memory).

Latency samples, copy counts and P&L closes are kept per day; a worker that runs for months
must not keep every day it has seen. The dashboard reads today, the live reports a week; a
dropped day's P&L close is kept as the start of the oldest kept day, so P&L stays right.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from copytrader.app.factory import empty_config
from copytrader.core.records import Execution, Position
from copytrader.web.live import LIVE_DAYS, LiveState
from copytrader.web.reports import LiveReports

START = date(2026, 1, 1)


def noon(day: int) -> datetime:
    return datetime.combine(START + timedelta(days=day), datetime.min.time(), UTC) + timedelta(hours=12)


def copy_on(day: int, n: int, account: str = "f1") -> Execution:
    at = noon(day)
    return Execution(
        execution_id=f"{account}|{day}|{n}",
        account_id=account,
        platform="paper",
        kind="ack",
        signal_id=f"L:{day}-{n}:new",
        client_order_id=f"c{day}-{n}",
        request_outcome=True,
        symbol="ESZ6",
        side="buy",
        quantity=1,
        occurred_at=at,
        stamps={"detected": at.timestamp(), "acked": at.timestamp() + 0.01},
    )


def close_on(day: int, realized: str, account: str = "f1") -> Position:
    return Position(account_id=account, symbol="ESZ6", realized_pnl=Decimal(realized), updated_at=noon(day))


def test_latency_and_copy_counts_keep_only_the_last_days() -> None:
    live = LiveState(empty_config())
    offset = 0
    for day in range(60):  # two months of a worker that is never restarted
        for n in range(3):
            offset += 1
            live.apply_execution(copy_on(day, n), 0, offset)
    kept = sorted(live.latency)
    assert len(kept) == LIVE_DAYS
    assert kept[-1] == (START + timedelta(days=59)).isoformat()
    assert {day for day, _ in live.copies} == set(kept)
    assert all(live.copies[(day, "f1")] == 3 for day in kept)
    # the day the dashboard shows is intact
    assert live.accounts["f1"].last_signal == "L:59-2:new"


def test_an_execution_older_than_every_kept_day_is_not_counted_and_evicts_nothing() -> None:
    live = LiveState(empty_config())
    for day in range(LIVE_DAYS):
        live.apply_execution(copy_on(day + 10, 0), 0, day + 1)
    before = dict(live.copies)
    live.apply_execution(copy_on(0, 0), 0, 100)  # a replayed copy from long ago
    assert dict(live.copies) == before
    assert sorted(live.latency) == sorted(day for day, _ in before)


def test_pnl_stays_right_after_old_days_are_dropped() -> None:
    live = LiveState(empty_config())
    realized = Decimal(0)
    for day in range(30):
        realized += Decimal(day + 1)  # each day makes day+1 more than the close before it
        live.apply_position(close_on(day, str(realized)), 0, day + 1)
    closes = live.pnl_closes[("f1", "ESZ6")]
    assert len(closes) == LIVE_DAYS + 1  # the kept days and the base of the oldest one
    today = (START + timedelta(days=29)).isoformat()
    assert live.pnl_today("f1", today) == Decimal(30)
    rows = asyncio.run(LiveReports(live).rows("pnl", None, None))
    assert [(r["day"], r["realized_pnl"]) for r in rows] == [
        ((START + timedelta(days=d)).isoformat(), str(d + 1)) for d in range(30 - LIVE_DAYS, 30)
    ]
    # a close from a dropped day (a replay) does not move the base the kept days count from
    live.apply_position(close_on(3, "-999"), 0, 1000)
    assert live.pnl_today("f1", today) == Decimal(30)
    assert asyncio.run(LiveReports(live).rows("pnl", None, None)) == rows

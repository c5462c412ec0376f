"""The dashboard feed applies a fetch in one ``LiveState.batch``: each account's grid row is
built once, after the fetch, and says what the last of the unbatched rows would have said.
P&L today is read per account (``_closes_of``), and matches a pass over every close."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from copytrader.app.factory import empty_config
from copytrader.core.records import AccountStatus, Execution, Position
from copytrader.web.live import LiveState

START = date(2026, 3, 2)
ACCOUNTS = ("f1", "f2", "f3")
SYMBOLS = ("ESZ6", "NQZ6")


def at(day: int) -> datetime:
    return datetime.combine(START + timedelta(days=day), datetime.min.time(), UTC) + timedelta(hours=12)


def execution(n: int, account: str, kind: str, day: int) -> Execution:
    when = at(day)
    return Execution(
        execution_id=f"{account}|{n}",
        account_id=account,
        platform="paper",
        kind=kind,
        signal_id=f"L:{n}:new",
        client_order_id=f"c{n}",
        broker_order_id=f"b{n}",
        request_outcome=kind == "ack",
        symbol="ESZ6",
        side="buy",
        quantity=1,
        price=Decimal("5000.25") if kind == "fill" else None,
        leaves_quantity=0,
        occurred_at=when,
        stamps={"detected": when.timestamp(), "acked": when.timestamp() + 0.01},
    )


record = st.one_of(
    st.tuples(st.just("execution"), st.sampled_from(ACCOUNTS), st.sampled_from(("ack", "fill", "cancelled"))),
    st.tuples(st.just("position"), st.sampled_from(ACCOUNTS), st.sampled_from(SYMBOLS)),
    st.tuples(st.just("status"), st.sampled_from(ACCOUNTS), st.sampled_from(("connected", "degraded"))),
)


def apply(live: LiveState, records: list[tuple[str, str, str]], day: int) -> list[tuple[str, dict[str, Any]]]:
    changes: list[tuple[str, dict[str, Any]]] = []
    for n, (kind, account, what) in enumerate(records):
        if kind == "execution":
            changes += live.apply_execution(execution(n, account, what, day), 0, n)
        elif kind == "position":
            position = Position(
                account_id=account, symbol=what, net_quantity=n, realized_pnl=Decimal(n), updated_at=at(day)
            )
            changes += live.apply_position(position, 0, n)
        else:
            changes += live.apply_status(AccountStatus(account_id=account, platform="paper", connection=what))
    return changes


@settings(max_examples=60, deadline=None)
@given(st.lists(record, max_size=25))
def test_a_batch_pushes_each_touched_accounts_last_row_once(records: list[tuple[str, str, str]]) -> None:
    day = (datetime.now(UTC).date() - START).days  # today: the rows' P&L today is not zero
    one_by_one, batched = LiveState(empty_config()), LiveState(empty_config())
    unbatched = apply(one_by_one, records, day)
    with batched.batch() as grid:
        changes = apply(batched, records, day)
    assert all(stream != "grid" for stream, _ in changes)  # held back until the batch ends
    assert changes == [change for change in unbatched if change[0] != "grid"]
    last = {row["account_id"]: row for stream, row in unbatched if stream == "grid"}
    assert [stream for stream, _ in grid] == ["grid"] * len(grid)
    assert {row["account_id"]: row for _, row in grid} == last  # same rows, same versions
    assert len(grid) == len(last)  # one per account
    assert batched.cursors == one_by_one.cursors
    assert batched.grid() == one_by_one.grid()


def test_outside_a_batch_every_change_carries_its_grid_row() -> None:
    live = LiveState(empty_config())
    with live.batch():
        pass
    changes = live.apply_execution(execution(1, "f1", "ack", 0), 0, 1)
    assert [stream for stream, _ in changes] == ["orders", "grid"]


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(ACCOUNTS), st.sampled_from(SYMBOLS), st.integers(0, 9), st.integers(-500, 500)),
        max_size=40,
    ),
    st.integers(0, 9),
)
def test_pnl_today_per_account_matches_a_pass_over_every_close(
    closes: list[tuple[str, str, int, int]], today_index: int
) -> None:
    live = LiveState(empty_config())
    for offset, (account, symbol, day, realized) in enumerate(closes):
        position = Position(account_id=account, symbol=symbol, realized_pnl=Decimal(realized), updated_at=at(day))
        live.apply_position(position, 0, offset)
    today = (START + timedelta(days=today_index)).isoformat()
    for account in ACCOUNTS:
        expected = Decimal(0)
        for (owner, _symbol), kept in live.pnl_closes.items():
            if owner == account and today in kept:
                before = [d for d in kept if d < today]
                expected += kept[today] - (kept[max(before)] if before else Decimal(0))
        assert live.pnl_today(account, today) == expected

"""Slippage arithmetic: signs (positive = worse for the follower), ticks and money per
instrument, partial fills averaged, unknown benchmarks unknown (never 0)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from copytrader.core import ids
from copytrader.core.slippage import (
    CopySlippage,
    average_price,
    fill_slippage,
    key_splits,
    leader_fill_key,
    leader_order_key,
    slippage,
    summarize,
)

D = Decimal


@pytest.mark.parametrize(
    ("side", "price", "bench", "qty", "symbol", "ticks", "amount"),
    [
        ("buy", "5000.50", "5000.00", 1, "ESZ6", "2", "25"),  # ES: $12.50 a tick; paid more: worse
        ("buy", "4999.75", "5000.00", 2, "ESZ6", "-1", "-25"),  # paid less: better, negative
        ("sell", "4999.50", "5000.00", 1, "ESZ6", "2", "25"),  # sold lower: worse
        ("sell", "5000.25", "5000.00", 3, "MESZ6", "-1", "-3.75"),  # MES: $1.25 a tick
        ("buy", "18001.00", "18000.00", 1, "NQZ6", "4", "20"),  # NQ: $5 a tick
        ("sell", "74.97", "75.00", 1, "CLZ6", "3", "30"),  # CL: $10 a tick
        ("buy", "5000.125", "5000.00", 1, "ESZ6", "0.5", "6.25"),  # an averaged price: half a tick
    ],
)
def test_signs_ticks_and_money_per_instrument(
    side: str, price: str, bench: str, qty: int, symbol: str, ticks: str, amount: str
) -> None:
    got = slippage(side, D(price), D(bench), qty, symbol)
    assert got is not None and (got.ticks, got.amount) == (D(ticks), D(amount))


@pytest.mark.parametrize(
    ("price", "bench", "symbol", "side"),
    [
        (None, "5000", "ESZ6", "buy"),
        ("5000", None, "ESZ6", "buy"),
        ("5000", "5000", "ZZZZ6", "buy"),
        ("1", "1", "ESZ6", ""),
    ],
)
def test_unknown_is_none_never_zero(price: str | None, bench: str | None, symbol: str, side: str) -> None:
    assert slippage(side, D(price) if price else None, D(bench) if bench else None, 1, symbol) is None


def test_exactly_the_benchmark_is_zero_not_unknown() -> None:
    got = slippage("buy", D(5000), D(5000), 1, "ESZ6")
    assert got is not None and got.ticks == 0


def test_partial_fills_average_by_quantity() -> None:
    assert average_price([(1, D("5000.25")), (3, D("5000.75"))]) == D("5000.625")
    assert average_price([]) is None and average_price([(0, D(1)), (2, None)]) is None


def test_copy_averages_its_fills_and_is_unknown_if_any_fill_is() -> None:
    leader = D("5000.00")
    fills = [
        (1, fill_slippage("buy", D("5000.25"), 1, "ESZ6", leader, None)),
        (3, fill_slippage("buy", D("5000.50"), 3, "ESZ6", leader, None)),
    ]
    copy = CopySlippage.of_fills("c", "F1", "g", fills)
    assert (copy.quantity, copy.leader_ticks, copy.leader_amount) == (4, D("1.75"), D("87.5"))
    assert (copy.ref_ticks, copy.ref_amount) == (None, None)
    half = CopySlippage.of_fills("c", "F1", "g", [fills[0], (1, fill_slippage("buy", D(5000), 1, "ESZ6", None, None))])
    assert half.leader_ticks is None


def test_summary_keeps_unknown_copies_out_of_averages() -> None:
    known = CopySlippage("a", "F1", "g", 1, D(2), D(25), None, None)
    worse = CopySlippage("b", "F1", "g", 1, D(4), D(50), D(1), D("12.5"))
    unknown = CopySlippage("c", "F2", None, 1, None, None, None, None)
    rows = {(r.scope, r.key): r for r in summarize([known, worse, unknown])}
    f1, f2, g = rows[("account", "F1")], rows[("account", "F2")], rows[("group", "g")]
    assert (f1.copies, f1.leader_known, f1.leader_avg_ticks, f1.leader_worst_ticks, f1.leader_total_amount) == (
        2,
        2,
        D(3),
        D(4),
        D(75),
    )
    assert (f1.ref_known, f1.ref_avg_ticks, f1.ref_worst_amount) == (1, D(1), D("12.5"))
    assert (f2.copies, f2.leader_known, f2.leader_avg_ticks, f2.leader_worst_amount) == (1, 0, None, None)
    assert g.copies == 2 and ("group", None) not in rows


@pytest.mark.parametrize(("leader", "order"), [("L1", "77"), ("firm:L1", "77"), ("L1", "a:b"), ("x", "1")])
def test_leader_order_key_matches_the_leader_fill_key_even_with_colons(leader: str, order: str) -> None:
    key = leader_fill_key(leader, order)
    assert leader_order_key(ids.signal_id(leader, order, "new")) == key
    assert leader_order_key(ids.signal_id(leader, order, "flatten", 0)) == key
    assert (leader, order) in key_splits(key)


@pytest.mark.parametrize("signal", [None, "", "webhook-1", ids.signal_id("L", "1", "modify", 2), ":new"])
def test_signals_that_copy_no_leader_order_have_no_key(signal: str | None) -> None:
    assert leader_order_key(signal) is None

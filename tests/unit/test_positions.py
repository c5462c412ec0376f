"""Positions from fills: averaging, realised P&L, flips and duplicate fills."""

from decimal import Decimal

from copytrader.core.records import Execution
from copytrader.tables.positions import apply_fill


def fill(n: int, side: str, qty: int, price: str, symbol: str = "ESZ6") -> Execution:
    return Execution(
        execution_id=f"e{n}",
        account_id="a",
        platform="paper",
        kind="fill",
        symbol=symbol,
        side=side,
        quantity=qty,
        price=Decimal(price),
    )


def test_average_realised_pnl_and_flat() -> None:
    p, _ = apply_fill(None, fill(1, "buy", 2, "5000"))
    p, _ = apply_fill(p, fill(2, "buy", 2, "5002"))
    assert (p.net_quantity, p.average_price) == (4, Decimal("5001"))
    p, _ = apply_fill(p, fill(3, "sell", 4, "5003"))
    assert p.net_quantity == 0 and p.average_price is None
    assert p.realized_pnl == Decimal(2) * 4 * 50  # 2 points × 4 contracts × $50


def test_flip_through_zero_starts_a_new_average() -> None:
    p, _ = apply_fill(None, fill(1, "sell", 1, "100.00", "CLZ6"))
    p, _ = apply_fill(p, fill(2, "buy", 3, "99.00", "CLZ6"))
    assert p.net_quantity == 2 and p.average_price == Decimal("99.00")
    assert p.realized_pnl == Decimal("1.00") * 1000


def test_a_fill_seen_twice_is_applied_once() -> None:
    p, applied = apply_fill(None, fill(1, "buy", 1, "5000"))
    again, applied_again = apply_fill(p, fill(1, "buy", 1, "5000"))
    assert applied and not applied_again and again.net_quantity == 1

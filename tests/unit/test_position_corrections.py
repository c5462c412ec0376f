"""Busted and corrected fills on positions: the fill named is undone or replaced, once."""

from decimal import Decimal

import pytest

from copytrader.core.records import Execution
from copytrader.tables.positions import apply_correction, apply_fill


def fill(n: int, side: str, qty: int, price: str) -> Execution:
    return Execution(
        execution_id=f"a|o{n}|fill|{n}",
        account_id="a",
        platform="tradovate",
        kind="fill",
        symbol="ESZ6",
        side=side,
        quantity=qty,
        price=Decimal(price),
    )


def correction(n: int, of: int, side: str, original: tuple[int, str], new: tuple[int, str] | None) -> Execution:
    return Execution(
        execution_id=f"a|o{of}|correction|{n}",
        account_id="a",
        platform="tradovate",
        kind="fill_bust" if new is None else "fill_correction",
        symbol="ESZ6",
        side=side,
        quantity=0 if new is None else new[0],
        price=None if new is None else Decimal(new[1]),
        corrects=f"a|o{of}|fill|{of}",
        original_quantity=original[0],
        original_price=Decimal(original[1]),
    )


def test_bust_undoes_the_fill_and_only_once() -> None:
    p, _ = apply_fill(None, fill(1, "buy", 2, "5000"))
    p, _ = apply_fill(p, fill(2, "buy", 1, "5003"))
    p, applied = apply_correction(p, correction(9, 2, "buy", (1, "5003"), None))
    assert applied and (p.net_quantity, p.average_price, p.realized_pnl) == (2, Decimal("5000"), 0)
    again, applied_again = apply_correction(p, correction(9, 2, "buy", (1, "5003"), None))
    assert not applied_again and again.net_quantity == 2


def test_correction_replaces_price_and_quantity() -> None:
    p, _ = apply_fill(None, fill(1, "sell", 3, "5000"))
    p, _ = apply_correction(p, correction(9, 1, "sell", (3, "5000"), (1, "4999.75")))
    assert (p.net_quantity, p.average_price) == (-1, Decimal("4999.75"))


def test_correction_of_a_fill_not_counted_is_refused_not_guessed() -> None:
    p, _ = apply_fill(None, fill(1, "buy", 2, "5000"))
    with pytest.raises(ValueError, match="did not count"):
        apply_correction(p, correction(9, 7, "buy", (2, "5000"), None))
    with pytest.raises(ValueError, match="did not count"):
        apply_correction(None, correction(9, 7, "buy", (2, "5000"), None))


def test_bust_of_a_reducing_fill_takes_its_pnl_back() -> None:
    p, _ = apply_fill(None, fill(1, "buy", 3, "5000"))
    p, _ = apply_fill(p, fill(2, "sell", 1, "5004"))
    assert p.realized_pnl == Decimal(200)
    p, _ = apply_correction(p, correction(9, 2, "sell", (1, "5004"), None))
    assert (p.net_quantity, p.average_price, p.realized_pnl) == (3, Decimal("5000"), 0)

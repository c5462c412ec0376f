"""Scaling rules: quantity, side and symbol a follower trades for a leader's order."""

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from copytrader.core.scaling import (
    CopyRule,
    ScaledToZero,
    ScalingMode,
    follower_side,
    follower_symbol,
    scaled_quantity,
)


def test_fixed_ignores_leader_quantity() -> None:
    rule = CopyRule(mode=ScalingMode.FIXED, quantity=3)
    assert [scaled_quantity(rule, q) for q in (1, 2, 10)] == [3, 3, 3]


def test_multiplier_rounds_down_never_adding_risk() -> None:
    rule = CopyRule(mode=ScalingMode.MULTIPLIER, multiplier=Decimal("1.5"))
    assert scaled_quantity(rule, 3) == 4  # 4.5 → 4


def test_fraction_below_one_uses_min_quantity_or_skips() -> None:
    half = CopyRule(multiplier=Decimal("0.5"))
    assert scaled_quantity(half, 1) == 1
    with pytest.raises(ScaledToZero):
        scaled_quantity(CopyRule(multiplier=Decimal("0.5"), min_quantity=0), 1)


def test_ratio_scales_by_account_size() -> None:
    rule = CopyRule(mode=ScalingMode.RATIO)
    assert scaled_quantity(rule, 2, Decimal(50000), Decimal(150000)) == 6
    assert scaled_quantity(rule, 4, Decimal(100000), Decimal(50000)) == 2
    with pytest.raises(ValueError, match="account sizes"):
        scaled_quantity(rule, 2)


def test_max_quantity_caps() -> None:
    assert scaled_quantity(CopyRule(multiplier=Decimal(5), max_quantity=7), 3) == 7


def test_inverse_flips_side_and_symbol_map_keeps_expiry() -> None:
    rule = CopyRule(inverse=True, symbol_map={"ES": "MES"})
    assert follower_side(rule, "buy") == "sell"
    assert follower_side(CopyRule(), "sell") == "sell"
    assert follower_symbol(rule, "ESZ6") == "MESZ6"
    assert follower_symbol(rule, "NQH7") == "NQH7"


@pytest.mark.parametrize(
    "kwargs", [{"multiplier": Decimal(-1)}, {"multiplier": Decimal(0)}, {"max_quantity": 0}, {"quantity": 0}]
)
def test_nonsense_rules_are_refused(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        CopyRule(**kwargs)  # type: ignore[arg-type]  # deliberately loose kwargs


@given(
    leader=st.integers(min_value=1, max_value=500),
    multiplier=st.decimals(min_value=Decimal("0.01"), max_value=Decimal(20), places=2),
    cap=st.one_of(st.none(), st.integers(min_value=1, max_value=50)),
)
def test_multiplier_never_exceeds_the_cap_or_the_exact_product(
    leader: int, multiplier: Decimal, cap: int | None
) -> None:
    rule = CopyRule(multiplier=multiplier, max_quantity=cap, min_quantity=0)
    try:
        quantity = scaled_quantity(rule, leader)
    except ScaledToZero:
        assert leader * multiplier < 1
        return
    assert 1 <= quantity <= leader * multiplier
    if cap is not None:
        assert quantity <= cap

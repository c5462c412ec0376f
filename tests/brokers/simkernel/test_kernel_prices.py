"""Deterministic price paths: same seed and symbol → same walk, whatever else is traded."""

from __future__ import annotations

from decimal import Decimal

from copytrader.brokers.model import OrderStatus, OrderType, Side
from copytrader.brokers.simkernel.exchange import SimExchange
from copytrader.brokers.simkernel.faults import FaultSwitches
from copytrader.brokers.simkernel.pricepath import PricePath


def walk(seed: int, symbol: str, steps: int = 50) -> list[Decimal]:
    path = PricePath(seed)
    return [path.step(symbol) for _ in range(steps)]


def test_same_seed_same_path() -> None:
    assert walk(7, "ESZ6") == walk(7, "ESZ6")
    assert walk(7, "ESZ6") != walk(8, "ESZ6")
    assert walk(7, "ESZ6") != walk(7, "NQZ6")


def test_path_is_per_symbol_independent_of_interleaving() -> None:
    a = PricePath(3)
    es_only = [a.step("ESZ6") for _ in range(10)]
    b = PricePath(3)
    mixed = []
    for _ in range(10):
        b.step("NQZ6")
        mixed.append(b.step("ESZ6"))
    assert es_only == mixed


def test_steps_are_whole_ticks_within_bound_and_positive() -> None:
    path = PricePath(1, max_step_ticks=2)
    previous = path.price("CLZ6")
    for _ in range(200):
        price = path.step("CLZ6")
        ticks = (price - previous) / Decimal("0.01")
        assert ticks == ticks.to_integral_value() and abs(ticks) <= 2 and price > 0
        previous = price


def test_frozen_path_and_exchange_replay_is_deterministic() -> None:
    def run() -> tuple[list[Decimal], OrderStatus]:
        ex = SimExchange(seed=11)
        ex.open_account("A")
        order, _ = ex.submit(
            "A", symbol="ESZ6", side=Side.BUY, quantity=1, order_type=OrderType.LIMIT, limit_price=Decimal("4999.00")
        )
        prices = []
        for _ in range(30):
            ex.advance()
            prices.append(ex.prices.price("ESZ6"))
        return prices, order.status

    assert run() == run()
    frozen = PricePath(11, max_step_ticks=0)
    assert [frozen.step("ESZ6") for _ in range(5)] == [Decimal("5000.00")] * 5


def test_fault_switches_fire_once() -> None:
    faults = FaultSwitches(
        reject_next="x",
        duplicate_next_fill=True,
        drop_connection=True,
        expire_token=True,
        rate_limit_next=2,
        fill_before_cancel=True,
    )
    assert faults.take_reject() == "x" and faults.take_reject() is None
    assert faults.take_duplicate_fill() and not faults.take_duplicate_fill()
    assert faults.take_drop() and not faults.take_drop()
    assert faults.take_expire_token() and not faults.take_expire_token()
    assert faults.take_fill_before_cancel() and not faults.take_fill_before_cancel()
    assert [faults.take_rate_limit() for _ in range(3)] == [True, True, False]

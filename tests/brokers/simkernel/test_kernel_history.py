"""The kernel forgets its oldest finished orders beyond a limit (a long run stays bounded),
and never a working one."""

from __future__ import annotations

from decimal import Decimal

import pytest

from copytrader.brokers.model import OrderType, Side
from copytrader.brokers.simkernel.exchange import SimExchange
from copytrader.brokers.simkernel.pricepath import PricePath


def _exchange(limit: int) -> SimExchange:
    exchange = SimExchange(prices=PricePath(7, max_step_ticks=0), history_limit=limit)
    exchange.open_account("A")
    return exchange


def test_history_stays_within_the_limit_and_keeps_the_newest() -> None:
    exchange = _exchange(limit=50)
    for n in range(500):
        exchange.submit("A", symbol="ESZ6", side=Side.BUY if n % 2 else Side.SELL, quantity=1, client_order_id=f"c{n}")
    orders = exchange.account("A").orders
    assert len(orders) <= 50 + 5
    assert exchange.find_by_client_id("A", "c499") is not None  # the newest is there
    assert exchange.find_by_client_id("A", "c0") is None  # the oldest is forgotten, id entry too
    assert len(exchange.account("A").by_client_id) == len(orders)


def test_working_orders_are_never_forgotten() -> None:
    exchange = _exchange(limit=20)
    far = exchange.prices.price("ESZ6") - Decimal(100)
    resting = [
        exchange.submit(
            "A",
            symbol="ESZ6",
            side=Side.BUY,
            quantity=1,
            order_type=OrderType.LIMIT,
            limit_price=far,
            client_order_id=f"r{n}",
        )[0]
        for n in range(5)
    ]
    for n in range(300):
        exchange.submit("A", symbol="ESZ6", side=Side.BUY if n % 2 else Side.SELL, quantity=1, client_order_id=f"m{n}")
    for order in resting:
        assert exchange.find_by_client_id("A", order.client_order_id or "") is order
        exchange.cancel("A", order.order_id)  # still reachable by its id
    assert not exchange.open_orders("A")


def test_history_limit_must_be_positive() -> None:
    with pytest.raises(ValueError, match="history_limit"):
        SimExchange(history_limit=0)

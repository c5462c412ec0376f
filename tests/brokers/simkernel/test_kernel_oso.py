"""Order-sends-order children in the kernel: held until the parent fills, then worked (OCO)."""

from __future__ import annotations

from decimal import Decimal

from copytrader.brokers.model import OrderStatus, OrderType, Side
from copytrader.brokers.simkernel.exchange import SimExchange
from copytrader.brokers.simkernel.pricepath import PricePath

ES, D = "ESZ6", Decimal


def exchange() -> SimExchange:
    ex = SimExchange(prices=PricePath(7, max_step_ticks=0))
    ex.open_account("A")
    ex.set_price(ES, D("5000"))
    return ex


def children(ex: SimExchange, parent: str) -> tuple:  # type: ignore[type-arg]
    tp, _ = ex.submit(
        "A",
        symbol=ES,
        side=Side.SELL,
        quantity=2,
        order_type=OrderType.LIMIT,
        limit_price=D("5000"),
        oco_group="g",
        parent_id=parent,
    )
    sl, _ = ex.submit(
        "A",
        symbol=ES,
        side=Side.SELL,
        quantity=2,
        order_type=OrderType.STOP,
        stop_price=D("4980"),
        oco_group="g",
        parent_id=parent,
    )
    return tp, sl


def test_children_are_held_until_the_parent_fills_then_one_cancels_the_other() -> None:
    ex = exchange()
    entry, _ = ex.submit("A", symbol=ES, side=Side.BUY, quantity=2, order_type=OrderType.LIMIT, limit_price=D("4990"))
    tp, sl = children(ex, entry.order_id)
    ex.set_price(ES, D("5000"))  # marketable for the held take-profit: it must not trade
    assert (tp.status, sl.status, tp.filled_quantity) == (OrderStatus.PENDING, OrderStatus.PENDING, 0)
    ex.set_price(ES, D("4990"))
    assert entry.status is OrderStatus.FILLED and tp.status is OrderStatus.WORKING
    ex.set_price(ES, D("5000"))
    assert tp.status is OrderStatus.FILLED and sl.status is OrderStatus.CANCELLED
    assert ex.account("A").positions[ES].net_quantity == 0


def test_children_of_a_parent_that_filled_first_work_at_once() -> None:
    ex = exchange()
    entry, _ = ex.submit("A", symbol=ES, side=Side.BUY, quantity=2)  # market: filled on arrival
    tp, sl = children(ex, entry.order_id)
    assert tp.status is OrderStatus.FILLED  # limit 5000 at last 5000
    assert sl.status is OrderStatus.CANCELLED


def test_children_of_a_cancelled_parent_are_cancelled_and_partial_parent_sizes_them() -> None:
    ex = exchange()
    entry, _ = ex.submit("A", symbol=ES, side=Side.BUY, quantity=2, order_type=OrderType.LIMIT, limit_price=D("4990"))
    tp, sl = children(ex, entry.order_id)
    ex.cancel("A", entry.order_id)
    assert tp.status is OrderStatus.CANCELLED and sl.status is OrderStatus.CANCELLED
    ex.account("A").faults.partial_fill_lot = 1
    entry2, _ = ex.submit("A", symbol=ES, side=Side.BUY, quantity=2, order_type=OrderType.LIMIT, limit_price=D("4990"))
    tp2, _ = children(ex, entry2.order_id)
    ex.set_price(ES, D("4990"))
    ex.cancel("A", entry2.order_id)
    assert entry2.filled_quantity == 1 and tp2.status is OrderStatus.WORKING and tp2.quantity == 1

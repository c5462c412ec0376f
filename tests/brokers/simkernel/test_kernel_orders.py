"""SimExchange order lifecycle: what every simulator and the paper platform rely on.

Prices are frozen (``max_step_ticks=0``) unless a test is about the price path, so every fill
price below is known in advance.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from copytrader.brokers.model import (
    Bracket,
    FillEvent,
    OrderEvent,
    OrderStatus,
    OrderType,
    PositionEvent,
    Side,
    TimeInForce,
)
from copytrader.brokers.simkernel.exchange import KernelEvent, SimError, SimExchange
from copytrader.brokers.simkernel.pricepath import PricePath

ES = "ESZ6"
D = Decimal


@pytest.fixture
def ex() -> SimExchange:
    exchange = SimExchange(prices=PricePath(7, max_step_ticks=0))
    exchange.open_account("A1")
    return exchange


@pytest.fixture
def events(ex: SimExchange) -> list[KernelEvent]:
    seen: list[KernelEvent] = []
    ex.add_listener(seen.append)
    return seen


def kinds(events: list[KernelEvent]) -> list[str]:
    out = []
    for e in events:
        if isinstance(e, OrderEvent):
            out.append(f"order:{e.status.value}")
        elif isinstance(e, FillEvent):
            out.append(f"fill:{e.quantity}@{e.price}")
        elif isinstance(e, PositionEvent):
            out.append(f"position:{e.net_quantity}")
    return out


def test_market_order_lifecycle(ex: SimExchange, events: list[KernelEvent]) -> None:
    order, duplicate = ex.submit("A1", symbol=ES, side=Side.BUY, quantity=2, client_order_id="c1")
    assert not duplicate
    assert order.status is OrderStatus.FILLED and order.average_price == D("5000.00")
    assert kinds(events) == ["order:working", "order:filled", "fill:2@5000.00", "position:2"]
    fill = events[2]
    assert isinstance(fill, FillEvent) and fill.client_order_id == "c1" and not fill.is_partial


def test_limit_rests_then_fills_at_limit_when_price_crosses(ex: SimExchange, events: list[KernelEvent]) -> None:
    order, _ = ex.submit(
        "A1", symbol=ES, side=Side.BUY, quantity=1, order_type=OrderType.LIMIT, limit_price=D("4990.00")
    )
    assert order.status is OrderStatus.WORKING
    ex.advance(3)  # frozen path: still not marketable
    assert order.status is OrderStatus.WORKING
    assert ex.set_price(ES, D("4989.10")) == D("4989.00")  # rounded to tick
    assert order.status is OrderStatus.FILLED
    assert kinds(events)[-2:] == ["fill:1@4990.00", "position:1"]


def test_stop_triggers_then_fills_at_market(ex: SimExchange) -> None:
    order, _ = ex.submit(
        "A1", symbol=ES, side=Side.SELL, quantity=1, order_type=OrderType.STOP, stop_price=D("4995.00")
    )
    ex.set_price(ES, D("4996.00"))
    assert order.status is OrderStatus.WORKING and not order.triggered
    ex.set_price(ES, D("4994.50"))
    assert order.status is OrderStatus.FILLED and order.average_price == D("4994.50")


def test_stop_limit_triggers_but_waits_for_limit(ex: SimExchange) -> None:
    order, _ = ex.submit(
        "A1",
        symbol=ES,
        side=Side.BUY,
        quantity=1,
        order_type=OrderType.STOP_LIMIT,
        stop_price=D("5005.00"),
        limit_price=D("5006.00"),
    )
    ex.set_price(ES, D("5008.00"))
    assert order.triggered and order.status is OrderStatus.WORKING
    ex.set_price(ES, D("5006.00"))
    assert order.status is OrderStatus.FILLED and order.average_price == D("5006.00")


def test_partial_fills_one_lot_per_step(ex: SimExchange, events: list[KernelEvent]) -> None:
    ex.account("A1").faults.partial_fill_lot = 2
    order, _ = ex.submit("A1", symbol=ES, side=Side.BUY, quantity=5)
    assert order.status is OrderStatus.PARTIALLY_FILLED and order.filled_quantity == 2
    ex.advance()
    ex.advance()
    assert order.status is OrderStatus.FILLED
    fills = [e for e in events if isinstance(e, FillEvent)]
    assert [(f.quantity, f.cumulative_quantity, f.leaves_quantity) for f in fills] == [(2, 2, 3), (2, 4, 1), (1, 5, 0)]
    assert [f.is_partial for f in fills] == [True, True, False]
    assert len({f.fill_id for f in fills}) == 3


def test_modify_and_cancel(ex: SimExchange, events: list[KernelEvent]) -> None:
    order, _ = ex.submit(
        "A1", symbol=ES, side=Side.BUY, quantity=1, order_type=OrderType.LIMIT, limit_price=D("4990.00")
    )
    ex.modify("A1", order.order_id, quantity=3, limit_price=D("4991.00"))
    assert (order.quantity, order.limit_price) == (3, D("4991.00"))
    ex.cancel("A1", order.order_id)
    assert order.status is OrderStatus.CANCELLED
    assert kinds(events) == ["order:working", "order:working", "order:cancelled"]
    with pytest.raises(SimError) as info:
        ex.cancel("A1", order.order_id)
    assert info.value.code == "already_final"
    with pytest.raises(SimError) as info:
        ex.modify("A1", "nope", quantity=1)
    assert info.value.code == "unknown_order"


def test_modify_below_filled_is_refused(ex: SimExchange) -> None:
    ex.account("A1").faults.partial_fill_lot = 2
    order, _ = ex.submit("A1", symbol=ES, side=Side.BUY, quantity=5)
    with pytest.raises(SimError) as info:
        ex.modify("A1", order.order_id, quantity=2)
    assert info.value.code == "invalid_quantity"


def test_fill_before_cancel_fault_loses_the_race(ex: SimExchange, events: list[KernelEvent]) -> None:
    order, _ = ex.submit(
        "A1", symbol=ES, side=Side.BUY, quantity=1, order_type=OrderType.LIMIT, limit_price=D("4990.00")
    )
    ex.account("A1").faults.fill_before_cancel = True
    with pytest.raises(SimError) as info:
        ex.cancel("A1", order.order_id)
    assert info.value.code == "too_late"
    assert order.status is OrderStatus.FILLED
    assert "fill:1@4990.00" in kinds(events)
    assert not ex.account("A1").faults.fill_before_cancel  # fires once


def test_bracket_spawns_oco_exits_and_one_fill_cancels_the_other(ex: SimExchange) -> None:
    entry, _ = ex.submit(
        "A1",
        symbol=ES,
        side=Side.BUY,
        quantity=2,
        bracket=Bracket(take_profit=D("10"), stop_loss=D("5")),
    )
    exits = ex.open_orders("A1")
    assert {(o.order_type, o.side, o.limit_price, o.stop_price) for o in exits} == {
        (OrderType.LIMIT, Side.SELL, D("5010.00"), None),
        (OrderType.STOP, Side.SELL, None, D("4995.00")),
    }
    assert all(o.quantity == 2 and o.oco_group == f"oco-{entry.order_id}" for o in exits)
    ex.set_price(ES, D("5010.00"))
    by_type = {o.order_type: o for o in exits}
    assert by_type[OrderType.LIMIT].status is OrderStatus.FILLED
    assert by_type[OrderType.STOP].status is OrderStatus.CANCELLED
    assert by_type[OrderType.STOP].reason == "oco sibling filled"
    assert ex.account("A1").positions[ES].net_quantity == 0


def test_realized_pnl_long_short_and_flip(ex: SimExchange) -> None:
    account = ex.account("A1")
    start = account.balance
    ex.submit("A1", symbol=ES, side=Side.BUY, quantity=2)  # long 2 @ 5000
    ex.set_price(ES, D("5004.00"))
    ex.submit("A1", symbol=ES, side=Side.SELL, quantity=3)  # close 2 (+4 pts), short 1 @ 5004
    position = account.positions[ES]
    assert position.realized_pnl == D("400.00")  # 4 pts * 2 * $50
    assert (position.net_quantity, position.average_price) == (-1, D("5004.00"))
    ex.set_price(ES, D("5006.00"))
    ex.submit("A1", symbol=ES, side=Side.BUY, quantity=1)  # cover short: -2 pts * $50
    assert position.realized_pnl == D("300.00")
    assert position.net_quantity == 0 and position.average_price is None
    assert account.balance == start + D("300.00")


def test_flatten_cancels_working_and_closes(ex: SimExchange) -> None:
    ex.submit("A1", symbol=ES, side=Side.BUY, quantity=3)
    resting, _ = ex.submit(
        "A1", symbol=ES, side=Side.BUY, quantity=1, order_type=OrderType.LIMIT, limit_price=D("4900.00")
    )
    closing = ex.flatten("A1", ES)
    assert resting.status is OrderStatus.CANCELLED and resting.reason == "flatten"
    assert [(o.side, o.quantity, o.status) for o in closing] == [(Side.SELL, 3, OrderStatus.FILLED)]
    assert ex.open_orders("A1") == []
    assert ex.account("A1").positions[ES].net_quantity == 0


def test_repeated_client_id_is_a_new_order_by_default(ex: SimExchange) -> None:
    """Real platforms promise no refusal of a repeated client id, so neither does the kernel."""
    first, dup1 = ex.submit("A1", symbol=ES, side=Side.BUY, quantity=1, client_order_id="sig1:f1")
    second, dup2 = ex.submit("A1", symbol=ES, side=Side.BUY, quantity=7, client_order_id="sig1:f1")
    assert (dup1, dup2) == (False, False) and second is not first
    assert ex.orders_with_client_id("A1", "sig1:f1") == [first, second]
    assert ex.find_by_client_id("A1", "sig1:f1") is first


def test_dedupe_is_an_option_a_test_must_name(events: list[KernelEvent]) -> None:
    ex = SimExchange(prices=PricePath(7, max_step_ticks=0), dedupe_client_ids=True)
    ex.open_account("A1")
    first, dup1 = ex.submit("A1", symbol=ES, side=Side.BUY, quantity=1, client_order_id="sig1:f1")
    again, dup2 = ex.submit("A1", symbol=ES, side=Side.BUY, quantity=7, client_order_id="sig1:f1")
    assert (dup1, dup2) == (False, True) and again is first
    ex.open_account("A2")
    other, dup3 = ex.submit("A2", symbol=ES, side=Side.BUY, quantity=1, client_order_id="sig1:f1")
    assert not dup3 and other is not first  # dedupe is per account


def test_flatten_tags_its_closing_orders(ex: SimExchange) -> None:
    ex.submit("A1", symbol=ES, side=Side.BUY, quantity=2)
    closing = ex.flatten("A1", ES, client_order_id="sig9:f1")
    assert [o.client_order_id for o in closing] == ["sig9:f1"]
    assert ex.orders_with_client_id("A1", "sig9:f1") == closing


@pytest.mark.parametrize("tif", [TimeInForce.IOC, TimeInForce.FOK])
def test_ioc_fok_expire_when_not_marketable(ex: SimExchange, tif: TimeInForce) -> None:
    order, _ = ex.submit(
        "A1",
        symbol=ES,
        side=Side.BUY,
        quantity=1,
        order_type=OrderType.LIMIT,
        limit_price=D("4990.00"),
        time_in_force=tif,
    )
    assert order.status is OrderStatus.EXPIRED and order.reason == "not marketable"


def test_ioc_cancels_remainder_and_fok_refuses_partial(ex: SimExchange) -> None:
    ex.account("A1").faults.partial_fill_lot = 1
    ioc, _ = ex.submit("A1", symbol=ES, side=Side.BUY, quantity=3, time_in_force=TimeInForce.IOC)
    assert (ioc.status, ioc.filled_quantity) == (OrderStatus.CANCELLED, 1)
    fok, _ = ex.submit("A1", symbol=ES, side=Side.BUY, quantity=3, time_in_force=TimeInForce.FOK)
    assert (fok.status, fok.filled_quantity) == (OrderStatus.EXPIRED, 0)


def test_day_orders_expire_at_session_end(ex: SimExchange) -> None:
    day, _ = ex.submit("A1", symbol=ES, side=Side.BUY, quantity=1, order_type=OrderType.LIMIT, limit_price=D("4900"))
    gtc, _ = ex.submit(
        "A1",
        symbol=ES,
        side=Side.BUY,
        quantity=1,
        order_type=OrderType.LIMIT,
        limit_price=D("4900"),
        time_in_force=TimeInForce.GTC,
    )
    ex.expire_day_orders()
    assert (day.status, gtc.status) == (OrderStatus.EXPIRED, OrderStatus.WORKING)


@pytest.mark.parametrize(
    ("kwargs", "code", "text"),
    [
        ({"symbol": "ZZZZ"}, "unknown_contract", "unknown contract"),
        ({"quantity": 5000}, "max_order_size", "exceeds max order size"),
        ({"order_type": OrderType.LIMIT, "limit_price": D("5000.10")}, "invalid_price", "tick"),
        ({"order_type": OrderType.LIMIT, "limit_price": D("-1")}, "invalid_price", "invalid price"),
        ({"quantity": 0}, "invalid_quantity", "positive"),
    ],
)
def test_reject_reasons(ex: SimExchange, kwargs: dict[str, object], code: str, text: str) -> None:
    params: dict[str, object] = {"symbol": ES, "side": Side.BUY, "quantity": 1, **kwargs}
    order, _ = ex.submit("A1", **params)  # type: ignore[arg-type]  # parametrised kwargs
    assert order.status is OrderStatus.REJECTED
    assert order.reject_code == code and text in (order.reason or "")


def test_reject_fault_fires_once(ex: SimExchange, events: list[KernelEvent]) -> None:
    ex.account("A1").faults.reject_next = "risk: daily loss limit"
    bad, _ = ex.submit("A1", symbol=ES, side=Side.BUY, quantity=1)
    good, _ = ex.submit("A1", symbol=ES, side=Side.BUY, quantity=1)
    assert (bad.status, bad.reject_code, bad.reason) == (OrderStatus.REJECTED, "fault", "risk: daily loss limit")
    assert good.status is OrderStatus.FILLED
    assert kinds(events)[0] == "order:rejected"


def test_duplicate_fill_fault_republishes_same_fill(ex: SimExchange, events: list[KernelEvent]) -> None:
    ex.account("A1").faults.duplicate_next_fill = True
    ex.submit("A1", symbol=ES, side=Side.BUY, quantity=1)
    fills = [e for e in events if isinstance(e, FillEvent)]
    assert len(fills) == 2 and fills[0] == fills[1]


def test_unknown_account_and_fault_listeners(ex: SimExchange) -> None:
    with pytest.raises(SimError) as info:
        ex.submit("nobody", symbol=ES, side=Side.BUY, quantity=1)
    assert info.value.code == "unknown_account"
    poked: list[str] = []
    ex.add_fault_listener(poked.append)
    ex.account("A1").faults.drop_connection = True
    ex.faults_changed("A1")
    ex.remove_fault_listener(poked.append)
    ex.faults_changed("A1")
    assert poked == ["A1"]

"""An order's pushes name its contract by id only; the name of our own order is learned from
its placement, not asked of ``contract/item`` inside the socket's read loop.

Why it matters: that lookup was one REST round trip per new symbol and session, holding every
push behind it (fills included), one more request per follower on the same signal against the
user's rate budget, and a refused lookup (a 429 lockout) failed the whole socket session. An
order another client placed (the leader's, a manual one) still needs the lookup, once.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from tradovate_helpers import next_event

from copytrader.brokers.model import FillEvent, OrderEvent, PlaceOrder, PositionEvent, Side
from copytrader.brokers.tradovate import schemas as s
from copytrader.brokers.tradovate.adapter import TradovateAdapter
from copytrader.brokers.tradovate.simulator import TradovateSimulator
from copytrader.brokers.tradovate.state import PLACING_KEPT, EntityCache

AdapterFactory = Callable[..., Awaitable[TradovateAdapter]]


def _lookups(sim: TradovateSimulator) -> int:
    return sum(1 for name, _ in sim.rest_requests if name == "contract/item")


async def test_our_order_in_a_new_symbol_is_named_without_a_lookup(
    adapter: TradovateAdapter, sim: TradovateSimulator
) -> None:
    events = adapter.events()
    await adapter.place(PlaceOrder("f1", "name-1", "nqz6", Side.BUY, 2))
    fill = await next_event(events, lambda e: isinstance(e, FillEvent) and e.client_order_id == "name-1")
    position = await next_event(events, lambda e: isinstance(e, PositionEvent) and e.net_quantity == 2)
    assert (fill.symbol, position.symbol) == ("NQZ6", "NQZ6")
    assert _lookups(sim) == 0
    assert adapter.cache.placing == {}  # learned, then let go


async def test_an_order_another_client_placed_is_named_by_one_lookup(
    make_adapter: AdapterFactory, sim: TradovateSimulator
) -> None:
    watcher, other = await make_adapter(), await make_adapter()
    events = watcher.events()
    for cl_ord_id in ("manual-1", "manual-2"):
        await other.place(PlaceOrder("f1", cl_ord_id, "MNQZ6", Side.SELL, 1))
        order = await next_event(events, lambda e, cl=cl_ord_id: isinstance(e, OrderEvent) and e.client_order_id == cl)
        assert order.symbol == "MNQZ6"
    assert _lookups(sim) == 1  # the watcher's, for the first; the placing session asked none


async def test_a_report_before_the_order_entity_still_names_our_order() -> None:
    """Our provisional view has no contract yet; a report pushed before the order entity
    carries it, and the name comes from the placement (no lookup)."""
    asked: list[int] = []

    async def lookup(contract_id: int, placed: str | None = None) -> str:
        if placed is not None:
            return placed
        asked.append(contract_id)
        return f"C{contract_id}"

    cache = EntityCache({1: "f1"}, lookup)
    cache.placing_order("cl-1", "ESZ6")
    body = {"clOrdId": "cl-1", "action": "Buy", "orderQty": 1, "orderType": "Market", "timeInForce": "Day"}
    cache.provisional(10, 1, 0, body)
    report = {"id": 5, "orderId": 10, "accountId": 1, "contractId": 7, "execType": "New", "ordStatus": "Working"}
    (event,) = await cache.apply(s.ENTITY_EXEC, report)
    assert isinstance(event, OrderEvent) and event.symbol == "ESZ6"
    assert cache.orders[10].contract_id == 7 and asked == [] and cache.placing == {}


def test_names_of_orders_that_never_got_a_push_are_bounded() -> None:
    async def lookup(contract_id: int, placed: str | None = None) -> str:
        raise AssertionError("not called")

    cache = EntityCache({1: "f1"}, lookup)
    for n in range(PLACING_KEPT + 10):
        cache.placing_order(f"cl-{n}", "ESZ6")
    assert (
        len(cache.placing) == PLACING_KEPT and "cl-0" not in cache.placing and f"cl-{PLACING_KEPT + 9}" in cache.placing
    )

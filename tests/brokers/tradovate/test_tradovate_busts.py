"""Fill busts and corrections (execType TradeCancel / TradeCorrect) on Tradovate.

How they reach a client is undocumented, so the adapter is checked under each plausible shape:
an executionReport naming the fill (or the Trade report) in execRefId, an updated fill entity
(``active: false`` or new qty/price), or both; each gives exactly one FillCorrection.
"""

from __future__ import annotations

from decimal import Decimal

import pytest
from tradovate_helpers import next_event

from copytrader.brokers.model import FillCorrection, FillEvent, PlaceOrder, PositionEvent, Side
from copytrader.brokers.tradovate import schemas as s
from copytrader.brokers.tradovate.adapter import TradovateAdapter
from copytrader.brokers.tradovate.simulator import TradovateSimulator
from copytrader.brokers.tradovate.state import EntityCache

ACCT = "DEMO1001"


def corrections(events: list[object], cl: str) -> list[FillCorrection]:
    return [e for e in events if isinstance(e, FillCorrection) and e.client_order_id == cl]


async def collect_until_flat_or(sub, net: int) -> list[object]:  # type: ignore[no-untyped-def]
    seen: list[object] = []

    def done(e: object) -> bool:
        seen.append(e)
        return (
            isinstance(e, PositionEvent)
            and e.account_id == "f1"
            and e.net_quantity == net
            and any(isinstance(x, FillCorrection) for x in seen)
        )

    await next_event(sub, done)
    return seen


@pytest.mark.parametrize("shape", ["both", "report", "fill"])
async def test_bust_is_one_correction_whatever_the_shape(
    shape: str, adapter: TradovateAdapter, sim: TradovateSimulator
) -> None:
    sim.book.correction_shape = shape
    sub = adapter.events()
    sim.faults(ACCT).bust_next_fill = True
    ack = await adapter.place(PlaceOrder("f1", f"bust-{shape}", "ESZ6", Side.BUY, 2))
    seen = await collect_until_flat_or(sub, 0)
    (fill,) = [e for e in seen if isinstance(e, FillEvent)]
    (bust,) = corrections(seen, f"bust-{shape}")
    assert bust.busted and bust.fill_id == fill.fill_id and bust.broker_order_id == ack.broker_order_id
    assert (bust.quantity, bust.price, bust.original_quantity, bust.original_price) == (0, None, 2, fill.price)
    assert sim.exchange.account(ACCT).positions["ESZ6"].net_quantity == 0
    snap = await adapter.snapshot("f1")  # a resync of the same history changes nothing more
    assert snap.positions == ()


@pytest.mark.parametrize("shape", ["both", "report", "fill"])
async def test_correction_is_one_event_with_old_and_new_values(
    shape: str, adapter: TradovateAdapter, sim: TradovateSimulator
) -> None:
    sim.book.correction_shape = shape
    sub = adapter.events()
    sim.faults(ACCT).correct_next_fill_quantity = 1
    sim.faults(ACCT).correct_next_fill_price = "4000.25"
    await adapter.place(PlaceOrder("f1", f"corr-{shape}", "ESZ6", Side.SELL, 3))
    seen = await collect_until_flat_or(sub, -1)
    (fix,) = corrections(seen, f"corr-{shape}")
    assert not fix.busted and (fix.quantity, fix.price, fix.original_quantity) == (1, Decimal("4000.25"), 3)


async def _cache_with_fill() -> tuple[EntityCache, list[Exception]]:
    async def symbol(contract_id: int, placed: str | None = None) -> str:
        return "ESZ6"

    errors: list[Exception] = []
    cache = EntityCache({1: "f1"}, symbol)
    cache.on_protocol_error = errors.append
    await cache.apply(
        s.ENTITY_ORDER, {"id": 10, "accountId": 1, "contractId": 7, "action": "Buy", "ordStatus": "Working"}
    )
    await cache.apply(
        s.ENTITY_EXEC,
        {
            "id": 20,
            "orderId": 10,
            "accountId": 1,
            "contractId": 7,
            "execType": "Trade",
            "ordStatus": "Filled",
            "action": "Buy",
            "cumQty": 2,
            "lastQty": 2,
            "lastPx": 5000.5,
        },
    )
    await cache.apply(
        s.ENTITY_FILL,
        {"id": 30, "orderId": 10, "contractId": 7, "action": "Buy", "qty": 2, "price": 5000.5, "active": True},
    )
    return cache, errors


async def test_report_naming_the_trade_report_in_exec_ref_id_is_resolved() -> None:
    cache, errors = await _cache_with_fill()
    events = await cache.apply(
        s.ENTITY_EXEC,
        {
            "id": 21,
            "orderId": 10,
            "accountId": 1,
            "contractId": 7,
            "execType": "TradeCancel",
            "execRefId": 20,
            "ordStatus": "Filled",
            "action": "Buy",
            "lastQty": 2,
            "lastPx": 5000.5,
        },
    )
    (bust,) = events
    assert isinstance(bust, FillCorrection) and bust.busted and bust.fill_id == "30" and not errors
    assert (
        await cache.apply(
            s.ENTITY_FILL,
            {"id": 30, "orderId": 10, "contractId": 7, "action": "Buy", "qty": 2, "price": 5000.5, "active": False},
        )
        == []
    )  # told already


async def test_unresolvable_report_is_an_error_and_the_fill_update_still_corrects() -> None:
    cache, errors = await _cache_with_fill()
    await cache.apply(
        s.ENTITY_FILL,
        {"id": 31, "orderId": 10, "contractId": 7, "action": "Buy", "qty": 2, "price": 5000.5, "active": True},
    )  # two identical fills: ambiguous
    assert (
        await cache.apply(
            s.ENTITY_EXEC,
            {
                "id": 22,
                "orderId": 10,
                "accountId": 1,
                "contractId": 7,
                "execType": "TradeCorrect",
                "execRefId": "x-9",
                "ordStatus": "Filled",
                "action": "Buy",
                "lastQty": 2,
                "lastPx": 5001,
            },
        )
        == []
    )
    assert errors and "x-9" in str(errors[0])
    (fix,) = await cache.apply(
        s.ENTITY_FILL,
        {"id": 31, "orderId": 10, "contractId": 7, "action": "Buy", "qty": 2, "price": 5001, "active": True},
    )
    assert isinstance(fix, FillCorrection) and fix.price == Decimal("5001") and fix.fill_id == "31"


async def test_fill_first_seen_already_busted_never_counts() -> None:
    cache, _ = await _cache_with_fill()
    assert (
        await cache.apply(
            s.ENTITY_FILL,
            {"id": 32, "orderId": 10, "contractId": 7, "action": "Buy", "qty": 1, "price": 5000, "active": False},
        )
        == []
    )
    assert cache.filled[10] == 2  # an already-busted fill never adds to the order

"""The FIX adapter's bounded book against the simulator (#18 item 3): a bust of a forgotten
order's fill is applied once, a resent one is old news, and a restart still finds old orders."""

from __future__ import annotations

from pathlib import Path

import pytest
import quickfix as fix
from conftest import AdapterFactory
from fix_helpers import ACCOUNT, SYMBOL, Recorder
from test_fix_adapter import PRICE, kernel_account, market
from waiting import wait_until

from copytrader.brokers.fix.adapter import FixAdapter
from copytrader.brokers.fix.settings import initiator_session_id
from copytrader.brokers.fix.simulator import FixSimulator
from copytrader.brokers.model import ConnectionEvent, ConnectionState, FillCorrection, FillEvent, OrderStatus


async def filled(adapter: FixAdapter, events: Recorder, *clients: str) -> list[FillEvent]:
    for client in clients:
        await adapter.place(market(client))
    await wait_until(lambda: len(events.of(FillEvent)) >= len(clients), timeout_s=10, what="every fill")
    return list(events.of(FillEvent))


async def test_a_late_bust_of_a_forgotten_orders_fill_is_applied_once(sim: FixSimulator, adapter: FixAdapter) -> None:
    sim.exchange.set_price(SYMBOL, PRICE)
    adapter.book.finished.keep = 1
    events = Recorder(adapter)
    fills = await filled(adapter, events, "M1", "M2", "M3")
    await wait_until(lambda: set(adapter.book.forgotten) == {"M1", "M2"}, timeout_s=5, what="M1, M2 forgotten")
    first = next(f for f in fills if f.client_order_id == "M1")
    assert first.fill_id not in adapter.book.fills
    kernel_order = sim.exchange.account(kernel_account(sim)).orders[first.broker_order_id]
    sim.exchange._correct_fill(kernel_order, first, True, None, None)  # the exchange busts it, late
    await events.wait_for(lambda e: isinstance(e, FillCorrection), "the bust")
    await wait_until(lambda: adapter.book.position(ACCOUNT, SYMBOL).net_quantity == 2, timeout_s=5, what="long 2")
    (bust,) = events.of(FillCorrection)
    assert bust.busted and bust.fill_id == first.fill_id and bust.client_order_id == "M1"
    assert (bust.original_quantity, bust.original_price) == (first.quantity, first.price)
    # the whole session replayed (our expected number set back to 1): the bust is old news now
    old_news = adapter.router.old_news
    fix.Session.lookupSession(initiator_session_id(adapter.fix)).setNextTargetMsgSeqNum(1)
    sim.disconnect_all()
    await events.wait_for(
        lambda e: isinstance(e, ConnectionEvent) and e.state is ConnectionState.CONNECTED, "back", timeout_s=10
    )
    await wait_until(lambda: adapter.router.old_news > old_news, timeout_s=10, what="the replay read")
    await adapter.place(market("M4"))  # its reports come after the replay's
    await wait_until(lambda: len(events.of(FillEvent)) == 4, timeout_s=10, what="M4's fill")
    assert len(events.of(FillCorrection)) == 1 and len(events.of(FillEvent)) == 4
    assert adapter.book.position(ACCOUNT, SYMBOL).net_quantity == 3


@pytest.mark.parametrize("version", ["FIX.4.4"])
async def test_a_restart_still_finds_orders_it_had_forgotten(
    sim: FixSimulator, make_adapter: AdapterFactory, tmp_path: Path
) -> None:
    sim.exchange.set_price(SYMBOL, PRICE)
    store = tmp_path / "kept"
    first = make_adapter(store)
    await first.connect()
    first.book.finished.keep = 1
    events = Recorder(first)
    await filled(first, events, "M1", "M2", "M3")
    await wait_until(lambda: "M1" in first.book.forgotten, timeout_s=5, what="M1 forgotten")
    found = await first.lookup(ACCOUNT, "M1")  # a fingerprint is asked about like any order
    assert found is not None and found.duplicate and found.status is OrderStatus.FILLED
    await first.disconnect()
    second = make_adapter(store)
    await second.connect()  # its first request waits for the counterparty's resend request (F-X12)
    assert {"M1", "M2", "M3"} <= set(second.book.orders) | set(second.book.forgotten)
    found = await second.lookup(ACCOUNT, "M1")
    assert found is not None and found.duplicate and found.status is OrderStatus.FILLED

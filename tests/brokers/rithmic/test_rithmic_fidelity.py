"""The public async-rithmic client (1.6.6), unchanged but for URL and ssl_context, against the simulator.

It is the stand-in for the real ORDER plant: if the simulator framed a message wrongly, forgot to
echo ``user_msg`` or closed a multi-part reply differently, this client would time out or see
nothing, as it would against a server that behaved so.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from ci_skips import require_module

require_module("async_rithmic", "third-party client", "async-rithmic (install_requires in setup.cfg)")

from async_rithmic import OrderType, SysInfraType, TransactionType  # noqa: E402
from rithmic_helpers import make_client, wait_until  # noqa: E402

from copytrader.brokers.rithmic.simulator import RithmicSimulator  # noqa: E402

LEADER = "RITHMIC-LEADER"


class Recorder:
    """Collects the client's 351/352 notifications."""

    def __init__(self, client: Any) -> None:
        self.rithmic: list[Any] = []
        self.exchange: list[Any] = []
        client.on_rithmic_order_notification += self._on_rithmic
        client.on_exchange_order_notification += self._on_exchange

    async def _on_rithmic(self, message: Any) -> None:
        self.rithmic.append(message)

    async def _on_exchange(self, message: Any) -> None:
        self.exchange.append(message)

    def exchange_of(self, tag: str, notify_type: int) -> list[Any]:
        return [m for m in self.exchange if m.user_tag == tag and m.notify_type == notify_type]

    def rithmic_of(self, tag: str, notify_type: int) -> list[Any]:
        return [m for m in self.rithmic if m.user_tag == tag and m.notify_type == notify_type]


@pytest.fixture
async def client(sim: RithmicSimulator) -> Any:
    made = make_client(sim)
    await made.connect(plants=[SysInfraType.ORDER_PLANT])
    try:
        yield made
    finally:
        await made.disconnect()


async def test_connect_lists_accounts_places_fills_and_cancels(sim: RithmicSimulator, client: Any) -> None:
    seen = Recorder(client)
    assert [a.account_id for a in client.accounts] == ["RITHMIC-LEADER", "RITHMIC-FOLLOWER-1"]
    assert {r.exchange for r in client.plants["order"].trade_routes} >= {"CME", "CBOT", "NYMEX", "COMEX"}
    listed = await client.list_accounts()
    assert [a.account_id for a in listed] == [a.account_id for a in client.accounts]

    price = sim.exchange.set_price("ESZ6", Decimal("5000.25"))
    replies = await client.submit_order(
        "cp-1", "ESZ6", "CME", 2, TransactionType.BUY, OrderType.MARKET, account_id=LEADER
    )
    basket = next(r.basket_id for r in replies if r.basket_id)
    fills = await wait_until(lambda: seen.exchange_of("cp-1", 5), what="fill notification")
    assert fills[0].basket_id == basket
    assert (fills[0].fill_size, Decimal(repr(fills[0].fill_price))) == (2, price)
    assert (fills[0].total_fill_size, fills[0].total_unfilled_size) == (2, 0)
    done = await wait_until(lambda: seen.rithmic_of("cp-1", 15), what="351 COMPLETE")
    assert done[0].completion_reason == "Fill"
    assert sim.exchange.account(LEADER).positions["ESZ6"].net_quantity == 2

    replies = await client.submit_order(
        "cp-2", "ESZ6", "CME", 1, TransactionType.BUY, OrderType.LIMIT, price=4990.0, account_id=LEADER
    )
    resting = next(r.basket_id for r in replies if r.basket_id)
    await wait_until(lambda: seen.rithmic_of("cp-2", 13), what="351 OPEN")
    assert not seen.exchange_of("cp-2", 5)
    await client.cancel_order(basket_id=resting, account_id=LEADER)
    cancels = await wait_until(lambda: seen.exchange_of("cp-2", 3), what="352 CANCEL")
    assert cancels[0].basket_id == resting
    assert seen.rithmic_of("cp-2", 15)[0].completion_reason == "Cancel"
    assert sim.exchange.open_orders(LEADER) == []


async def test_modify_moves_a_resting_limit(sim: RithmicSimulator, client: Any) -> None:
    seen = Recorder(client)
    sim.exchange.set_price("NQZ6", Decimal("18000"))
    replies = await client.submit_order(
        "cp-m", "NQZ6", "CME", 1, TransactionType.SELL, OrderType.LIMIT, price=18010.0, account_id=LEADER
    )
    basket = next(r.basket_id for r in replies if r.basket_id)
    await client.modify_order(
        basket_id=basket,
        account_id=LEADER,
        symbol="NQZ6",
        exchange="CME",
        qty=1,
        price=18005.0,
        order_type=OrderType.LIMIT,
    )
    await wait_until(lambda: seen.exchange_of("cp-m", 2), what="352 MODIFY")
    assert sim.exchange.account(LEADER).orders[basket].limit_price == Decimal("18005.0")
    sim.exchange.set_price("NQZ6", Decimal("18005"))
    fills = await wait_until(lambda: seen.exchange_of("cp-m", 5), what="fill at the new price")
    assert Decimal(repr(fills[0].fill_price)) == Decimal("18005")


async def test_exchange_reject_arrives_with_its_text(sim: RithmicSimulator, client: Any) -> None:
    seen = Recorder(client)
    sim.faults(LEADER).reject_next = "margin exceeded"
    await client.submit_order("cp-r", "ESZ6", "CME", 1, TransactionType.BUY, OrderType.MARKET, account_id=LEADER)
    rejects = await wait_until(lambda: seen.exchange_of("cp-r", 6), what="352 REJECT")
    assert rejects[0].text == "margin exceeded"
    assert seen.rithmic_of("cp-r", 15)[0].completion_reason == "Reject"
    assert not seen.exchange_of("cp-r", 5)
    # a price off the tick grid: the kernel's risk check, reported the same way
    await client.submit_order(
        "cp-t", "ESZ6", "CME", 1, TransactionType.BUY, OrderType.LIMIT, price=4990.1, account_id=LEADER
    )
    rejects = await wait_until(lambda: seen.exchange_of("cp-t", 6), what="352 REJECT for the tick")
    assert "tick" in rejects[0].text


async def test_request_level_refusal_places_nothing(sim: RithmicSimulator, client: Any) -> None:
    """An error rp_code on 313 completes the request with no basket_id (async-rithmic raises the
    error inside its reader, not to the caller); the wire shape is in test_rithmic_wire.py."""
    seen = Recorder(client)
    # ESZ6 is a CME contract: sent to CBOT (which has a route) it is refused on 313 itself
    replies = await client.submit_order(
        "cp-x", "ESZ6", "CBOT", 1, TransactionType.BUY, OrderType.MARKET, account_id=LEADER
    )
    assert not any(r.basket_id for r in replies)
    assert sim.exchange.account(LEADER).orders == {}
    await client.submit_order("cp-ok", "ESZ6", "CME", 1, TransactionType.BUY, OrderType.MARKET, account_id=LEADER)
    await wait_until(lambda: seen.rithmic_of("cp-ok", 1), what="the next order's ack")
    assert not seen.rithmic_of("cp-x", 1)  # nothing was ever sent for the refused one


async def test_partial_fills_report_each_lot_and_running_totals(sim: RithmicSimulator, client: Any) -> None:
    seen = Recorder(client)
    sim.faults(LEADER).partial_fill_lot = 2
    price = sim.exchange.set_price("ESZ6", Decimal("5001"))
    await client.submit_order("cp-p", "ESZ6", "CME", 5, TransactionType.SELL, OrderType.MARKET, account_id=LEADER)
    await wait_until(lambda: seen.exchange_of("cp-p", 5), what="first partial fill")
    for _ in range(3):
        sim.exchange.set_price("ESZ6", price)
    fills = await wait_until(lambda: len(seen.exchange_of("cp-p", 5)) >= 3 and seen.exchange_of("cp-p", 5))
    assert [f.fill_size for f in fills] == [2, 2, 1]
    assert [(f.total_fill_size, f.total_unfilled_size) for f in fills] == [(2, 3), (4, 1), (5, 0)]
    assert len({f.fill_id for f in fills}) == 3
    complete = seen.rithmic_of("cp-p", 15)
    assert len(complete) == 1 and complete[0].completion_reason == "Fill"
    assert sim.exchange.account(LEADER).positions["ESZ6"].net_quantity == -5


async def test_wrong_password_is_refused_at_login(sim: RithmicSimulator) -> None:
    """11 carries ``rp_code ["13", "permission denied"]`` (wire shape: test_rithmic_wire.py);
    async-rithmic's connect then fails and no session is logged in."""
    intruder = make_client(sim, password="wrong")
    with pytest.raises(Exception):  # noqa: B017  # the client's own failure type is not ours to pin
        await intruder.connect(plants=[SysInfraType.ORDER_PLANT])
    await intruder.disconnect()
    assert all(session.user is None for session in sim.sessions)


async def test_pnl_plant_positions_exit_and_order_history(sim: RithmicSimulator) -> None:
    """ORDER + PNL plants through the client: positions and balance, exit_position, the day's orders."""
    both = make_client(sim)
    await both.connect(plants=[SysInfraType.ORDER_PLANT, SysInfraType.PNL_PLANT])
    try:
        seen = Recorder(both)
        updates: list[Any] = []

        async def on_position(message: Any) -> None:
            updates.append(message)

        both.on_instrument_pnl_update += on_position
        await both.plants["pnl"].subscribe_to_pnl_updates()  # 400 per account, fire-and-forget
        await wait_until(lambda: any(LEADER in s.pnl_accounts for s in sim.sessions), what="400 subscribe")
        sim.exchange.set_price("MESZ6", Decimal("5000"))
        await both.submit_order("cp-e", "MESZ6", "CME", 3, TransactionType.BUY, OrderType.MARKET, account_id=LEADER)
        await wait_until(lambda: seen.exchange_of("cp-e", 5), what="fill")
        await wait_until(lambda: [u for u in updates if u.symbol == "MESZ6" and u.net_quantity == 3], what="450 push")
        positions = await both.list_positions(account_id=LEADER)
        assert [(p.symbol, p.net_quantity, p.avg_open_fill_price) for p in positions] == [("MESZ6", 3, 5000.0)]
        (summary,) = await both.list_account_summary(account_id=LEADER)
        assert Decimal(summary.account_balance) == sim.exchange.account(LEADER).balance

        await both.submit_order(
            "cp-w", "MESZ6", "CME", 1, TransactionType.BUY, OrderType.LIMIT, price=4900.0, account_id=LEADER
        )
        await wait_until(lambda: seen.rithmic_of("cp-w", 13), what="resting order open")
        await both.exit_position(account_id=LEADER, symbol="MESZ6", exchange="CME")
        await wait_until(lambda: [u for u in updates if u.symbol == "MESZ6" and u.net_quantity == 0], what="flat")
        assert sim.exchange.open_orders(LEADER) == []  # the working order was cancelled too
        await wait_until(lambda: seen.exchange_of("cp-w", 3), what="352 CANCEL of the working order")

        history = await both.show_order_history_summary(sim_today(), account_id=LEADER)
        by_tag = {h.user_tag: h.notify_type for h in history if h.user_tag}
        assert by_tag == {"cp-e": 5, "cp-w": 3}  # filled, cancelled
        assert len(history) == 3  # and the untagged closing order of the exit
    finally:
        await both.disconnect()


def sim_today() -> str:
    from copytrader.common.clock import today_utc

    return today_utc().strftime("%Y%m%d")

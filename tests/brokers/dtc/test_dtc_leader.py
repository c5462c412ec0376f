"""A DTC account as a leader: orders the trader enters elsewhere (Sierra Chart's own trade
window, here a second DTC connection of the same logon) reach the adapter as ORDER_UPDATEs, and
the leader's signal normalizer turns its events into new / modify / cancel / fill signals."""

from __future__ import annotations

from adapter_helpers import ACCOUNT, SYMBOL, Recorder, adapter_for
from dtc_client import DtcClient

from copytrader.agents.ingest.watchers import SignalNormalizer
from copytrader.brokers.dtc.codec import make
from copytrader.brokers.dtc.messages import Encoding, MsgType
from copytrader.brokers.dtc.simulator import DtcSimulator
from copytrader.brokers.model import FillEvent, OrderEvent, OrderStatus


async def test_a_traders_own_orders_become_leader_signals(dsim: DtcSimulator, encoding: Encoding) -> None:
    adapter = adapter_for(dsim, encoding)
    events = Recorder(adapter.events())
    await adapter.connect()
    account = adapter.broker_account(ACCOUNT)
    trader = await DtcClient.connect(dsim.port, encoding)  # the trade window of the same logon
    try:
        await trader.logon()
        entry = {"Symbol": SYMBOL, "TradeAccount": account, "BuySell": 1, "Quantity": 1.0, "TimeInForce": 2}
        trader.send(make(MsgType.SUBMIT_NEW_SINGLE_ORDER, ClientOrderID="sc-1", OrderType=2, Price1=4990.0, **entry))  # type: ignore[arg-type]  # field values
        working = await events.expect(lambda e: isinstance(e, OrderEvent) and e.status is OrderStatus.WORKING)
        server_id = working.broker_order_id  # type: ignore[union-attr]  # OrderEvent
        trader.send(
            make(MsgType.CANCEL_REPLACE_ORDER, ServerOrderID=server_id, Price1=4991.0, Quantity=1.0, Price2IsSet=0)
        )
        await events.expect(lambda e: isinstance(e, OrderEvent) and e.limit_price is not None and e.limit_price > 4990)
        trader.send(make(MsgType.CANCEL_ORDER, ServerOrderID=server_id))
        await events.expect(lambda e: isinstance(e, OrderEvent) and e.status is OrderStatus.CANCELLED)
        trader.send(make(MsgType.SUBMIT_NEW_SINGLE_ORDER, ClientOrderID="sc-2", OrderType=1, **entry))  # type: ignore[arg-type]  # field values
        await events.expect(lambda e: isinstance(e, FillEvent) and e.client_order_id == "sc-2")
    finally:
        await trader.close()
        await adapter.disconnect()
    normalizer = SignalNormalizer(ACCOUNT, adapter.platform)
    signals = [s for s in (normalizer.on_event(e) for e in events.drain()) if s is not None]
    assert [s.kind for s in signals] == ["new", "modify", "cancel", "new", "fill"]
    assert signals[0].limit_price is not None and signals[1].limit_price is not None
    assert (signals[0].limit_price, signals[1].limit_price) == (4990, 4991)
    assert signals[-1].fill_price == 5000 and signals[-1].quantity == 1

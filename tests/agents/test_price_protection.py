"""Fan-out's price band and reference price reach the broker and the executor's records
(Faust test context, paper venue, no Kafka). Quotes are fed into a QuoteBook directly."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

import pytest
from waiting import wait_until

from copytrader.agents.shared.outbox import MemoryOutbox
from copytrader.app.factory import CopyTraderApp
from copytrader.core import ids
from copytrader.core.quotes import QuoteBook
from copytrader.core.records import IntentBatch, TradeSignal

CONFIG = {
    "sessions": [{"id": "p", "platform": "paper", "options": {"tick_ms": 0, "venue": "band-test"}}],
    "accounts": [{"id": "L", "session": "p"}, {"id": "banded", "session": "p"}, {"id": "plain", "session": "p"}],
    "copy_groups": [
        {"leader": "L", "followers": [{"account": "banded", "rule": {"price_band_ticks": 4}}, {"account": "plain"}]}
    ],
}


@pytest.fixture
def app(make_app: Callable[..., CopyTraderApp]) -> CopyTraderApp:  # tests/agents/conftest.py
    return make_app(CONFIG, ("fanout", "execute"))


async def test_banded_copy_is_placed_as_a_limit_and_its_records_carry_band_and_reference(
    app: CopyTraderApp, outbox: MemoryOutbox
) -> None:
    quotes = QuoteBook()
    quotes.update("ESZ6", bid=Decimal("4999.75"), ask=Decimal("5000.00"))
    app.runtime.fanout.planner.quotes = quotes  # what the worker's price feed fills (branch ``prices``)
    signal = TradeSignal(
        signal_id=ids.signal_id("L", "1", "new"),
        leader_account="L",
        platform="paper",
        symbol="ESZ6",
        side="buy",
        quantity=1,
        leader_order_id="1",
        stamps={"detected": 1.0},
    )
    async with app.agents["fanout"].test_context() as agent:
        await agent.put(signal.dumps(), key=b"ESZ6")
    intents = {i.account_id: i for i in outbox.sent["intent"]}
    assert (intents["banded"].order_type, intents["banded"].limit_price) == ("limit", Decimal("5001.00"))
    assert intents["plain"].order_type == "market"
    async with app.agents["executor"].test_context() as agent:
        await agent.put(IntentBatch(batch_id="b", intents=list(intents.values())), key=b"b")

        def settled() -> list[str]:
            kinds = [(e.account_id, e.kind) for e in outbox.sent["execution"]]
            return kinds if {("banded", "fill"), ("plain", "fill"), ("banded", "ack")} <= set(kinds) else []

        await wait_until(settled, timeout_s=5, what="acks and fills of both copies")
        await app.runtime.execution.lanes.join()
    records = {(e.account_id, e.kind): e for e in outbox.sent["execution"]}
    ack, fill = records[("banded", "ack")], records[("banded", "fill")]
    assert (ack.band_ticks, ack.band_touch, ack.reference_price) == (4, Decimal("5000.00"), Decimal("4999.875"))
    assert fill.reference_price == Decimal("4999.875") and fill.price is not None
    assert fill.price <= Decimal("5001.00")  # a limit: never filled beyond the band
    assert records[("plain", "fill")].reference_price == Decimal("4999.875")
    assert records[("plain", "ack")].band_ticks is None
    adapter = app.runtime.pool.connected()["p"]
    (order,) = adapter.exchange.account("banded").orders.values()  # type: ignore[attr-defined]  # paper adapter
    assert (order.order_type.value, order.limit_price) == ("limit", Decimal("5001.00"))

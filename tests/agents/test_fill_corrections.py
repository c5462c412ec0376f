"""A broker's FillCorrection goes to trade.executions as its own kind, and the tracker
corrects the position from it (Faust test context, no Kafka)."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

import pytest
from prometheus_client import REGISTRY

from copytrader.agents.shared.outbox import MemoryOutbox
from copytrader.app.factory import CopyTraderApp
from copytrader.brokers.model import FillCorrection, FillEvent, Side
from copytrader.core.records import ExecutionBatch

CONFIG = {
    "sessions": [{"id": "p", "platform": "paper", "options": {"tick_ms": 0, "venue": "corrections-test"}}],
    "accounts": [{"id": "L", "session": "p"}, {"id": "f1", "session": "p"}],
    "copy_groups": [{"leader": "L", "followers": [{"account": "f1"}]}],
}


@pytest.fixture
def app(make_app: Callable[..., CopyTraderApp]) -> CopyTraderApp:  # tests/agents/conftest.py
    return make_app(CONFIG, ("fanout", "execute", "track"))


async def test_correction_reaches_executions_and_the_tracker_fixes_the_position(
    app: CopyTraderApp, outbox: MemoryOutbox
) -> None:
    router = app.runtime.execution.router
    fill = FillEvent("f1", "c1", "77", "5001", "ESZ6", Side.BUY, 2, Decimal("5000"), 2, 0)
    bust = FillCorrection("f1", "c1", "77", "5001", "5001:bust", "ESZ6", Side.BUY, True, 0, None, 2, Decimal("5000"))
    await router.on_broker_event("tradovate", fill)
    await router.on_broker_event("tradovate", bust)
    await router.outbox.drained()
    fill_x, bust_x = outbox.sent["execution"][-2:]
    assert (bust_x.kind, bust_x.corrects) == ("fill_bust", fill_x.execution_id)
    assert (bust_x.original_quantity, bust_x.original_price, bust_x.quantity) == (2, Decimal("5000"), 0)
    fills_before = _sample("copytrader_fills_total", {"platform": "tradovate"})
    busts_before = _sample("copytrader_fill_corrections_total", {"platform": "tradovate", "kind": "fill_bust"})
    async with app.agents["tracker"].test_context() as agent:
        for execution in (fill_x, bust_x, bust_x):
            await agent.put(ExecutionBatch(executions=[execution]).dumps(), key=b"f1")
    await router.outbox.close()
    position = app.runtime.tables["positions"]["f1|ESZ6"]
    assert position.net_quantity == 0
    assert [p.net_quantity for p in outbox.sent["position"]] == [2, 0]
    # One fill and one bust counted (the repeated bust is a duplicate); a bust is not a fill.
    assert _sample("copytrader_fills_total", {"platform": "tradovate"}) == fills_before + 1
    assert (
        _sample("copytrader_fill_corrections_total", {"platform": "tradovate", "kind": "fill_bust"}) == busts_before + 1
    )


def _sample(name: str, labels: dict[str, str]) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0

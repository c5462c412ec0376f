"""Leader events become signals whose ids are stable across replays."""

import asyncio
from decimal import Decimal

from waiting import wait_until

from copytrader.agents.ingest.watchers import LeaderWatcher, SignalNormalizer
from copytrader.agents.shared.outbox import MemoryOutbox
from copytrader.brokers.base import SessionConfig
from copytrader.brokers.model import CancelOrder, ModifyOrder, OrderType, PlaceOrder, Side
from copytrader.brokers.paper.adapter import PaperAdapter, reset_venues
from copytrader.core.signals import decode_signal


async def test_leader_actions_become_new_modify_cancel_and_fill_signals() -> None:
    reset_venues()
    adapter = PaperAdapter(SessionConfig("paper", "s", {"L": "LEAD"}, options={"tick_ms": 0, "venue": "t1"}))
    await adapter.connect()
    outbox = MemoryOutbox()
    watcher = LeaderWatcher(adapter, "L", outbox)
    task = asyncio.ensure_future(watcher.run())
    await wait_until(
        lambda: adapter._fanout._queues, timeout_s=5, what="the watcher subscribed to the adapter's events"
    )
    await adapter.place(PlaceOrder("L", "c1", "ESZ6", Side.BUY, 1, OrderType.LIMIT, limit_price=Decimal("4900")))
    await adapter.modify(ModifyOrder("L", "c1", quantity=2, limit_price=Decimal("4901")))
    await adapter.cancel(CancelOrder("L", "c1"))
    await adapter.place(PlaceOrder("L", "c2", "ESZ6", Side.SELL, 3))
    await wait_until(
        lambda: len(outbox.sent["signal"]) >= 5,
        timeout_s=5,
        what="five leader signals",
        observe=lambda: len(outbox.sent["signal"]),
    )
    task.cancel()
    signals = [decode_signal(payload) for _, payload in outbox.sent["signal"]]
    assert [s.kind for s in signals] == ["new", "modify", "cancel", "new", "fill"]
    assert signals[1].quantity == 2 and signals[1].limit_price == Decimal("4901")
    assert all("detected" in s.stamps and "published" in s.stamps for s in signals)
    assert [e.is_leader for e in outbox.sent["execution"]] == [True]
    await adapter.disconnect()


def test_replayed_event_yields_the_same_signal_id_and_no_second_signal() -> None:
    from copytrader.brokers.model import OrderEvent, OrderStatus

    event = OrderEvent("L", None, "900", "ESZ6", Side.BUY, OrderType.MARKET, 1, OrderStatus.WORKING)
    first = SignalNormalizer("L", "paper").on_event(event)
    assert first is not None
    assert SignalNormalizer("L", "paper").on_event(event).signal_id == first.signal_id  # type: ignore[union-attr]  # asserted above
    normalizer = SignalNormalizer("L", "paper")
    normalizer.on_event(event)
    assert normalizer.on_event(event) is None


def test_a_market_order_that_closes_the_leader_position_becomes_a_flatten() -> None:
    from decimal import Decimal as D

    from copytrader.brokers.model import FillEvent, OrderEvent, OrderStatus

    normalizer = SignalNormalizer("L", "paper")
    opened = normalizer.on_event(OrderEvent("L", None, "1", "ESZ6", Side.BUY, OrderType.MARKET, 2, OrderStatus.WORKING))
    fill = FillEvent("L", None, "1", "f1", "ESZ6", Side.BUY, 2, D("5000"), 2, 0)
    assert normalizer.on_event(fill).kind == "fill"  # type: ignore[union-attr]  # a fill yields a signal
    assert normalizer.on_event(fill) is None  # the same execution reported twice counts once
    partial = normalizer.on_event(
        OrderEvent("L", None, "2", "ESZ6", Side.SELL, OrderType.MARKET, 1, OrderStatus.WORKING)
    )
    normalizer.on_event(FillEvent("L", None, "2", "f2", "ESZ6", Side.SELL, 1, D("5001"), 1, 0))
    close = normalizer.on_event(OrderEvent("L", None, "3", "ESZ6", Side.SELL, OrderType.MARKET, 1, OrderStatus.WORKING))
    assert [s.kind for s in (opened, partial, close)] == ["new", "new", "flatten"]  # type: ignore[union-attr]  # all signals

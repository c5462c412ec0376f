"""The tick's shortcut for resting limits (``SimExchange._resting``) changes nothing: the same
orders under the same price path publish the same events, in the same order, as when every
working order goes through the full matcher on every tick."""

from __future__ import annotations

import dataclasses
import random
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from copytrader.brokers.model import Bracket, OrderType, Side, TimeInForce
from copytrader.brokers.simkernel.exchange import KernelEvent, SimExchange

TYPES = (OrderType.MARKET, OrderType.LIMIT, OrderType.STOP, OrderType.STOP_LIMIT)
FORCES = (TimeInForce.DAY, TimeInForce.GTC, TimeInForce.IOC, TimeInForce.FOK)


def trade(seed: int, shortcut: bool) -> list[tuple[str, dict[str, object]]]:
    """A seeded mix of orders on two symbols, interleaved with ticks; every event published."""
    exchange = SimExchange(seed=5)
    if not shortcut:
        exchange._resting = lambda order, last: False  # type: ignore[method-assign]  # every order matched in full
    events: list[KernelEvent] = []
    exchange.add_listener(events.append)
    rng = random.Random(seed)
    for name in ("a", "b"):
        exchange.open_account(name).faults.partial_fill_lot = rng.choice([0, 0, 1])
    for _ in range(60):
        for _ in range(rng.randint(0, 3)):
            symbol = rng.choice(["ESZ6", "NQZ6"])
            tick = Decimal("0.25")
            near = exchange.prices.price(symbol) + tick * rng.randint(-6, 6)
            kind = rng.choice(TYPES)
            exchange.submit(
                rng.choice(["a", "b"]),
                symbol=symbol,
                side=rng.choice([Side.BUY, Side.SELL]),
                quantity=rng.randint(1, 3),
                order_type=kind,
                limit_price=near if kind in (OrderType.LIMIT, OrderType.STOP_LIMIT) else None,
                stop_price=near if kind in (OrderType.STOP, OrderType.STOP_LIMIT) else None,
                time_in_force=rng.choice(FORCES),
                bracket=Bracket(take_profit=tick * 8, stop_loss=tick * 8) if rng.random() < 0.1 else None,
            )
        exchange.advance(rng.randint(1, 3))
    return [(type(e).__name__, {k: v for k, v in dataclasses.asdict(e).items() if k != "timestamp"}) for e in events]


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 10_000))
def test_ticks_publish_the_same_events_with_and_without_the_shortcut(seed: int) -> None:
    with_shortcut = trade(seed, shortcut=True)
    assert with_shortcut == trade(seed, shortcut=False)
    assert any(kind == "FillEvent" for kind, _ in with_shortcut)

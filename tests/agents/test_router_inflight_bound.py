"""The router's in-flight table stays bounded when orders never report their end (#18 item 3).

A placed order stays in ``inflight`` (its stamps wait for the last fill) until a final event
names it; one whose final event never comes (a fill that arrived without our id, a resting
order that never fills) would stay forever. Beyond ``inflight_limit`` the oldest go.
"""

from __future__ import annotations

from pathlib import Path

from test_executor_exactly_once import CONFIG, Executor, FakeBroker, place

from copytrader.core.config import parse_config


async def test_orders_that_never_end_are_dropped_oldest_first(tmp_path: Path) -> None:
    FakeBroker.books = {}
    broker = FakeBroker(parse_config(CONFIG, env={}).sessions["s"])
    executor = Executor(tmp_path / "attempts.sqlite", broker)
    executor.router.inflight_limit = 3
    intents = [place(f"never-ends-{n}") for n in range(5)]
    for intent in intents:
        await executor.run(intent)
    assert [("ack", False)] * 5 == [(o.kind, o.duplicate) for o in executor.outcomes()]
    assert list(executor.router.inflight) == [i.client_order_id for i in intents[-3:]]

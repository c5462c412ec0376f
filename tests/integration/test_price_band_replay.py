"""A price-band rule edited in the dashboard reaches a fan-out worker through the real
``copy.controls`` topic (replayed from the start, as after a restart) and protects its copies
with the worker's QuoteBook; the web worker's own rule record is what is replayed."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from decimal import Decimal

import pytest
import pytest_asyncio
from aiokafka import AIOKafkaProducer

from copytrader.agents.fanout.controls import planner_applier
from copytrader.agents.fanout.planner import FanoutPlanner
from copytrader.agents.fanout.price_band import SKIPPED
from copytrader.agents.shared.controls_feed import ControlsFeed
from copytrader.core import ids
from copytrader.core.config import parse_config, parse_rule
from copytrader.core.control_records import RuleCommand
from copytrader.core.quotes import QuoteBook
from copytrader.core.records import TradeSignal
from copytrader.core.topics import ensure_topics, topic_name
from copytrader.demo.configgen import demo_config
from copytrader.web.accounts import rule_dict

pytestmark = [pytest.mark.kafka]


@pytest_asyncio.fixture
async def prefix(kafka_bootstrap: str) -> AsyncIterator[str]:
    name = f"band{uuid.uuid4().hex[:8]}."
    await ensure_topics(kafka_bootstrap, name)
    yield name


async def publish(bootstrap: str, prefix: str, record: RuleCommand) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(topic_name(prefix, "copy.controls"), record.encode(), key=record.key.encode())
    finally:
        await producer.stop()


def entry(order: str) -> TradeSignal:
    return TradeSignal(
        signal_id=ids.signal_id("leader-1", order, "new"),
        leader_account="leader-1",
        platform="paper",
        symbol="ESZ6",
        side="sell",
        quantity=1,
        leader_order_id=order,
    )


async def test_a_replayed_band_rule_turns_the_copy_into_a_protected_limit(kafka_bootstrap: str, prefix: str) -> None:
    # What the web worker publishes for a rule saved in the editor (web/accounts.rule_dict).
    rule = rule_dict(parse_rule({"mode": "fixed", "quantity": 1, "price_band_ticks": 3, "on_no_quote": "skip"}))
    await publish(kafka_bootstrap, prefix, RuleCommand("r1", "demo", "f002", rule, True, "admin"))
    quotes = QuoteBook()
    planner = FanoutPlanner(parse_config(demo_config(4), env={}), quotes=quotes)
    feed = ControlsFeed(kafka_bootstrap, prefix, planner_applier(planner))
    task = asyncio.ensure_future(feed.run())
    try:
        await asyncio.wait_for(feed.caught_up.wait(), 30)
        _, errors = planner.plan(entry("1"))  # no quote yet: this follower's copy is skipped
        assert [(e.account_id, e.code) for e in errors] == [("f002", SKIPPED)]
        quotes.update("ESZ6", bid=Decimal("5000.00"), ask=Decimal("5000.25"))
        intents, errors = planner.plan(entry("2"))
        banded = next(i for i in intents if i.account_id == "f002")
        assert (banded.order_type, banded.limit_price, banded.band_ticks) == ("limit", Decimal("4999.25"), 3)
        assert errors == []
        # Every copy carries its own symbol's reference; a mapped symbol without a quote has none.
        assert {i.symbol: i.reference_price for i in intents} == {
            i.symbol: Decimal("5000.125") if i.symbol == "ESZ6" else None for i in intents
        }
        # Turning the band off in the dashboard is replayed the same way.
        off = rule_dict(parse_rule({"mode": "fixed", "quantity": 1}))
        await publish(kafka_bootstrap, prefix, RuleCommand("r2", "demo", "f002", off, True, "admin"))
        assert await feed.sync(timeout_s=10)
        intents, _ = planner.plan(entry("3"))
        assert next(i for i in intents if i.account_id == "f002").order_type == "market"
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

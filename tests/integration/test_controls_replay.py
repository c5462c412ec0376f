"""Dashboard records on the real ``copy.controls`` topic, replayed by a worker that starts later.

This is what a restart looks like to a planner and an executor: they read the compacted topic
from the beginning and must end with the dashboard's accounts, followers and logins applied.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from aiokafka import AIOKafkaProducer

from copytrader.agents.fanout.controls import planner_applier
from copytrader.agents.fanout.planner import FanoutPlanner
from copytrader.agents.shared.controls_feed import ControlsFeed
from copytrader.common.crypto import CredentialCipher, generate_key
from copytrader.core import ids
from copytrader.core.config import parse_config
from copytrader.core.control_records import AccountCommand, Login, RuleCommand, seal_login
from copytrader.core.live_config import dashboard_session_id
from copytrader.core.records import TradeSignal
from copytrader.core.topics import ensure_topics, topic_name
from copytrader.demo.configgen import demo_config

pytestmark = [pytest.mark.kafka]
CIPHER = CredentialCipher([generate_key()])


@pytest_asyncio.fixture
async def prefix(kafka_bootstrap: str) -> AsyncIterator[str]:
    name = f"replay{uuid.uuid4().hex[:8]}."
    await ensure_topics(kafka_bootstrap, name)
    yield name


async def publish(bootstrap: str, prefix: str, records: list[AccountCommand | RuleCommand]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for record in records:
            await producer.send_and_wait(topic_name(prefix, "copy.controls"), record.encode(), key=record.key.encode())
    finally:
        await producer.stop()


def account(secret: str) -> AccountCommand:
    return AccountCommand(
        f"c-{secret}",
        "dash9",
        "paper",
        "PAPER-9",
        "30000",
        True,
        dashboard_session_id("dash9"),
        None,
        seal_login(CIPHER, "dash9", Login("u", secret)),
        CIPHER.primary_key_id,
        "admin",
    )


async def test_a_planner_started_later_copies_to_the_dashboard_follower(kafka_bootstrap: str, prefix: str) -> None:
    join = RuleCommand("r1", "demo", "dash9", {"mode": "fixed", "quantity": 4}, True, "admin")
    await publish(kafka_bootstrap, prefix, [account("first"), join, account("second")])
    planner = FanoutPlanner(parse_config(demo_config(2), env={}))
    feed = ControlsFeed(kafka_bootstrap, prefix, planner_applier(planner))
    task = asyncio.ensure_future(feed.run())
    try:
        await asyncio.wait_for(feed.caught_up.wait(), 30)
        signal = TradeSignal(
            signal_id=ids.signal_id("leader-1", "1", "new", 1),
            leader_account="leader-1",
            platform="paper",
            symbol="ESZ6",
            side="buy",
            quantity=1,
            kind="new",
            leader_order_id="1",
        )
        intents, errors = planner.plan(signal)
        mine = [i for i in intents if i.account_id == "dash9"]
        assert len(mine) == 1 and mine[0].quantity == 4 and not errors
        assert planner.config.accounts["dash9"].broker_account == "PAPER-9"
        # sync() waits for a record published after the replay: the executor's guard against
        # an intent that overtakes its account record.
        await publish(
            kafka_bootstrap, prefix, [RuleCommand("r2", "demo", "dash9", {"mode": "fixed", "quantity": 6}, True)]
        )
        assert await feed.sync(timeout_s=10)
        intents, _ = planner.plan(signal)
        assert next(i for i in intents if i.account_id == "dash9").quantity == 6
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

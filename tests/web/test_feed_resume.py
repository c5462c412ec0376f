"""A restarted dashboard feed resumes where it stopped (session 26): what arrived while its
consumer restarted is shown, however much it was, and nothing it had read is read again."""

from __future__ import annotations

import asyncio
import contextlib

import pytest
from waiting import wait_until
from webtest_helpers import KafkaWeb

from copytrader.core.records import Execution
from copytrader.web import realtime

pytestmark = pytest.mark.kafka
BACKLOG = 2


def ack(n: int) -> Execution:
    return Execution(
        execution_id=f"e{n}",
        account_id="f001",
        platform="paper",
        kind="ack",
        signal_id=f"leader-1:{n}:new",
        client_order_id=f"c{n}",
        request_outcome=True,
        symbol="ESZ6",
        side="buy",
        quantity=1,
    )


def shown(web: KafkaWeb) -> list[str]:
    return [row["execution_id"] for row in web.ctx.live.orders]


async def test_a_restarted_feed_shows_what_arrived_beyond_the_backlog_while_it_was_down(
    kafka_web: KafkaWeb, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(realtime, "BACKLOG_PER_PARTITION", BACKLOG)
    web = kafka_web
    for n in range(3):
        await web.publish("trade.executions", ack(n), 0)
    await web.start_feed()
    # the start-up backlog: the last BACKLOG records of the partition
    await wait_until(lambda: shown(web) == ["e1", "e2"], timeout_s=20, what="the backlog", observe=lambda: shown(web))
    assert web.feed_task is not None
    web.feed_task.cancel()  # the consumer stops (a broker hiccup); the state stays
    with contextlib.suppress(asyncio.CancelledError):
        await web.feed_task
    for n in range(3, 3 + BACKLOG + 3):  # more than the backlog while it is down
        await web.publish("trade.executions", ack(n), 0)
    await web.start_feed()
    expected = [f"e{n}" for n in range(1, 3 + BACKLOG + 3)]
    await wait_until(lambda: shown(web) == expected, timeout_s=20, what="every record", observe=lambda: shown(web))

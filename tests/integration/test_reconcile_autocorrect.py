"""Auto-correct through real Kafka and real workers (issue #17 item 1): a follower given a
position behind the copier's back is brought back to the leader's, with exactly one order.

The follower is on the Tradovate simulator; the drift is an order placed straight into the
simulator's books. ``copytrader reconcile`` asks the workers to look; the executor confirms the
drift on a second look, sends one correction (its own idempotency key), and the next looks find
the follower in sync and send nothing more.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer
from test_reconcile_cli import first_reconciliation, run_cli
from waiting import wait_until

from copytrader.brokers.model import Side
from copytrader.core.records import AccountStatus
from copytrader.core.settings import Settings
from copytrader.demo.runner import Scenario, ScenarioOptions

pytestmark = [pytest.mark.kafka]


class StatusWatch:
    """The latest reconciliation report of each account on ``account.status``."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.consumer = AIOKafkaConsumer(
            topic, bootstrap_servers=bootstrap, group_id=None, auto_offset_reset="earliest"
        )
        self.latest: dict[str, dict[str, Any]] = {}
        self.states: dict[str, list[str]] = {}  # every report's state, in order

    async def poll(self) -> None:
        for messages in (await self.consumer.getmany(timeout_ms=100)).values():
            for message in messages:
                status = AccountStatus.loads(message.value or b"")
                if status.reconciliation:
                    self.latest[status.account_id] = status.reconciliation
                    self.states.setdefault(status.account_id, []).append(status.reconciliation.get("state", ""))


async def test_auto_correct_brings_a_drifted_follower_back_with_one_order(kafka_bootstrap: str, tmp_path: Path) -> None:
    settings = Settings(kafka_broker=f"kafka://{kafka_bootstrap}", data_dir=tmp_path)
    options = ScenarioOptions(
        trades=1, quiet=True, platform="tradovate", processes=1, market_data=False, auto_correct=True
    )
    async with Scenario("autocorrect", 3, "0", options, settings=settings) as run:
        (sandbox,) = [s for s in run.sandboxes if type(s).__module__.startswith("copytrader.brokers.tradovate")]
        follower = run.config.accounts["f003"]
        name = follower.broker_account
        started = await first_reconciliation(kafka_bootstrap, f"{run.prefix}account.status", "f003", 60)
        assert started["state"] == "in_sync" and started["auto_correct"] is True, started
        orders_before = len(sandbox.exchange.account(name).orders)
        sandbox.exchange.submit(name, symbol="ESZ6", side=Side.BUY, quantity=1)  # behind our back
        assert sandbox.exchange.position_event(name, "ESZ6").net_quantity == 1

        env = {**os.environ, **run.worker_env, "COPYTRADER_ROLES": "fanout", "COPYTRADER_APP_ID": "autocorrect-cli"}
        code, _, err = await run_cli(env, "--account", "f003", "--by", "test", "--wait", "60")
        assert code == 0, err[-2000:]

        watch = StatusWatch(kafka_bootstrap, f"{run.prefix}account.status")
        await watch.consumer.start()
        try:

            async def corrected() -> bool:
                await watch.poll()
                return sandbox.exchange.position_event(name, "ESZ6").net_quantity == 0

            await wait_until(corrected, timeout_s=90, what="the follower flat again at the broker")
            # the injected order and one correction: nothing else reached the books
            assert len(sandbox.exchange.account(name).orders) == orders_before + 2

            # later looks find it in sync and send nothing more
            code, _, err = await run_cli(env, "--account", "f003", "--by", "test", "--wait", "60")
            assert code == 0, err[-2000:]

            async def in_sync() -> bool:  # after the drift was seen, not the first look's
                await watch.poll()
                states = watch.states.get("f003", [])
                return "drifted" in states and states[-1] == "in_sync"

            # a look that finds the follower in sync plans nothing: no second correction
            await wait_until(in_sync, timeout_s=60, what="the follower reported in sync")
            assert len(sandbox.exchange.account(name).orders) == orders_before + 2
            assert sandbox.exchange.position_event(name, "ESZ6").net_quantity == 0
        finally:
            await watch.consumer.stop()

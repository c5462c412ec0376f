"""``copytrader reconcile`` through real Kafka and real workers (issue #17 item 1).

A follower on the Tradovate simulator is given a position behind the copier's back (an order
placed straight into the simulator's books). The command's request reaches the ingest worker,
which publishes the leader's fresh snapshot, and the executor, which reconciles the follower
against it: the report printed by the command says drifted, by how much, and why.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from asyncio.subprocess import PIPE
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer
from test_kill_switch import copytrader_cli

from copytrader.brokers.model import Side
from copytrader.core.records import AccountStatus
from copytrader.core.settings import Settings
from copytrader.demo.runner import Scenario, ScenarioOptions

pytestmark = [pytest.mark.kafka]


async def first_reconciliation(bootstrap: str, topic: str, account: str, timeout_s: float) -> dict[str, Any]:
    """The workers' first reconciliation of ``account`` (on their start: the leader's connect
    snapshot), read from ``account.status``: from then on they follow reconcile requests."""
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=None, auto_offset_reset="earliest")
    await consumer.start()
    try:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for messages in (await consumer.getmany(timeout_ms=200)).values():
                for message in messages:
                    status = AccountStatus.loads(message.value or b"")
                    if status.account_id == account and status.reconciliation:
                        return status.reconciliation
        raise AssertionError(f"no reconciliation of {account} on {topic} within {timeout_s} s")
    finally:
        await consumer.stop()


async def run_cli(env: dict[str, str], *args: str) -> tuple[int, str, str]:
    cli = await asyncio.create_subprocess_exec(*copytrader_cli(), "reconcile", *args, env=env, stdout=PIPE, stderr=PIPE)
    out, err = await asyncio.wait_for(cli.communicate(), 120)
    return cli.returncode or 0, out.decode(), err.decode()


async def test_reconcile_reports_a_follower_that_drifted_at_the_broker(kafka_bootstrap: str, tmp_path: Path) -> None:
    settings = Settings(kafka_broker=f"kafka://{kafka_bootstrap}", data_dir=tmp_path)
    options = ScenarioOptions(trades=1, quiet=True, platform="tradovate", processes=1, market_data=False)
    async with Scenario("reconcile", 3, "0", options, settings=settings) as run:
        (sandbox,) = [s for s in run.sandboxes if type(s).__module__.startswith("copytrader.brokers.tradovate")]
        follower = run.config.accounts["f003"]
        started = await first_reconciliation(kafka_bootstrap, f"{run.prefix}account.status", "f003", 60)
        assert started["state"] == "in_sync", started
        sandbox.exchange.submit(follower.broker_account, symbol="ESZ6", side=Side.BUY, quantity=1)
        env = {**os.environ, **run.worker_env, "COPYTRADER_ROLES": "fanout", "COPYTRADER_APP_ID": "reconcile-cli"}
        code, out, err = await run_cli(env, "--account", "f003", "--by", "test", "--wait", "60")
        assert code == 0, err[-2000:]
        answer = json.loads(out.strip().splitlines()[-1])
        assert (answer["account_id"], answer["by"]) == ("f003", "test")
        report = answer["reports"]["f003"]
        assert report["state"] == "drifted", report
        assert report["drift"] == {"ESZ6": {"expected": 0, "actual": 1, "difference": -1}}
        assert report["positions"]["ESZ6"] == 1 and report["auto_correct"] is False  # (it copies into MESZ6)

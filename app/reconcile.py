"""``copytrader reconcile``: reconcile every follower (or one) now, from a shell.

A Faust app command on the app's own producer: it writes the same ``copy.controls`` request as
``POST /api/reconcile`` and the dashboard button (``core.reconcile.request``), so it needs Kafka
and the config, not a web worker. The answer arrives where every reconciliation's does:
``account.status`` (the grid) and ``order.errors``; ``--wait`` also prints the reports that
arrive on ``account.status`` within that many seconds.
"""

from __future__ import annotations

import getpass
import json
import time
from typing import Any

import click
import faust
from aiokafka import AIOKafkaConsumer, TopicPartition

from ..core import reconcile as reconciliation
from ..core.control_records import ALL_ACCOUNTS
from ..core.control_records import TOPIC as CONTROLS_TOPIC
from ..core.records import AccountStatus
from ..core.topics import SPEC, topic_name


class ReportReader:
    """Reads ``account.status`` from its end *as of before the request*: positions are fixed
    first (end offsets, then seek), so no report can arrive in between and be missed."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False)
        self.topic = topic

    async def start(self) -> None:
        await self.consumer.start()
        assigned = [TopicPartition(self.topic, p) for p in range(SPEC["account.status"].partitions)]
        ends = await self.consumer.end_offsets(assigned)
        self.consumer.assign(assigned)
        for tp in assigned:
            self.consumer.seek(tp, ends[tp])

    async def collect(self, accounts: set[str], since: float, wait_s: float) -> dict[str, dict[str, Any]]:
        """The first report per account checked after ``since``, until all came or ``wait_s``."""
        found: dict[str, dict[str, Any]] = {}
        deadline = time.monotonic() + wait_s
        try:
            while time.monotonic() < deadline and not accounts <= set(found):
                for messages in (await self.consumer.getmany(timeout_ms=200)).values():
                    for message in messages:
                        try:
                            status = AccountStatus.loads(message.value or b"")
                        except Exception:  # noqa: BLE001 - another writer's record: not ours to read
                            continue
                        body = status.reconciliation
                        wanted = status.account_id in accounts and status.account_id not in found
                        if wanted and body and (body.get("checked_at") or 0) >= since:
                            found[status.account_id] = body
        finally:
            await self.consumer.stop()
        return found


def install(app: Any) -> None:
    runtime = app.runtime

    async def reconcile(self: Any, account: str | None, by: str | None, wait: float) -> None:
        """Reconcile followers now: compare broker positions and working orders with the copy groups."""
        target = account or ALL_ACCOUNTS
        try:
            command = reconciliation.request(runtime.config, target, by or getpass.getuser())
        except KeyError:
            raise click.BadParameter(f"{target!r} is not a follower in the config", param_hint="--account") from None
        controls: faust.TopicT = app.topic(
            topic_name(runtime.settings.topic_prefix, CONTROLS_TOPIC), key_serializer="raw", value_serializer="raw"
        )
        await app.maybe_start_producer()
        accounts = set(runtime.config.follower_accounts()) if target == ALL_ACCOUNTS else {target}
        reader: ReportReader | None = None
        if wait > 0:
            reader = ReportReader(
                runtime.settings.bootstrap_servers, topic_name(runtime.settings.topic_prefix, "account.status")
            )
            await reader.start()
        await controls.send(key=command.key.encode(), value=command.encode())
        await app.producer.flush()
        answer: dict[str, Any] = {"command_id": command.command_id, "account_id": target, "by": command.by}
        if reader is not None:
            answer["reports"] = await reader.collect(accounts, command.at, wait)
        self.say(json.dumps(answer))

    # Faust's ``app.command`` is untyped; registered by call, not as a decorator, for mypy.
    app.command(
        click.option("--account", default=None, help="One follower [default: every follower]."),
        click.option("--by", default=None, help="Who asked (for the audit trail) [default: this user]."),
        click.option("--wait", default=0.0, type=click.FloatRange(0, 300), help="Seconds to wait for the reports."),
        name="reconcile",  # Faust names the command after the function; both say it
    )(reconcile)

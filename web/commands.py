"""What the dashboard's control buttons send into the pipeline.

* Pause/resume → a :class:`ControlCommand` on ``copy.controls`` (key = account or ``*``);
  every fan-out worker applies it to its planner's ``Controls`` (``agents.fanout.controls``).
* Flatten → one all-symbols ``flatten`` OrderIntent per account straight onto
  ``orders.requests``, through the same outbox and partitioning as the planner's intents.

Why intents and not a ``flatten`` TradeSignal on ``trade.signals``: a signal names a leader and
the planner fans it out to every follower of that leader, through each follower's symbol map,
so it cannot target one account, and it cannot flatten a symbol the leader never traded. An
intent per account keeps per-account order (same partition as the account's other intents), is
not held back by a pause, and closes what the broker holds, not what the page last saw. Its
client order id is derived from the command id, so a retried request cannot flatten twice.
"""

from __future__ import annotations

import secrets
import time
from typing import Any

import faust

from ..agents.shared import kill_switch
from ..agents.shared.account_flatten import flatten_account_intent
from ..agents.shared.context import StageContext
from ..core.control_records import TOPIC as CONTROLS_TOPIC
from ..core.control_records import AccountCommand, AlertTokenCommand, ControlCommand, RuleCommand
from ..core.topics import topic_name


class Commands:
    def __init__(self, app: faust.App, runtime: StageContext) -> None:
        self.app = app
        self.runtime = runtime
        self.controls_topic = app.topic(
            topic_name(runtime.settings.topic_prefix, CONTROLS_TOPIC),
            key_type=None,
            value_type=None,
            key_serializer="raw",
            value_serializer="raw",
            internal=False,
        )

    async def set_paused(self, account_id: str, paused: bool, by: str) -> dict[str, Any]:
        command = ControlCommand(f"ctl-{secrets.token_hex(8)}", account_id, paused, by, time.time())
        await self.controls_topic.send(key=account_id.encode(), value=command.encode())
        return {"command_id": command.command_id, "account_id": account_id, "paused": paused}

    async def set_rule(self, group_id: str, account_id: str, rule: dict[str, Any], enabled: bool, by: str) -> None:
        """Every fan-out worker applies it to its planner; compaction keeps it for restarts."""
        command = RuleCommand(f"rule-{secrets.token_hex(8)}", group_id, account_id, rule, enabled, by, time.time())
        await self.controls_topic.send(key=command.key.encode(), value=command.encode())

    async def set_account(self, command: AccountCommand) -> None:
        """Every planner, executor and web worker applies it; compaction keeps the latest."""
        await self.controls_topic.send(key=command.key.encode(), value=command.encode())

    async def set_alert_token(self, command: AlertTokenCommand) -> None:
        """Every web worker applies it (the digest only); compaction keeps the latest."""
        await self.controls_topic.send(key=command.key.encode(), value=command.encode())

    async def kill(self, by: str) -> dict[str, Any]:
        """The kill switch (``agents.shared.kill_switch``): pause all, flatten every follower."""

        async def send_control(key: bytes, value: bytes) -> None:
            await self.controls_topic.send(key=key, value=value)

        switch = await kill_switch.engage(self.runtime.config, by, send_control, self.runtime.outbox.intents)
        return switch.report()

    def followers(self) -> list[str]:
        return self.runtime.config.follower_accounts()

    async def flatten(self, accounts: list[str], by: str) -> dict[str, Any]:
        """One all-symbols flatten per account (``agents.shared.account_flatten``).

        Not one per open position the page shows: those trail the broker (fill → tracker →
        positions.updates → web), and a copy filled a moment before the click stayed open after
        "Flatten all" reported success (a CI run caught it).
        """
        command_id = f"flat-{secrets.token_hex(8)}"
        signal_id = f"control:flatten:{command_id}"
        now = time.time()
        config = self.runtime.config
        targets = [a for a in dict.fromkeys(accounts) if a in config.accounts]
        leader_account = f"dashboard:{by}"
        intents = [flatten_account_intent(config, signal_id, a, leader_account, now) for a in targets]
        if intents:
            await self.runtime.outbox.intents(signal_id, intents)
        return {"command_id": command_id, "accounts": sorted(accounts), "flatten_accounts": targets}

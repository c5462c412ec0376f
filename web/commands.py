"""What the dashboard's control buttons send into the pipeline.

* Pause/resume → a :class:`ControlCommand` on ``copy.controls`` (key = account or ``*``);
  every fan-out worker applies it to its planner's ``Controls`` (``agents.fanout.controls``).
* Flatten → one ``flatten`` OrderIntent per open (account, symbol) straight onto
  ``orders.requests``, through the same outbox and partitioning as the planner's intents.

Why intents and not a ``flatten`` TradeSignal on ``trade.signals``: a signal names a leader and
the planner fans it out to every follower of that leader, through each follower's symbol map,
so it cannot target one account, and it cannot flatten a symbol the leader never traded. The
tracker's positions say exactly which (account, symbol) pairs are open; an intent per pair acts
on exactly those, keeps per-account order (same partition as the account's other intents) and
is not held back by a pause. Its client order id is derived from the command id, so a retried
request cannot flatten twice.
"""

from __future__ import annotations

import secrets
import time
from typing import Any

import faust

from ..agents.shared.context import StageContext
from ..core import ids
from ..core.control_records import TOPIC as CONTROLS_TOPIC
from ..core.control_records import AccountCommand, AlertTokenCommand, ControlCommand, RuleCommand
from ..core.records import OrderIntent
from ..core.topics import topic_name
from .live import LiveState


class Commands:
    def __init__(self, app: faust.App, runtime: StageContext, live: LiveState) -> None:
        self.app = app
        self.runtime = runtime
        self.live = live
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

    def followers(self) -> list[str]:
        return self.runtime.config.follower_accounts()

    async def flatten(self, accounts: list[str], by: str) -> dict[str, Any]:
        command_id = f"flat-{secrets.token_hex(8)}"
        signal_id = f"control:flatten:{command_id}"
        now = time.time()
        intents: list[OrderIntent] = []
        for row in self.live.positions.values():
            account_id, net = row["account_id"], int(row["net_quantity"])
            if account_id not in accounts or net == 0 or account_id not in self.runtime.config.accounts:
                continue
            intents.append(
                OrderIntent(
                    client_order_id=ids.client_order_id(f"{signal_id}:{row['symbol']}", account_id),
                    signal_id=signal_id,
                    account_id=account_id,
                    platform=self.runtime.config.accounts[account_id].platform,
                    leader_account=f"dashboard:{by}",
                    action="flatten",
                    symbol=row["symbol"],
                    side="sell" if net > 0 else "buy",
                    quantity=abs(net),
                    leader_symbol=row["symbol"],
                    stamps={"detected": now, "published": now, "fanned_out": now},
                )
            )
        if intents:
            await self.runtime.outbox.intents(signal_id, intents)
        return {
            "command_id": command_id,
            "accounts": sorted(accounts),
            "flatten_orders": [
                {"account_id": i.account_id, "symbol": i.symbol, "quantity": i.quantity} for i in intents
            ],
        }

"""The kill switch: pause all copying, then cancel every follower's working orders and close
every follower position, on every platform at once (issue #18 item 1).

One function for the three doors (``POST /api/controls/kill``, the dashboard's button and
``copytrader kill``), so they cannot differ. The pause goes first: from then on fan-out plans no
new entry, and the flatten intents that follow cannot be overtaken by a copy planned after them.
Each follower gets one ``flatten`` intent for *all* symbols (``symbol=""``: the adapter cancels
every working order and closes every position of the account), with a client order id derived
from the kill's id, so a retried kill cannot flatten twice and each flatten can be looked up.
Flatten intents pass through a pause by design (``agents.fanout.planner``), so the switch works
while the web workers are down. An executor puts a kill's flatten at the head of the account's
lane and drops the entries still queued behind nothing (never sent), reporting each as
``KILL_SWITCH`` on ``order.errors``: getting out must not wait behind entries the trader has
just cancelled by pulling the switch (a lane paced by a rate budget can hold seconds of them).
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from ...core.config import CopyConfig
from ...core.control_records import ALL_ACCOUNTS, ControlCommand
from ...core.records import OrderIntent
from .account_flatten import flatten_account_intent

#: Every kill's flatten intents carry a signal id with this prefix; executors put them first.
KILL_SIGNAL_PREFIX = "control:kill:"
SendControl = Callable[[bytes, bytes], Awaitable[None]]
SendIntents = Callable[[str, list[OrderIntent]], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class KillSwitch:
    command_id: str
    by: str
    at: float
    accounts: tuple[str, ...]

    @property
    def signal_id(self) -> str:
        return f"{KILL_SIGNAL_PREFIX}{self.command_id}"

    def report(self) -> dict[str, object]:
        return {
            "command_id": self.command_id,
            "by": self.by,
            "at": self.at,
            "paused_all": True,
            "flatten_accounts": list(self.accounts),
        }


def is_kill(signal_id: str) -> bool:
    return signal_id.startswith(KILL_SIGNAL_PREFIX)


def plan(config: CopyConfig, by: str, command_id: str | None = None, now: float | None = None) -> KillSwitch:
    """Which followers the switch flattens: every follower of every copy group, the ones added
    from the dashboard too (never a leader: the trader's own account is theirs to manage)."""
    accounts = tuple(a for a in config.follower_accounts() if a in config.accounts)
    return KillSwitch(command_id or f"kill-{secrets.token_hex(8)}", by, now or time.time(), accounts)


def intents(config: CopyConfig, switch: KillSwitch) -> list[OrderIntent]:
    return [
        flatten_account_intent(config, switch.signal_id, account_id, f"kill:{switch.by}", switch.at)
        for account_id in switch.accounts
    ]


async def engage(
    config: CopyConfig, by: str, send_control: SendControl, send_intents: SendIntents, command_id: str | None = None
) -> KillSwitch:
    """Pause all (``copy.controls``), then the flatten intents (``orders.requests``)."""
    switch = plan(config, by, command_id)
    pause = ControlCommand(f"{switch.command_id}-pause", ALL_ACCOUNTS, True, by, switch.at)
    await send_control(ALL_ACCOUNTS.encode(), pause.encode())
    flattens = intents(config, switch)
    if flattens:
        await send_intents(switch.signal_id, flattens)
    return switch

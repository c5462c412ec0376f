"""Accounts that join the executor while it runs: dashboard records from ``copy.controls``.

An executor worker follows the same compacted topic as the planners. An account record gives
the account (and, when it has its own login, a session whose sealed login this worker opens
with ``COPYTRADER_SECRET_KEY``); a rule record that adds a follower makes this worker connect
the follower's session and pump its fills. A changed login or endpoint closes the old session;
the next order opens the new one. Nothing here is on the order path: an intent that arrives
before its account record makes the session pool wait for this feed (``SessionPool.catch_up``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from ...common.crypto import CredentialCipher, CredentialKeyError
from ...core.control_records import AccountCommand, RuleCommand
from ...core.live_config import add_follower, apply_account
from ..shared.context import StageContext
from ..shared.controls_feed import Command

log = logging.getLogger(__name__)


class ExecutorAccounts:
    """Applies account and follower records to the executor's config, sessions and pumps."""

    def __init__(
        self,
        runtime: StageContext,
        followers: set[str],
        start_session: Callable[[str], Awaitable[None]],
        cipher: CredentialCipher | None = None,
    ) -> None:
        self.runtime = runtime
        self.followers = followers
        self.start_session = start_session
        self.cipher = cipher
        self.refused: dict[str, str] = {}  # account → why its record could not be applied
        self._opening: set[asyncio.Future[None]] = set()

    async def apply(self, command: Command) -> None:
        if isinstance(command, AccountCommand):
            await self._account(command)
        elif isinstance(command, RuleCommand):
            joined = add_follower(
                self.runtime.config, command.group_id, command.account_id, command.parsed_rule(), command.enabled
            )
            if joined or command.account_id not in self.followers:
                self.followers.add(command.account_id)
                await self._open(command.account_id)

    async def _account(self, command: AccountCommand) -> None:
        try:
            session = command.session(self.cipher)
        except CredentialKeyError as exc:
            # Never connect with a login this worker cannot read; say so in the account's status.
            self.refused[command.account_id] = str(exc)
            log.error("account %s not applied: %s", command.account_id, exc)
            return
        self.refused.pop(command.account_id, None)
        change = apply_account(self.runtime.config, command.account(), session)
        if change.reconnect is not None:
            log.info(
                "session %s changed (account %s by %s): reconnecting", change.reconnect, command.account_id, command.by
            )
            await self.runtime.pool.reset(change.reconnect)
        if command.account_id in self.followers:
            await self._open(command.account_id)

    async def _open(self, account_id: str) -> None:
        """Connect in the background: a slow broker must not hold up the records behind it."""
        account = self.runtime.config.accounts.get(account_id)
        if account is not None:
            task = asyncio.ensure_future(self.start_session(account.session_id))
            self._opening.add(task)
            task.add_done_callback(self._opening.discard)

"""Each follower's risk guards and where it stands against them, for the dashboard.

Why computed here and not sent by the executor: the standing is a pure function of facts every
web worker already holds, the follower fills (``trade.executions``, read in full by
``LiveState``) and the latest quotes (its own ``QuoteBook``), and of the rules in the config.
The same code as the executor's check (``core.guard_state.AccountGuard``) turns them into
"daily loss 312.00/500.00", "ESZ6 3/4" or "outside window", so the two cannot disagree on a
definition; they can differ by the executor's working orders, which the web does not count
(it shows positions), and by a quote's age. The executor's breaches and refusals arrive as
``GUARD_*`` records on ``order.errors`` and in the account's status, as every refusal does.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import faust
from aiohttp import web as aioweb
from faust import web

from ..common.clock import utcnow
from ..core.config import CopyConfig
from ..core.guard_state import AccountGuard, changed_limits, has_rules, quote_marks, rules_by_account
from ..core.guards import DAILY_LOSS, DRAWDOWN, GuardRules
from ..core.quotes import QuoteBook
from ..core.records import Execution, OrderError
from .http import guarded, json_response

if TYPE_CHECKING:
    from .server import WebContext

FILL_KINDS = ("fill", "partial_fill")
BREACH_CODES = (DAILY_LOSS, DRAWDOWN)
NO_RULES = GuardRules()


class GuardBoard:
    """One :class:`AccountGuard` per account with fills (guarded or not: the dashboard may
    guard any follower later, and its standing then counts the day's fills already read)."""

    def __init__(self, config: CopyConfig, clock: Callable[[], datetime] = utcnow) -> None:
        self.rules = rules_by_account(config)
        self.clock = clock
        self._quotes: QuoteBook | None = None
        self.accounts = {a: AccountGuard(a, r, quote_marks(None)) for a, r in self.rules.items()}
        # The executor's verdicts (``guard|…`` records on order.errors): account → code → record.
        self.breaches: dict[str, dict[str, OrderError]] = {}

    def use_quotes(self, quotes: QuoteBook | None) -> None:
        self._quotes = quotes
        for guard in self.accounts.values():
            guard.marks = quote_marks(quotes)

    def on_execution(self, ex: Execution) -> None:
        """A record ``LiveState`` reads for the first time (its cursors drop repeats)."""
        if ex.kind not in FILL_KINDS or ex.price is None or ex.quantity <= 0:
            return
        guard = self.accounts.get(ex.account_id)
        if guard is None:
            guard = self.accounts[ex.account_id] = AccountGuard(ex.account_id, NO_RULES, quote_marks(self._quotes))
        guard.fill(None, ex.symbol, ex.side, ex.quantity, Decimal(ex.price), 0, at=ex.occurred_at)

    def set_rules(self, account_id: str, rules: GuardRules | None, at: datetime) -> None:
        """A dashboard edit (``web/guard_edits.py``): the standing follows the new rules at
        once. The executor's breaches of a rule changed since are no longer shown (the
        executor judges them afresh, and reports again if the account is still beyond it)."""
        old = self.rules.get(account_id, NO_RULES)
        new = rules if rules is not None and has_rules(rules) else None
        if new is None:
            self.rules.pop(account_id, None)
        else:
            self.rules[account_id] = new
        guard = self.accounts.get(account_id)
        if guard is None:
            guard = self.accounts[account_id] = AccountGuard(account_id, NO_RULES, quote_marks(self._quotes))
        guard.set_rules(new or NO_RULES)
        changed = changed_limits(old, guard.rules)
        breaches = self.breaches.get(account_id, {})
        for code in [c for c, err in breaches.items() if c in changed and err.occurred_at <= at]:
            del breaches[code]

    def on_error(self, err: OrderError) -> None:
        """A breach the executor acted on (not a refused copy: those name their signal)."""
        if err.account_id in self.rules and err.error_id.startswith("guard|") and err.code in BREACH_CODES:
            self.breaches.setdefault(err.account_id, {})[err.code] = err

    def snapshot(self) -> dict[str, Any]:
        now = self.clock()
        return {
            "market_data": self._quotes is not None,
            "accounts": {
                account_id: {
                    "rules": guard.rules.describe(),
                    "standing": guard.standing(now) + self._in_force(account_id, guard, now),
                }
                for account_id, guard in sorted(self.accounts.items())
                if account_id in self.rules
            },
        }

    def _in_force(self, account_id: str, guard: AccountGuard, now: datetime) -> list[str]:
        """The executor's breaches still in force: a daily loss for its trading day, a drawdown
        until the executor forgets it (a new config or a cleared state file)."""
        today = guard.rules.trading_day(now)
        return [
            f"breached ({err.code}): {err.reason}"
            for code, err in sorted(self.breaches.get(account_id, {}).items())
            if code != DAILY_LOSS or guard.rules.trading_day(err.occurred_at) == today
        ]


def install(app: faust.App, ctx: WebContext) -> None:
    board = ctx.live.guards

    @app.page("/api/guards")
    class Guards(web.View):
        @guarded
        async def get(self, request: aioweb.Request) -> aioweb.Response:
            return json_response(board.snapshot())

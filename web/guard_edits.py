"""A follower's risk guards, edited from the dashboard: ``GET``/``PUT /api/guards/{account_id}``.

The body is the YAML's own ``guards:`` block (``schemas.guards.GuardsIn``), decoded by the same
schema, so the file, this door and the ``copy.controls`` record refuse alike and name the same
path (``window.tz: unknown time zone 'Mars/Base'``). A saved set replaces the account's guards
as a whole (``{}``: none), overriding the YAML's (group defaults included) for that account.

Why through ``copy.controls`` (a ``guards:<account>`` record, ``GuardsCommand``) like the
account and rule edits: every executor applies it to its guards before the account's next
copy without a restart (``agents/execution/guard_edits.py``), every web worker to its
standing, and compaction keeps it across restarts. The record names who saved it and when,
as the other live edits do, and the executors log each one they apply.
"""

from __future__ import annotations

import logging
import secrets
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import faust
from aiohttp import web as aioweb
from faust import web

from ..core import schemas
from ..core.config import CopyConfig
from ..core.control_records import GuardsCommand
from ..core.guard_state import has_rules
from ..core.guards import UTC_NAME, GuardRules, build
from ..core.schemas.guards import WEEKDAYS, DailyLossIn, GuardsIn, TrailingDrawdownIn, WindowIn
from .auth import SESSION_KEY
from .guards import GuardBoard
from .http import FieldErrors, HttpError, guarded, json_response, read_model

if TYPE_CHECKING:
    from .server import WebContext

log = logging.getLogger(__name__)
NEEDS_PRICES = "needs market_data: in the config (unrealised P&L is marked with its quotes)"


def schema_of(rules: GuardRules) -> GuardsIn:
    """The rules in force as the form edits them (the YAML's shape, group defaults merged)."""
    window = rules.window
    daily = rules.daily_loss
    drawdown = rules.trailing_drawdown
    return GuardsIn(
        max_contracts_per_symbol=rules.max_contracts_per_symbol,
        max_contracts_total=rules.max_contracts_total,
        max_orders_per_minute=rules.max_orders_per_minute,
        daily_loss=DailyLossIn(limit=daily.limit, on_breach=daily.on_breach) if daily else None,  # type: ignore[arg-type]  # a validated Literal kept as str
        trailing_drawdown=(
            TrailingDrawdownIn(
                limit=drawdown.limit,
                basis=drawdown.basis,  # type: ignore[arg-type]  # a validated Literal kept as str
                stop_trailing_at=drawdown.stop_trailing_at,
                on_breach=drawdown.on_breach,  # type: ignore[arg-type]  # a validated Literal kept as str
            )
            if drawdown
            else None
        ),
        window=(
            WindowIn(
                start=f"{window.start:%H:%M}",
                end=f"{window.end:%H:%M}",
                days=[WEEKDAYS[d] for d in sorted(window.days)],  # type: ignore[misc]  # names of WEEKDAYS
                tz=window.tz.key,
            )
            if window
            else None
        ),
        tz=rules.tz.key if rules.tz.key != UTC_NAME else None,
        day_starts=f"{rules.day_starts:%H:%M}" if rules.day_starts.hour or rules.day_starts.minute else None,
    )


class GuardEditor:
    """Who may get guards, what they are now, and the records that change them."""

    def __init__(self, config: CopyConfig, board: GuardBoard) -> None:
        self.config = config
        self.board = board
        self.edits: dict[str, GuardsCommand] = {}

    def current(self, account_id: str) -> dict[str, Any]:
        self.check_follower(account_id)
        rules = self.board.rules.get(account_id)
        guard = self.board.accounts.get(account_id)
        edit = self.edits.get(account_id)
        return {
            "account_id": account_id,
            "guards": schemas.to_builtins(schema_of(rules)) if rules is not None else None,
            "rules": rules.describe() if rules is not None else [],
            "standing": guard.standing(self.board.clock()) if guard is not None and rules is not None else [],
            "source": "dashboard" if edit is not None else "config",
            "updated_by": edit.by if edit is not None else None,
            "updated_at": edit.at if edit is not None else None,
            "market_data": self.config.market_data is not None,
        }

    def command(self, account_id: str, body: GuardsIn, by: str) -> GuardsCommand:
        """The record to publish, once the rules are known to work on this deployment."""
        self.check_follower(account_id)
        rules = build(body)
        if rules.needs_marks and self.config.market_data is None:
            field = "daily_loss" if body.daily_loss is not None else "trailing_drawdown"
            raise FieldErrors({field: NEEDS_PRICES})
        saved = body if has_rules(rules) else None
        return GuardsCommand(f"guards-{secrets.token_hex(8)}", account_id, saved, by, time.time())

    def apply(self, command: GuardsCommand) -> None:
        """This worker's own edit, or a record read back from ``copy.controls`` (this or another
        web worker wrote it). An older record replayed after a newer local edit is ignored."""
        previous = self.edits.get(command.account_id)
        if previous is not None and previous.at > command.at:
            return
        self.edits[command.account_id] = command
        rules = build(command.guards) if command.guards is not None else None
        self.board.set_rules(command.account_id, rules, datetime.fromtimestamp(command.at or time.time(), UTC))

    def check_follower(self, account_id: str) -> None:
        if account_id not in self.config.accounts:
            raise HttpError(404, "no such account", id=account_id)
        if account_id not in self.config.follower_accounts():
            raise HttpError(404, "not a follower: guards apply to the accounts that copy", id=account_id)


def install(app: faust.App, ctx: WebContext) -> None:
    editor = ctx.guard_edits

    @app.page("/api/guards/{account_id}")
    class FollowerGuards(web.View):
        @guarded
        async def get(self, request: aioweb.Request, account_id: str) -> aioweb.Response:
            return json_response(editor.current(account_id))

        @guarded
        async def put(self, request: aioweb.Request, account_id: str) -> aioweb.Response:
            """Validated, then on ``copy.controls`` first (nothing is shown that the workers
            will not apply), then here."""
            editor.check_follower(account_id)  # an unknown account is a 404, whatever its body
            body = await read_model(request, GuardsIn)
            command = editor.command(account_id, body, request[SESSION_KEY].username)
            await ctx.commands.controls_topic.send(key=command.key.encode(), value=command.encode())
            editor.apply(command)
            answer = editor.current(account_id)
            log.info("guards of %s set by %s: %s", account_id, command.by, "; ".join(answer["rules"]) or "none")
            return json_response(answer)

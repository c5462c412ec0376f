"""The fan-out's copy controls: pause/resume switches, rule edits, new followers and accounts,
applied to this worker's planner from ``copy.controls`` (see ``agents.shared.controls_feed``)."""

from __future__ import annotations

import logging
from collections.abc import Callable

import faust

from ...core.live_config import add_follower, apply_account
from ...core.records import OrderError
from ..shared.context import StageContext
from ..shared.controls_feed import AccountCommand, Command, ControlCommand, ControlsFeed, RuleCommand, worker_feed
from .planner import FanoutPlanner

log = logging.getLogger(__name__)


def planner_applier(planner: FanoutPlanner) -> Callable[[Command], None]:
    """What a fan-out worker does with each record: switches, rules, members and accounts.

    The planner needs an account's platform and size, never its login, so the sealed login is
    not opened here (fan-out workers need no key).
    """

    def apply(command: Command) -> None:
        if isinstance(command, AccountCommand):
            apply_account(planner.config, command.account(), command.routing_session())
            log.info("account applied: %s on %s by %s", command.account_id, command.platform, command.by)
        elif isinstance(command, RuleCommand):
            rule = command.parsed_rule()
            planner.controls.set_rule(command.group_id, command.account_id, rule, command.enabled)
            joined = add_follower(planner.config, command.group_id, command.account_id, rule, command.enabled)
            log.info(
                "rule applied: %s/%s%s by %s",
                command.group_id,
                command.account_id,
                " (new follower)" if joined else "",
                command.by,
            )
        elif isinstance(command, ControlCommand):
            planner.controls.set_paused(command.account_id, command.paused)
            log.info("control applied: %s paused=%s by %s", command.account_id, command.paused, command.by)

    return apply


def install(app: faust.App, ctx: StageContext, planner: FanoutPlanner) -> ControlsFeed:
    """Every fan-out worker follows the switches; a record it refuses lands on ``order.errors``."""

    async def refused(offset: int, reason: str) -> None:
        await ctx.outbox.error(
            OrderError(
                error_id=f"controls|{offset}",
                stage="fanout",
                code="BAD_CONTROL",
                reason=f"copy.controls record at offset {offset} refused: {reason}"[:500],
            )
        )

    return worker_feed(app, ctx).subscribe(planner_applier(planner), on_refused=refused)

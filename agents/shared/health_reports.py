"""Session health as the dashboard shows it (``broker.health`` → tracker → ``account.status``),
for every account a worker holds a session for: followers (execution) and leaders (ingest)."""

from __future__ import annotations

from ...core.records import AccountStatus
from .context import StageContext


def session_status(ctx: StageContext, account_id: str) -> AccountStatus:
    """The account's session as this worker sees it: connection, breaker, rate headroom."""
    account = ctx.config.accounts[account_id]
    adapter = ctx.pool.connected().get(account.session_id)
    health = adapter.health() if adapter else None
    return AccountStatus(
        account_id=account_id,
        platform=account.platform,
        connection=health.state.value if health else "disconnected",
        circuit=ctx.pool.breaker(account.session_id).state,
        rate_headroom=health.rate_headroom if health else 1.0,
        last_error=health.last_error if health else None,
    )


class HealthReports:
    """Which statuses to send this round: the changed ones, and all of them every few rounds
    (a tracker that lost its table state hears of every account within a minute)."""

    def __init__(self, full_every: int = 12) -> None:
        self.full_every = full_every
        self._round = 0
        self._last: dict[str, dict[str, object]] = {}

    def next_round(self) -> bool:
        self._round += 1
        return self._round % self.full_every == 1

    def changed(self, status: AccountStatus) -> bool:
        body = status.asdict() | {"updated_at": None}
        if self._last.get(status.account_id) == body:
            return False
        self._last[status.account_id] = body
        return True

"""What deserves a notification, read from the records the pipeline already publishes.

Pure functions from a record to a :class:`Notice` (or ``None``), so the choice of what is worth
a trader's attention is testable without Kafka or HTTP. Fan-out's refusals of paused followers
are not notices: the trader paused them. Codes from later issues (``DRIFT``, ``GUARD_*``) are
recognised here already, so their stages only have to publish them on ``order.errors``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from ...common.clock import utcnow
from ...core.records import AccountStatus, OrderError

#: Connection states that mean copying to that account has stopped.
DOWN_STATES = frozenset({"disconnected", "down", "failed", "auth_failed", "error"})
#: Fan-out refusals that are the trader's own choice, never worth an alert.
QUIET_CODES = frozenset({"PAUSED"})


@dataclass(frozen=True, slots=True)
class Notice:
    kind: str  # one of schemas.notifications.NOTICE_KINDS
    severity: str  # "critical" | "warning" | "info"
    title: str
    text: str
    account_id: str | None = None
    at: datetime = field(default_factory=utcnow)
    fields: dict[str, str] = field(default_factory=dict)


def from_error(error: OrderError) -> Notice | None:
    """An ``order.errors`` record → its notice (None for the quiet ones)."""
    code = error.code or ""
    if code in QUIET_CODES:
        return None
    fields = {k: v for k, v in (("signal", error.signal_id), ("order", error.client_order_id), ("code", code)) if v}
    account = error.account_id
    if code == "REJECTED":
        return Notice("reject", "warning", f"Copy rejected on {account}", error.reason, account, fields=fields)
    if code == "OUTCOME_UNKNOWN":
        text = f"{error.reason} — check the broker: the copy may or may not be working."
        return Notice("outcome_unknown", "critical", f"Copy outcome unknown on {account}", text, account, fields=fields)
    if code.startswith("DRIFT") or code in ("ORPHAN_ORDER", "MISSING_ORDER"):  # reconciliation's codes
        return Notice("drift", "critical", f"{account} drifted from its leader", error.reason, account, fields=fields)
    if code == "RECONCILE_UNAVAILABLE":
        text = f"{error.reason} — nothing was corrected."
        return Notice("error", "warning", f"Cannot reconcile {account}", text, account, fields=fields)
    if code.startswith("STOP_MISSING"):  # the protective-stop watcher (agents/execution/protective.py)
        severity = "warning" if code == "STOP_MISSING_REPLACED" else "critical"
        return Notice("guard", severity, f"Protective stop missing on {account}", error.reason, account, fields=fields)
    if code.startswith("GUARD"):
        return Notice("guard", "critical", f"Risk guard on {account}", error.reason, account, fields=fields)
    if error.stage == "fanout" and code in ("RULE", "UNKNOWN_LEADER"):
        return Notice("error", "warning", f"Copy not planned for {account}", error.reason, account, fields=fields)
    return Notice("error", "warning", f"Copy error on {account} ({error.stage})", error.reason, account, fields=fields)


class ConnectionWatch:
    """``account.status`` → a notice when an account goes down or comes back (not on every beat).

    The first status seen of an account only alerts when it is down: a restarted notifier must
    not announce every healthy account.
    """

    def __init__(self) -> None:
        self._down: dict[str, bool] = {}

    def see(self, status: AccountStatus) -> Notice | None:
        down = status.connection in DOWN_STATES or status.circuit == "open"
        was = self._down.get(status.account_id)
        self._down[status.account_id] = down
        if was is None and not down or was == down:
            return None
        account = status.account_id
        if down:
            reason = status.last_error or status.connection
            return Notice(
                "disconnect",
                "critical",
                f"{account} ({status.platform}) is {status.connection}",
                f"Copying to {account} has stopped: {reason}",
                account,
                fields={"circuit": status.circuit},
            )
        return Notice(
            "reconnect", "info", f"{account} ({status.platform}) is back", f"{account} is {status.connection}", account
        )


def kill_switch(paused: bool, by: str) -> Notice:
    """All copying paused (the kill switch) or resumed."""
    if paused:
        return Notice("kill_switch", "critical", "All copying paused", f"Every follower stopped copying (by {by}).")
    return Notice("kill_switch", "info", "Copying resumed", f"Followers copy again (by {by}).")

"""The dashboard's side of reconciliation: the grid shows the broker's own state.

The reconciler (``agents/reconcile``) publishes each follower's broker-reported positions and
working orders on ``account.status`` (``AccountStatus.reconciliation``). Applied here, they
replace what the web worker had derived from events: positions (a symbol the broker no longer
reports is flat) and the working orders behind the "Open" column. Events after it adjust them
as before until the next reconciliation. A report that could not read the broker
(``unavailable``) changes neither: it only says why.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .live import AccountView

#: Bounds on what one report may put into a row (the reconciler's own output, still bounded).
MAX_ROWS = 1000
#: Why an in-sync row has positions the leader's do not explain (``scaling.scales_positions``).
POSITIONS_NOT_COMPARED = "orders only: this copy rule scales each order, so positions are not compared"


def apply_broker_truth(view: AccountView, body: dict[str, Any]) -> None:
    view.reconcile = body
    if body.get("state") not in ("in_sync", "drifted", "leader"):
        return
    positions = body.get("positions")
    if isinstance(positions, dict):
        broker = {str(symbol): int(quantity) for symbol, quantity in list(positions.items())[:MAX_ROWS]}
        view.positions = {symbol: 0 for symbol in view.positions} | broker
    working = body.get("working_orders")
    if isinstance(working, list):
        view.open_orders = {str(order_id) for order_id in working[:MAX_ROWS]}


def reconcile_columns(body: dict[str, Any] | None) -> dict[str, Any]:
    """The grid row's reconciliation columns (``None`` values before the first report)."""
    if body is None:
        return {"sync": None, "sync_since": None, "sync_checked_at": None, "drift": {}, "sync_reason": None}
    return {
        "sync": body.get("state"),
        "sync_since": body.get("since"),
        "sync_checked_at": body.get("checked_at"),
        "drift": body.get("drift") or {},
        "sync_reason": body.get("reason")
        or body.get("correction")
        or (POSITIONS_NOT_COMPARED if body.get("positions_checked") is False else None),
        "orphans": len(body.get("orphans") or []),
        "missing_orders": len(body.get("missing") or []),
    }

"""One intent that flattens every symbol of one account: the kill switch's, a risk guard's
breach and the dashboard's "Flatten" all send this shape, so they cannot differ.

Why every symbol and not one intent per open position: what closes is what the *broker* holds
when the executor reaches the intent (the adapter cancels the account's working orders and
closes each position its own way), not a position list read elsewhere, which trails the fills.
The intent goes through the account's lane after every copy already queued for it.
"""

from __future__ import annotations

from ...core import ids
from ...core.config import CopyConfig
from ...core.records import OrderIntent


def flatten_account_intent(
    config: CopyConfig, signal_id: str, account_id: str, leader_account: str, at: float
) -> OrderIntent:
    """The client order id is derived from ``signal_id`` and the account: a repeated command
    (a retried request, a breach seen again) cannot flatten twice, and the closing orders can be
    looked up at the broker."""
    return OrderIntent(
        client_order_id=ids.client_order_id(signal_id, account_id),
        signal_id=signal_id,
        account_id=account_id,
        platform=config.accounts[account_id].platform,
        leader_account=leader_account,
        action="flatten",
        symbol="",  # every symbol of the account
        side="sell",  # unused by a flatten of all symbols: the adapter closes each its own way
        quantity=1,
        stamps={"detected": at, "published": at, "fanned_out": at},
    )

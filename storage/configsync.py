"""Copy the YAML copy config into ``accounts``, ``copy_groups`` and ``copy_rules``.

The YAML file stays the source of truth for the running agents; the tables are its mirror
for reports (drift needs the rules) and for the dashboard. Rows are upserted, never deleted:
an account that left the config is only disabled, because executions and audit entries still
refer to it.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from .models import Account, CopyGroup, CopyRule


def sync_config(db: Session, config: Any) -> None:
    """Mirror ``app.config.CopyConfig`` into the tables (the caller commits)."""
    for account in config.accounts.values():
        db.merge(
            Account(
                id=account.account_id,
                platform=account.platform,
                session=account.session_id,
                broker_account=account.broker_account,
                size=account.size,
                enabled=True,
            )
        )
    if config.accounts:
        db.execute(update(Account).where(Account.id.not_in(list(config.accounts))).values(enabled=False))
    db.flush()
    for group in config.groups:
        db.merge(CopyGroup(id=group.group_id, leader_account_id=group.leader, enabled=group.enabled))
        db.flush()
        existing = {
            r.follower_account_id: r for r in db.scalars(select(CopyRule).where(CopyRule.group_id == group.group_id))
        }
        listed = set()
        for follower in group.followers:
            listed.add(follower.account_id)
            row = existing.get(follower.account_id) or CopyRule(
                group_id=group.group_id, follower_account_id=follower.account_id
            )
            rule = follower.rule
            row.mode = rule.mode.value
            row.quantity = rule.quantity
            row.multiplier = rule.multiplier
            row.max_quantity = rule.max_quantity
            row.min_quantity = rule.min_quantity
            row.inverse = rule.inverse
            row.symbol_map = dict(rule.symbol_map)
            row.enabled = follower.enabled
            db.add(row)
        for account_id, row in existing.items():
            if account_id not in listed:
                row.enabled = False
    db.flush()

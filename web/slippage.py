"""Slippage in the web worker's live order log: each follower fill row gets its slippage
against the leader's fill and the reference price as the rows arrive (``core.slippage``).

A follower fill often arrives before the leader's fill of the same order (another partition).
Its row then says unknown (``None``) and is completed in place when the leader's fill arrives:
the API and every snapshot after that show the figure; a row already pushed over Socket.IO is
not pushed again (the dashboard shows it on its next snapshot). Memory is bounded: the oldest
copies and leader orders are forgotten first.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

from ..core.config import CopyConfig
from ..core.records import CORRECTION_KINDS, Execution
from ..core.slippage import (
    FILL_KINDS,
    CopySlippage,
    FillSlippage,
    average_price,
    fill_slippage,
    key_splits,
    leader_fill_key,
    leader_order_key,
)

__all__ = ["LiveSlippage"]

MAX_REMEMBERED = 5000


@dataclass(slots=True)
class _Copy:
    account_id: str
    key: str | None = None  # the leader order it copies (``leader:order``)
    reference: Decimal | None = None
    rows: list[dict[str, Any]] = field(default_factory=list)  # its fill rows in the order log
    # A fill's latest bust or correction: fill execution id → (quantity, price) now.
    fixes: dict[str, tuple[int, Decimal | None]] = field(default_factory=dict)

    def effective(self, row: dict[str, Any]) -> tuple[int, Decimal | None]:
        return self.fixes.get(row["execution_id"], (row["quantity"], row["price"]))


class LiveSlippage:
    def __init__(self, capacity: int = MAX_REMEMBERED) -> None:
        self.capacity = capacity
        self.copies: OrderedDict[str, _Copy] = OrderedDict()
        self.leader_fills: OrderedDict[str, list[tuple[int, Decimal | None]]] = OrderedDict()
        # leader order key → client ids of the remembered copies of it: a leader fill completes
        # its copies without walking every remembered copy (5,000 at 1,000 followers, #16).
        self.copies_of: dict[str, set[str]] = {}

    def annotate(self, ex: Execution, row: dict[str, Any]) -> None:
        """Add the slippage columns to a follower fill ``row``; a leader fill completes the
        rows of the copies that waited for it."""
        if ex.is_leader:
            if ex.kind in FILL_KINDS and ex.broker_order_id:
                key = leader_fill_key(ex.account_id, ex.broker_order_id)
                self._remember(self.leader_fills, key, []).append((ex.quantity, ex.price))
                for client_order_id in self.copies_of.get(key, ()):
                    self._measure(self.copies[client_order_id])
            return
        if not ex.client_order_id:
            return
        copy = self._remember_copy(ex.client_order_id, ex.account_id)
        if copy.key is None:
            copy.key = leader_order_key(ex.signal_id)
            if copy.key is not None:
                self.copies_of.setdefault(copy.key, set()).add(ex.client_order_id)
        copy.reference = copy.reference if copy.reference is not None else ex.reference_price
        if ex.kind in FILL_KINDS:
            copy.rows.append(row)
        elif ex.kind in CORRECTION_KINDS and ex.corrects:
            copy.fixes[ex.corrects] = (ex.quantity, ex.price)
        self._measure(copy)

    def _remember_copy(self, client_order_id: str, account_id: str) -> _Copy:
        copy = self.copies.get(client_order_id)
        if copy is None:
            copy = self.copies[client_order_id] = _Copy(account_id)
            while len(self.copies) > self.capacity:
                forgotten_id, forgotten = self.copies.popitem(last=False)
                waiting = self.copies_of.get(forgotten.key or "")
                if waiting is not None:
                    waiting.discard(forgotten_id)
                    if not waiting:
                        del self.copies_of[forgotten.key or ""]
        return copy

    def _remember(self, store: OrderedDict[str, Any], key: str, new: Any) -> Any:
        if key not in store:
            store[key] = new
            while len(store) > self.capacity:
                store.popitem(last=False)
        return store[key]

    def _leader_price(self, copy: _Copy) -> Decimal | None:
        return average_price(self.leader_fills.get(copy.key, ())) if copy.key else None

    def _measure(self, copy: _Copy) -> None:
        leader = self._leader_price(copy)
        for row in copy.rows:
            row.update(_fill(copy, row, leader).columns())

    def copies_between(self, config: CopyConfig, start: date | None, end: date | None) -> list[CopySlippage]:
        """Every remembered copy with fills in the range, for the live slippage report."""
        groups: dict[tuple[str, str], str] = {}
        for group in config.groups:
            for follower in group.followers:
                groups.setdefault((group.leader, follower.account_id), group.group_id)
        out = []
        for cid, copy in self.copies.items():
            rows = [r for r in copy.rows if _in_range(r.get("occurred_at"), start, end) and copy.effective(r)[0] > 0]
            if not rows:
                continue
            leader = self._leader_price(copy)
            fills: list[tuple[int, FillSlippage]] = [(copy.effective(r)[0], _fill(copy, r, leader)) for r in rows]
            group_id = next(
                (groups[(a, copy.account_id)] for a, _ in key_splits(copy.key or "") if (a, copy.account_id) in groups),
                None,
            )
            out.append(CopySlippage.of_fills(cid, copy.account_id, group_id, fills))
        return out


def _fill(copy: _Copy, row: dict[str, Any], leader: Decimal | None) -> FillSlippage:
    """One fill row measured at its effective quantity and price (a busted fill: nothing)."""
    quantity, price = copy.effective(row)
    if quantity <= 0 or price is None:
        return FillSlippage(None, None, None)
    return fill_slippage(row["side"], price, quantity, row["symbol"], leader, copy.reference)


def _in_range(when: Any, start: date | None, end: date | None) -> bool:
    day = when.date() if hasattr(when, "date") else date.fromisoformat(str(when)[:10])
    return (start is None or day >= start) and (end is None or day < end)

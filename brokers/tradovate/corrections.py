"""Which fill a Tradovate bust or correction is about, and what it changes.

Tradovate names busts and corrections only in the ``execType`` enum (``TradeCancel``,
``TradeCorrect``); how they reach a client is not documented. Three answers are plausible and
the adapter is safe under each (a test per answer):

* an executionReport with that execType whose ``execRefId`` names the fill, or names the Trade
  execution report that reported the fill (FIX ExecRefID semantics);
* an ``Updated`` fill entity (the Fill has an ``active`` flag; a correction changes qty/price);
* both of them, in either order.

The ledger keeps each fill's last known quantity, price and ``active`` flag, so whichever
message comes first produces the correction and the second finds nothing left to change.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

Json = dict[str, Any]


@dataclass(slots=True)
class FillState:
    order_id: int
    quantity: int
    price: Decimal
    active: bool = True


@dataclass(frozen=True, slots=True)
class Change:
    """What a bust/correction did to one fill: the values before and after."""

    fill_id: int
    order_id: int
    busted: bool
    quantity: int
    price: Decimal | None
    original_quantity: int
    original_price: Decimal

    @property
    def key(self) -> str:
        """The same id whichever message told us: a bust, or the values it corrected to."""
        after = "bust" if self.busted else f"{self.quantity}@{self.price}"
        return f"{self.fill_id}:{self.original_quantity}@{self.original_price}>{after}"


class FillLedger:
    def __init__(self) -> None:
        self.fills: dict[int, FillState] = {}
        self._trades: dict[int, tuple[int, int, Decimal]] = {}  # Trade report id → (order, qty, px)

    def record(self, fill_id: int, order_id: int, quantity: int, price: Decimal, active: bool) -> None:
        self.fills[fill_id] = FillState(order_id, quantity, price, active)

    def forget_fill(self, fill_id: int) -> None:
        """A fill of a forgotten order leaves the ledger."""
        self.fills.pop(fill_id, None)

    def forget_trade_report(self, report_id: int) -> None:
        self._trades.pop(report_id, None)

    def note_trade_report(self, e: Json) -> None:
        if e.get("lastQty") is not None and e.get("lastPx") is not None:
            self._trades[int(e["id"])] = (int(e["orderId"]), int(e["lastQty"]), Decimal(str(e["lastPx"])))

    def resolve(self, e: Json) -> int | None:
        """The fill a TradeCancel/TradeCorrect report refers to, or None when it cannot tell."""
        ref = e.get("execRefId")
        try:
            ref_id = int(ref) if ref is not None else None
        except (TypeError, ValueError):
            ref_id = None
        order_id = int(e["orderId"])
        if ref_id is not None and ref_id in self.fills and self.fills[ref_id].order_id == order_id:
            return ref_id
        if ref_id is not None and ref_id in self._trades:
            trade_order, qty, price = self._trades[ref_id]
            return self._only(order_id, lambda f: f.order_id == trade_order and (f.quantity, f.price) == (qty, price))
        if e.get("execType") == "TradeCancel" and e.get("lastQty") is not None and e.get("lastPx") is not None:
            qty, price = int(e["lastQty"]), Decimal(str(e["lastPx"]))
            return self._only(order_id, lambda f: (f.quantity, f.price) == (qty, price))
        return None

    def _only(self, order_id: int, match: Any) -> int | None:
        """The one active fill of the order that matches; None when zero or several do."""
        found = [i for i, f in self.fills.items() if f.order_id == order_id and f.active and match(f)]
        return found[0] if len(found) == 1 else None

    def change(
        self, fill_id: int, *, busted: bool, quantity: int | None = None, price: Decimal | None = None
    ) -> Change | None:
        """Apply a bust or correction once; None when the fill already shows it (or is busted)."""
        state = self.fills.get(fill_id)
        if state is None or not state.active:
            return None
        new_qty = 0 if busted else (state.quantity if quantity is None else quantity)
        new_price = None if busted else (state.price if price is None else price)
        if not busted and (new_qty, new_price) == (state.quantity, state.price):
            return None
        change = Change(fill_id, state.order_id, busted, new_qty, new_price, state.quantity, state.price)
        if busted:
            state.active = False
        else:
            state.quantity, state.price = new_qty, new_price  # type: ignore[assignment]  # not busted: a price
        return change

"""What one FIX session has sent and seen: ClOrdID chains, order states, fills once.

FIX names every request with a fresh ClOrdID (a cancel or replace names the current one in
OrigClOrdID), while the domain keeps one client order id per order. The book maps each ClOrdID
and OrderID back to our id. It is kept in a write-ahead journal next to the FileStore: a line is
flushed and fsynced *before* its request is handed to the engine, so after a restart a report
resent for an old order is still traced to our id, and an id with no line was never sent by this
session (what :meth:`FixAdapter.lookup` answers when the counterparty cannot be asked).
Fills are counted once per ExecID (a resend repeats them with PossDupFlag=Y).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field, replace
from decimal import Decimal
from pathlib import Path

from ..instruments import instrument_for
from ..model import FillEvent, OrderEvent, OrderType, PositionEvent, Side, TimeInForce
from ..positions import apply_fill, undo_fill
from .messages import OrderTerms

JOURNAL = "orders.jsonl"


@dataclass(slots=True)
class TrackedOrder:
    client_order_id: str
    account_id: str
    terms: OrderTerms
    current_cl_ord_id: str
    order_id: str = ""  # the first order placed under this id (what lookup answers)
    order_ids: list[str] = field(default_factory=list)  # every order the counterparty holds under it
    requests: int = 0  # cancel/replace requests sent (numbers their ClOrdIDs)
    last: OrderEvent | None = None
    done: bool = False  # reached a final state (journaled, so a restart does not re-ask)


@dataclass
class SessionBook:
    journal_path: Path | None = None
    orders: dict[str, TrackedOrder] = field(default_factory=dict)  # our client id → order
    cl_ord_ids: dict[str, str] = field(default_factory=dict)  # any ClOrdID we sent → our client id
    order_ids: dict[str, str] = field(default_factory=dict)  # OrderID → our client id
    states: dict[str, OrderEvent] = field(default_factory=dict)  # OrderID → last state reported
    fills: dict[str, FillEvent] = field(default_factory=dict)  # ExecID → fill (corrections)
    positions: dict[tuple[str, str], int] = field(default_factory=dict)  # (account, symbol) → net
    averages: dict[tuple[str, str], Decimal | None] = field(default_factory=dict)  # … → average price

    # -- journal ------------------------------------------------------------------------------
    def load(self) -> None:
        """Read the journal a previous run left (a torn last line is skipped)."""
        if self.journal_path is None or not self.journal_path.exists():
            return
        for line in self.journal_path.read_text().splitlines():
            try:
                entry = json.loads(line)
                self._apply(entry)
            except (ValueError, KeyError, TypeError):
                continue

    def _write(self, entry: dict[str, object]) -> None:
        if self.journal_path is None:
            return
        self.journal_path.parent.mkdir(parents=True, exist_ok=True)
        with self.journal_path.open("a") as out:
            out.write(json.dumps(entry) + "\n")
            out.flush()
            os.fsync(out.fileno())

    def _apply(self, entry: dict[str, object]) -> None:
        client, cl = str(entry["client"]), str(entry["cl"])
        if entry.get("kind") == "new":
            terms = OrderTerms(
                account=str(entry["account"]),
                symbol=str(entry["symbol"]),
                side=Side(str(entry["side"])),
                quantity=int(str(entry["quantity"])),
                order_type=OrderType(str(entry["type"])),
                limit_price=Decimal(str(entry["limit"])) if entry.get("limit") else None,
                stop_price=Decimal(str(entry["stop"])) if entry.get("stop") else None,
                time_in_force=TimeInForce(str(entry.get("tif", "day"))),
            )
            self.orders.setdefault(client, TrackedOrder(client, str(entry["account_id"]), terms, cl))
        elif entry.get("kind") == "final":
            if client in self.orders:
                self.orders[client].done = True
            return
        else:
            order = self.orders.get(client)
            if order is not None:
                order.requests += 1
        self.cl_ord_ids[cl] = client

    def record_new(self, account_id: str, client_id: str, cl_ord_id: str, terms: OrderTerms) -> None:
        self._record(
            {
                "kind": "new",
                "client": client_id,
                "cl": cl_ord_id,
                "account_id": account_id,
                "account": terms.account,
                "symbol": terms.symbol,
                "side": terms.side.value,
                "quantity": terms.quantity,
                "type": terms.order_type.value,
                "limit": str(terms.limit_price) if terms.limit_price is not None else None,
                "stop": str(terms.stop_price) if terms.stop_price is not None else None,
                "tif": terms.time_in_force.value,
            }
        )

    def next_request_id(self, order: TrackedOrder, kind: str) -> str:
        """A fresh ClOrdID for a cancel (``C``) or replace (``R``) of ``order``, journaled."""
        cl = f"{order.client_order_id}-{kind}{order.requests + 1}"
        self._record({"kind": kind, "client": order.client_order_id, "cl": cl})
        return cl

    def _record(self, entry: dict[str, object]) -> None:
        self._write(entry)
        self._apply(entry)

    def sent(self, client_id: str) -> bool:
        """Did this session (this run or one before) ever hand an order with this id to the engine?"""
        return client_id in self.orders

    # -- reports ------------------------------------------------------------------------------
    def client_of(self, *ids: str) -> str | None:
        for cl in ids:
            if cl and cl in self.cl_ord_ids:
                return self.cl_ord_ids[cl]
        return None

    def changed(self, client_id: str | None, event: OrderEvent) -> bool:
        """Remember ``event`` as its order's state; True when that state is new."""
        if client_id is None or client_id not in self.orders:
            return True
        order = self.orders[client_id]
        oid = event.broker_order_id
        if oid and oid not in order.order_ids:
            order.order_id = order.order_id or oid
            order.order_ids.append(oid)
            self.order_ids[oid] = client_id
        last = self.states.get(oid)
        self.states[oid] = event
        if oid == order.order_id or not oid:
            order.last = event
        finals = [self.states.get(i) for i in order.order_ids]
        if finals and all(f is not None and f.status.is_final for f in finals) and not order.done:
            order.done = True
            self._write({"kind": "final", "client": client_id, "cl": order.current_cl_ord_id})
        key = (event.status, event.filled_quantity, event.quantity, event.limit_price, event.stop_price)
        return last is None or key != (
            last.status,
            last.filled_quantity,
            last.quantity,
            last.limit_price,
            last.stop_price,
        )

    def new_fill(self, fill: FillEvent) -> bool:
        """Count ``fill`` once (by ExecID) into the session's position; False if seen before."""
        if fill.fill_id in self.fills:
            return False
        self.fills[fill.fill_id] = fill
        self._move(fill.account_id, fill.symbol, fill.side.sign * fill.quantity, fill.price, undo=False)
        return True

    def correct(self, original: FillEvent, quantity: int, price: Decimal | None, busted: bool) -> None:
        """Take the original execution out of the position and put the corrected one in."""
        sign = original.side.sign
        self._move(original.account_id, original.symbol, sign * original.quantity, original.price, undo=True)
        if not busted and quantity and price is not None:
            self._move(original.account_id, original.symbol, sign * quantity, price, undo=False)
        self.fills[original.fill_id] = replace(
            original, quantity=0 if busted else quantity, price=price or original.price
        )

    def _move(self, account: str, symbol: str, signed: int, price: Decimal, *, undo: bool) -> None:
        key = (account, symbol)
        try:
            point_value = instrument_for(symbol).point_value
        except (KeyError, ValueError):
            point_value = Decimal(1)  # an instrument we do not know: P&L is not ours to report
        step = undo_fill if undo else apply_fill
        net, average, _ = step(self.positions.get(key, 0), self.averages.get(key), signed, price, point_value)
        self.positions[key], self.averages[key] = net, average

    def position(self, account: str, symbol: str) -> PositionEvent:
        key = (account, symbol)
        return PositionEvent(
            account_id=account,
            symbol=symbol,
            net_quantity=self.positions.get(key, 0),
            average_price=self.averages.get(key),
        )

    def working(self, account_id: str, symbol: str | None = None) -> list[TrackedOrder]:
        return [
            o
            for o in self.orders.values()
            if o.account_id == account_id and (symbol is None or o.terms.symbol == symbol) and not o.done
        ]

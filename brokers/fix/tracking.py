"""What one FIX session has sent and seen: ClOrdID chains, order states, fills once.

FIX names every request with a fresh ClOrdID (a cancel or replace names the current one in
OrigClOrdID), while the domain keeps one client order id per order. The book maps each ClOrdID
and OrderID back to our id. It is kept in a write-ahead journal next to the FileStore
(``journal.py``: why, and how it is compacted), so after a restart a report resent for an old
order is still traced to our id, and an id with no line was never sent by this session (what
:meth:`FixAdapter.lookup` answers when the counterparty cannot be asked).
Fills are counted once per ExecID (a resend repeats them with PossDupFlag=Y).

Finished orders do not stay forever (#18, :mod:`..finished`): beyond the latest ``keep`` an
order leaves the maps (its states, ClOrdIDs, OrderIDs) and stays as a fingerprint, the
:class:`TrackedOrder` alone in :attr:`SessionBook.forgotten`: its ClOrdIDs and OrderIDs (a late
report is still traced to it, lookup and the resync can still ask about it), the quantity
reported filled per OrderID, and its executions (a late bust or correction still finds the
fill it corrects). A report of a forgotten order that tells nothing new (an ExecID it holds, a
trade whose CumQty was reported, the final state again) is old news; any other brings it back
in full first, so fills are still counted by ExecID. A fingerprint goes only when the
counterparty answers an OrderStatusRequest for its order with "unknown order" (the resync after
logon asks, oldest first: ``adapter.py``): from then on no report can name it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from decimal import Decimal
from pathlib import Path

from ..finished import KEEP_IN_FULL, FinishedOrders
from ..instruments import instrument_for
from ..model import FillEvent, OrderEvent, PositionEvent
from ..positions import apply_fill, undo_fill
from .journal import JOURNAL, OrderJournal, quantities, strings, terms_entry, terms_of
from .messages import OrderTerms

__all__ = ["JOURNAL", "SessionBook", "TrackedOrder"]


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
    cl_ord_ids: list[str] = field(default_factory=list)  # every ClOrdID we sent for it
    fill_ids: list[str] = field(default_factory=list)  # its keys in SessionBook.fills
    filled_at_end: dict[str, int] = field(default_factory=dict)  # OrderID → CumQty when it ended
    settled: bool = False  # counted among the finished orders (FinishedOrders)
    kept_fills: tuple[tuple[str, FillEvent], ...] = ()  # once forgotten: its executions


class SessionBook:
    def __init__(self, journal_path: Path | None = None, keep: int = KEEP_IN_FULL) -> None:
        self.journal = OrderJournal(journal_path)
        self.orders: dict[str, TrackedOrder] = {}  # our client id → order (live and recent)
        self.cl_ord_ids: dict[str, str] = {}  # any ClOrdID we sent → our client id
        self.order_ids: dict[str, str] = {}  # OrderID → our client id
        self.states: dict[str, OrderEvent] = {}  # OrderID → last state reported
        self.fills: dict[str, FillEvent] = {}  # ExecID → fill (corrections)
        self.positions: dict[tuple[str, str], int] = {}  # (account, symbol) → net
        self.averages: dict[tuple[str, str], Decimal | None] = {}  # … → average price
        self.forgotten: dict[str, TrackedOrder] = {}  # client id → fingerprint, oldest first
        self.forgotten_ids: dict[str, str] = {}  # OrderID of a forgotten order → client id
        self.finished = FinishedOrders(self._reported, keep)

    # -- journal ------------------------------------------------------------------------------
    def load(self) -> None:
        """Read the journal a previous run left (a torn last line is skipped); finished orders
        beyond ``keep`` shrink to fingerprints again, in the journal's order."""
        for entry in self.journal.read():
            try:
                self._apply(entry)
            except (ValueError, KeyError, TypeError):
                continue
        for client in [client for client, order in self.orders.items() if order.done]:
            self.settle(client)

    def _write(self, entry: dict[str, object]) -> None:
        self.journal.append(entry)

    def _apply(self, entry: dict[str, object]) -> None:
        client, cl = str(entry["client"]), str(entry["cl"])
        if entry.get("kind") == "new":
            self._apply_new(client, cl, entry)
        elif entry.get("kind") == "final":
            order = self.orders.get(client)
            if order is not None:
                order.done = True
                order.filled_at_end = quantities(entry.get("filled"))
            return
        else:
            order = self.orders.get(client)
            if order is not None:
                order.requests += 1
                order.cl_ord_ids.append(cl)
        self.cl_ord_ids[cl] = client

    def _apply_new(self, client: str, cl: str, entry: dict[str, object]) -> None:
        """A "new" line: an order sent, or (compacted) all an order's journal in one line."""
        order = self.orders.get(client) or self.revive(client)
        if order is not None:  # a repeated client id: a second order under it (never refused)
            order.done = order.settled = False
            self.finished.reopened(client)
            if cl not in order.cl_ord_ids:
                order.cl_ord_ids.append(cl)
            return
        terms = terms_of(entry)
        cls = strings(entry.get("cls")) or [cl]
        ids = strings(entry.get("ids"))
        order = TrackedOrder(
            client,
            str(entry["account_id"]),
            terms,
            str(entry.get("current") or cl),
            order_id=ids[0] if ids else "",
            order_ids=ids,
            requests=int(str(entry.get("requests", 0))),
            done=bool(entry.get("done")),
            cl_ord_ids=cls,
            filled_at_end=quantities(entry.get("filled")),
        )
        self.orders[client] = order
        for c in cls:
            self.cl_ord_ids[c] = client
        for oid in ids:
            self.order_ids[oid] = client

    def record_new(self, account_id: str, client_id: str, cl_ord_id: str, terms: OrderTerms) -> None:
        self._record(
            {
                "kind": "new",
                "client": client_id,
                "cl": cl_ord_id,
                "account_id": account_id,
                **terms_entry(terms),
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
        self._compact_if_due()

    def _compact_if_due(self) -> None:
        if self.journal.due(len(self.orders) + len(self.forgotten)):
            self.journal.rewrite(self._compacted())

    def _compacted(self) -> Iterator[dict[str, object]]:
        """One line per order the book remembers, oldest finished first (``load`` shrinks the
        finished ones in this order again)."""
        for order in (*self.forgotten.values(), *self.orders.values()):
            yield {
                "kind": "new",
                "client": order.client_order_id,
                "cl": order.client_order_id,
                "account_id": order.account_id,
                **terms_entry(order.terms),
                "requests": order.requests,
                "cls": order.cl_ord_ids,
                "current": order.current_cl_ord_id,
                "done": order.done,
                "ids": order.order_ids,
                "filled": self.reported_by_order(order),
            }

    def sent(self, client_id: str) -> bool:
        """Did this session (this run or one before) ever hand an order with this id to the engine?"""
        return client_id in self.orders or client_id in self.forgotten

    def remembered(self, client_id: str) -> TrackedOrder | None:
        """The order sent under ``client_id``, in full or as a fingerprint."""
        return self.orders.get(client_id) or self.forgotten.get(client_id)

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
        # an OrderID that ended before its order was forgotten (and revived) has no state here
        finals = {i: self.states.get(i) for i in order.order_ids}
        ended = [
            (f is not None and f.status.is_final) or (f is None and i in order.filled_at_end) for i, f in finals.items()
        ]
        if ended and all(ended) and not order.done:
            order.done = True
            order.filled_at_end |= {i: f.filled_quantity for i, f in finals.items() if f is not None}
            self._write(
                {
                    "kind": "final",
                    "client": client_id,
                    "cl": order.current_cl_ord_id,
                    "filled": order.filled_at_end,
                }
            )
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
        order = self.orders.get(fill.client_order_id or "")
        if order is not None:
            order.fill_ids.append(fill.fill_id)
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

    def record_correction(self, client_id: str | None, correction_id: str, original: FillEvent) -> None:
        """Keep ``correction_id`` (a resend of the correction is old news) with its order."""
        self.fills[correction_id] = original
        order = self.orders.get(client_id or "")
        if order is not None:
            order.fill_ids.append(correction_id)

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

    # -- finished orders, forgotten (#18) ------------------------------------------------------
    def settle(self, client_id: str | None) -> None:
        """Call once a report is handled: an order that ended joins the finished orders, and
        the oldest beyond ``keep`` shrink to fingerprints."""
        order = self.orders.get(client_id) if client_id else None
        if order is None or not order.done or order.settled:
            return
        order.settled = True
        for old in self.finished.finished(order.client_order_id):
            self._forget(old)

    def _fills_of(self, order: TrackedOrder) -> Iterator[tuple[str, FillEvent]]:
        if order.kept_fills:
            yield from order.kept_fills
        else:
            yield from ((key, self.fills[key]) for key in order.fill_ids if key in self.fills)

    def reported_by_order(self, order: TrackedOrder) -> dict[str, int]:
        """OrderID → quantity reported filled: the executions counted (a correction's key names
        the execution it corrected, so it is skipped), at least the CumQty it ended with."""
        counted = dict(order.filled_at_end)
        executed: dict[str, int] = {}
        for key, fill in self._fills_of(order):
            if key == fill.fill_id:
                executed[fill.broker_order_id] = executed.get(fill.broker_order_id, 0) + fill.quantity
        for oid, quantity in executed.items():
            counted[oid] = max(counted.get(oid, 0), quantity)
        return counted

    def _reported(self, client_id: str) -> int:
        order = self.remembered(client_id)
        return sum(self.reported_by_order(order).values()) if order is not None else 0

    def _forget(self, client_id: str) -> None:
        """Shrink a finished order to its fingerprint: out of every map, kept in ``forgotten``."""
        order = self.orders.pop(client_id, None)
        if order is None:
            return
        order.filled_at_end = self.reported_by_order(order)
        for cl in order.cl_ord_ids:
            if self.cl_ord_ids.get(cl) == client_id:
                del self.cl_ord_ids[cl]
        for oid in order.order_ids:
            if self.order_ids.get(oid) == client_id:
                del self.order_ids[oid]
            self.states.pop(oid, None)
            self.forgotten_ids[oid] = client_id
        order.kept_fills = tuple((key, self.fills.pop(key)) for key in order.fill_ids if key in self.fills)
        order.fill_ids = []
        order.last = None
        self.forgotten[client_id] = order

    def revive(self, client_id: str) -> TrackedOrder | None:
        """A forgotten order has news: back in full (its executions too, so fills are still
        counted by ExecID). It joins the finished orders again once the report is handled."""
        order = self.forgotten.pop(client_id, None)
        if order is None:
            return None
        self.finished.reopened(client_id)
        for oid in order.order_ids:
            if self.forgotten_ids.get(oid) == client_id:
                del self.forgotten_ids[oid]
            self.order_ids[oid] = client_id
        for cl in order.cl_ord_ids:
            self.cl_ord_ids[cl] = client_id
        for key, fill in order.kept_fills:
            self.fills[key] = fill
            order.fill_ids.append(key)
        order.kept_fills = ()
        order.settled = False
        self.orders[client_id] = order
        return order

    def forgotten_client(self, order_id: str, *cl_ord_ids: str) -> str | None:
        """The forgotten order a report names (by OrderID, else by one of our ClOrdIDs)."""
        if order_id in self.forgotten_ids:
            return self.forgotten_ids[order_id]
        for cl in cl_ord_ids:
            for client in (cl, cl.rpartition("-")[0]):
                order = self.forgotten.get(client)
                if cl and order is not None and cl in order.cl_ord_ids:
                    return client
        return None

    def old_news(self, client_id: str, exec_id: str, order_id: str, cumulative: int, *, correction: bool) -> bool:
        """Does a report of a forgotten order only repeat what was reported? An execution it
        holds, or any other report within the quantity reported filled (its CumQty counts
        every earlier trade; the order had ended, so an earlier state is history). A bust or
        correction it does not hold is news, and so is a trade beyond that quantity."""
        order = self.forgotten[client_id]
        if any(key == exec_id for key, _ in order.kept_fills):
            return True
        return not correction and cumulative <= self.reported_by_order(order).get(order_id, 0)

    def forget_for_good(self, client_ids: list[str]) -> None:
        """Fingerprints of orders the counterparty no longer knows: gone, from the journal too."""
        for client_id in client_ids:
            order = self.forgotten.pop(client_id, None)
            for oid in order.order_ids if order is not None else ():
                if self.forgotten_ids.get(oid) == client_id:
                    del self.forgotten_ids[oid]
        self._compact_if_due()

    def forgotten_of(self, account_id: str) -> list[TrackedOrder]:
        """The account's forgotten orders, oldest finished first."""
        return [order for order in self.forgotten.values() if order.account_id == account_id]

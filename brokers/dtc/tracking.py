"""What one DTC session has seen: id pairs, the last state of each order, fills by execution id.

Why keep anything: DTC's fill history (HISTORICAL_ORDER_FILL_RESPONSE) names the ServerOrderID
but not the ClientOrderID, and OPEN_ORDERS_REQUEST never returns filled or canceled orders
(trading-messages page). So the ServerOrderID ↔ ClientOrderID pairs read from ORDER_UPDATEs are
what lets a fill from the history be traced to our order. The broker is still asked every time
(lookup, resync); this only translates its answers, and counts each execution once.

Finished orders do not stay forever (#18): beyond the latest ``keep`` an order's state, fill
ids and command go, and a fingerprint stays (:mod:`..finished`: the quantity reported, and the
ServerOrderID → ClientOrderID pair, which lookup still needs while the fill history lists the
order). A history fill of a forgotten order within that quantity is old news. Both go when a
complete resync's fill history no longer lists the order (the server's window moved on).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

from ..finished import KEEP_IN_FULL, FinishedOrders
from ..model import BrokerEvent, FillEvent, OrderEvent, OrderStatus, PlaceOrder, PositionEvent
from . import enums as e
from . import parsing
from .codec import Message

__all__ = ["SessionBook"]

_OWN_ANSWERS = (e.OrderUpdateReason.ORDER_CANCEL_REJECTED, e.OrderUpdateReason.ORDER_CANCEL_REPLACE_REJECTED)
_FILL_REASONS = (e.OrderUpdateReason.ORDER_FILLED, e.OrderUpdateReason.ORDER_FILLED_PARTIALLY)


def _state(event: OrderEvent) -> tuple[object, ...]:
    return (event.status, event.filled_quantity, event.quantity, event.limit_price, event.stop_price)


class SessionBook:
    def __init__(self, accounts: dict[str, str], keep: int = KEEP_IN_FULL) -> None:
        self.ours = {dtc: ours for ours, dtc in accounts.items()}  # TradeAccount → our account id
        self.client_ids: dict[str, str] = {}  # ServerOrderID → ClientOrderID
        self.server_ids: dict[tuple[str, str], list[str]] = {}  # (account, ClientOrderID) → ServerOrderIDs
        self.orders: dict[str, OrderEvent] = {}  # ServerOrderID → the last state reported
        self.fills_seen: set[tuple[str, str]] = set()  # (account, execution id)
        self.positions: dict[tuple[str, str], int] = {}  # (account, symbol) → net quantity last reported
        self.placed: dict[tuple[str, str], PlaceOrder] = {}  # commands of this session (fill in bare rejects)
        self._fills_of: dict[str, list[tuple[str, str]]] = {}  # ServerOrderID → its fills_seen keys
        self._filled: dict[str, int] = {}  # ServerOrderID → quantity reported
        self.finished = FinishedOrders(lambda server_id: self._filled.get(server_id, 0), keep)

    def _retire(self, server_id: str) -> None:
        """``server_id`` ended: the oldest finished orders beyond ``keep`` leave the maps (their
        ServerOrderID → ClientOrderID pair stays with the fingerprint, for lookup)."""
        for old in self.finished.finished(server_id):
            last = self.orders.pop(old, None)
            self._filled.pop(old, None)
            self.fills_seen.difference_update(self._fills_of.pop(old, ()))
            client_id = self.client_ids.get(old)
            if last is None or client_id is None:
                continue
            key = (last.account_id, client_id)
            others = [s for s in self.server_ids.get(key, ()) if s != old]
            if others:
                self.server_ids[key] = others
            else:
                self.server_ids.pop(key, None)
                self.placed.pop(key, None)

    def forget_for_good(self, server_ids: list[str]) -> None:
        """Fingerprints a complete fill history no longer lists: their pairs go too."""
        for server_id in server_ids:
            self.client_ids.pop(server_id, None)

    # -- ids ----------------------------------------------------------------------------------
    def account_of(self, msg: Message) -> str | None:
        return self.ours.get(msg.as_text("TradeAccount"))

    def pair(self, account: str, client_id: str, server_id: str) -> None:
        if not client_id or not server_id:
            return
        self.client_ids[server_id] = client_id
        if self.finished.forgotten(server_id) is not None:
            return  # an update of a forgotten order: its pair is kept with the fingerprint
        known = self.server_ids.setdefault((account, client_id), [])
        if server_id not in known:
            known.append(server_id)

    def known_server_ids(self, account: str, client_id: str) -> list[str]:
        return list(self.server_ids.get((account, client_id), ()))

    # -- live updates -------------------------------------------------------------------------
    def order_update(self, msg: Message) -> tuple[list[BrokerEvent], list[Exception]]:
        """Events for one unsolicited ORDER_UPDATE (a fill once per execution id, a state change
        once), and the values that could not be read. The fill and the order state are read
        apart, so an unreadable order state never costs the fill it came with."""
        client_id, server_id = msg.as_text("ClientOrderID"), msg.as_text("ServerOrderID")
        account = self.account_of(msg) or self._placed_account(client_id)
        if account is None:
            return [], []  # another account of this login, or a bare answer to a request of ours
        self.pair(account, client_id, server_id)
        self.pair(account, client_id, msg.as_text("PreviousServerOrderID"))
        if msg.as_int("OrderUpdateReason") in _OWN_ANSWERS:
            return [], []  # the answer to our cancel/replace: the request raises it, nothing changed
        events: list[BrokerEvent] = []
        problems: list[Exception] = []
        # The order's state first, then its fill (the kernel's order too): a watcher that meets
        # an order first in a fill update still hears of the order before the execution.
        try:
            order = self._order_event(msg, account, client_id, server_id)
            if order is not None and self.changed(order):
                events.append(order)
        except parsing.BAD_VALUES as exc:
            problems.append(exc)
        try:
            fill = self._fill(msg, account, server_id)
            if fill is not None and self.new_fill(account, fill):
                events.append(fill)
        except parsing.BAD_VALUES as exc:
            problems.append(exc)
        return events, problems

    @staticmethod
    def _fill(msg: Message, account: str, server_id: str) -> FillEvent | None:
        fill = parsing.fill_event(msg, account)
        if fill is None:
            if msg.as_int("OrderUpdateReason") in _FILL_REASONS and not msg.as_int("NoOrders"):
                raise parsing.WireValueError("a fill update without a fill price or quantity")
            return None
        if not fill.fill_id:  # no execution id: the cumulative quantity identifies the fill
            fill = replace(fill, fill_id=f"{server_id}:{fill.cumulative_quantity}")
        return fill

    def _placed_account(self, client_id: str) -> str | None:
        return next((account for account, cid in self.placed if cid == client_id), None)

    def _order_event(self, msg: Message, account: str, client_id: str, server_id: str) -> OrderEvent | None:
        refused = msg.as_int("OrderUpdateReason") == e.OrderUpdateReason.NEW_ORDER_REJECTED and not server_id
        command = self.placed.get((account, client_id))
        if refused and self.known_server_ids(account, client_id):
            return None  # a repeated ClientOrderID refused: the live order under it is unchanged
        if refused and command is None and not msg.as_int("BuySell"):
            return None  # a bare reject of a request that was no order of ours (an OCO leg): its requester hears it
        if refused and command is not None:  # a bare reject: the order's terms are our command's
            del self.placed[(account, client_id)]  # used up: a retry is a new place
            return OrderEvent(
                account_id=account,
                client_order_id=client_id,
                broker_order_id="",
                symbol=command.symbol,
                side=command.side,
                order_type=command.order_type,
                quantity=command.quantity,
                status=OrderStatus.REJECTED,
                limit_price=command.limit_price,
                stop_price=command.stop_price,
                reason=msg.as_text("InfoText") or "rejected",
            )
        return parsing.order_event(msg, account)

    def changed(self, event: OrderEvent) -> bool:
        """Remember ``event`` as its order's state; True when that state is new."""
        if not event.broker_order_id:
            return True
        server_id = event.broker_order_id
        forgotten = self.finished.forgotten(server_id)
        if forgotten is not None and event.status.is_final and event.filled_quantity <= forgotten:
            return False  # a forgotten order shown again as it ended
        if forgotten is not None:
            self._revive(server_id, forgotten)
        last = self.orders.get(server_id)
        self.orders[server_id] = event
        if event.status.is_final:
            self._retire(server_id)
        else:
            self.finished.reopened(server_id)
        return last is None or _state(last) != _state(event)

    def _revive(self, server_id: str, reported: int) -> None:
        self.finished.reopened(server_id)
        self._filled[server_id] = reported

    def new_fill(self, account: str, fill: FillEvent) -> bool:
        """True (and counted) when ``fill`` was never reported: by execution id, and for a
        forgotten order by its cumulative quantity against the quantity reported."""
        server_id = fill.broker_order_id
        forgotten = self.finished.forgotten(server_id)
        if forgotten is not None:
            if fill.cumulative_quantity <= forgotten:
                return False
            self._revive(server_id, forgotten)
        key = (account, fill.fill_id)
        if key in self.fills_seen:
            return False
        self.fills_seen.add(key)
        if server_id:
            self._fills_of.setdefault(server_id, []).append(key)
            self._filled[server_id] = self._filled.get(server_id, 0) + fill.quantity
            last = self.orders.get(server_id)
            if forgotten is not None and (last is None or last.status.is_final):
                self._retire(server_id)  # a late fill of an order that had ended
        return True

    def position_update(self, msg: Message) -> PositionEvent | None:
        account = self.account_of(msg)
        if account is None:
            return None
        event = parsing.position_event(msg, account)
        if event is not None:
            self.positions[(account, event.symbol)] = event.net_quantity
        return event

    # -- resync -------------------------------------------------------------------------------
    def history_fills(self, records: Iterable[FillEvent]) -> list[FillEvent]:
        """Fills read from the history, in time order, with each order's running cumulative and
        (where its quantity is known) leaves quantity: a history record knows only itself."""
        fills: list[FillEvent] = []
        cumulative: dict[str, int] = {}
        for fill in sorted(records, key=lambda f: f.timestamp):
            server_id = fill.broker_order_id
            cumulative[server_id] = cumulative.get(server_id, 0) + fill.quantity
            known = self.orders.get(server_id)
            leaves = max(0, known.quantity - cumulative[server_id]) if known is not None else 0
            fills.append(replace(fill, cumulative_quantity=cumulative[server_id], leaves_quantity=leaves))
        return fills

    def reconcile(
        self, account: str, open_orders: list[OrderEvent], fills: list[FillEvent], positions: list[PositionEvent]
    ) -> list[BrokerEvent]:
        """What changed while we were away, each change once: unseen fills, orders whose state
        moved (orders we knew as live and that are no longer open ended: filled when the history
        covers their quantity, else canceled), and positions that differ from the last report."""
        events: list[BrokerEvent] = [f for f in fills if self.new_fill(account, f)]
        filled: dict[str, int] = {}
        for fill in fills:
            filled[fill.broker_order_id] = filled.get(fill.broker_order_id, 0) + fill.quantity
        open_ids = {order.broker_order_id for order in open_orders}
        for order in open_orders:
            self.pair(account, order.client_order_id or "", order.broker_order_id)
            if self.changed(order):
                events.append(order)
        for server_id, last in list(self.orders.items()):
            if last.account_id != account or last.status.is_final or server_id in open_ids:
                continue
            done = filled.get(server_id, last.filled_quantity)
            status = OrderStatus.FILLED if done >= last.quantity else OrderStatus.CANCELLED
            ended = replace(last, status=status, filled_quantity=done, reason="ended while disconnected")
            self.changed(ended)
            events.append(ended)
        current = {p.symbol: p for p in positions}
        for position in positions:
            if self.positions.get((account, position.symbol)) != position.net_quantity:
                events.append(position)
            self.positions[(account, position.symbol)] = position.net_quantity
        for (owner, symbol), net in list(self.positions.items()):
            if owner == account and net and symbol not in current:
                self.positions[(owner, symbol)] = 0
                events.append(PositionEvent(account_id=account, symbol=symbol, net_quantity=0, average_price=None))
        return events

"""The adapter's picture of the user's Tradovate entities, and the events it derives.

Events are driven by execution reports (their ``execType`` says what happened: New,
Replaced, Canceled, Rejected, Expired, Trade), fills (one FillEvent per fill id, so a
duplicated push never doubles a fill) and positions. The ``clOrdId → orderId`` map comes from
``command`` entities, which carry the clOrdId, so it is rebuilt from the sync snapshot after a
reconnect and also covers orders another client placed on the same account (the leader case).

Finished orders do not stay forever (#18). Once an order is final and all its fills were
reported, it may leave every map here (the view, its ids, its fills, reports and commands)
beyond the latest ``keep`` such orders, leaving a fingerprint (:mod:`..finished`). Every entity
of a forgotten order that a sync replays is old news and ignored (a bust of one is reported as
unreadable, as a bust of an unknown fill is). A fingerprint goes when a sync no longer
carries its order (the broker's day moved on).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from ..errors import BrokerError
from ..finished import KEEP_IN_FULL, FinishedOrders
from ..model import BrokerEvent, FillCorrection, FillEvent, OrderEvent, OrderStatus, PositionEvent
from . import answers, codec, parsing
from . import schemas as s
from .corrections import Change, FillLedger

log = logging.getLogger(__name__)

Json = dict[str, Any]
#: ``(contractId, the name we placed it under or None) → contract name``.
SymbolLookup = Callable[[int, str | None], Awaitable[str]]
#: Names of orders we placed whose contractId no push has told yet (a bound, not a target: an
#: order refused before it existed never gets a push, and its entry ages out).
PLACING_KEPT = 4096


@dataclass(slots=True)
class OrderView:
    order_id: int
    account_id: int
    contract_id: int
    action: str
    ord_status: str = s.PENDING_NEW
    quantity: int = 0
    order_type: str = s.MARKET
    price: Any = None
    stop_price: Any = None
    tif: str = s.TIF_DAY
    cum_qty: int = 0
    cl_ord_id: str | None = None
    #: An execution report said the order ended (its cumQty is then the final one): only then
    #: may the order be forgotten once its fills are all reported.
    ended: bool = False


class EntityCache:
    def __init__(self, our_ids: dict[int, str], symbol: SymbolLookup, keep: int = KEEP_IN_FULL) -> None:
        self.our_ids = our_ids  # Tradovate accountId → our account id
        self._symbol = symbol
        self.orders: dict[int, OrderView] = {}
        self.by_client: dict[tuple[int, str], int] = {}
        self.cl_by_order: dict[int, str] = {}
        self.positions: dict[tuple[int, int], int] = {}  # (accountId, contractId) → netPos
        self.filled: dict[int, int] = {}  # orderId → sum of fill qty seen
        self._seen_reports: set[int] = set()
        self.ledger = FillLedger()  # fills as last reported, for busts
        self.commands: dict[int, tuple[int, str]] = {}  # commandId → (orderId, commandType)
        self._seen_command_reports: set[int] = set()
        self._entities_of: dict[int, list[tuple[str, int]]] = {}  # orderId → ids kept for it
        self.finished = FinishedOrders(lambda order_id: self.filled.get(int(order_id), 0), keep)
        #: clOrdId → the contract name we placed it under. Why: an order push names its contract
        #: only by id; with this, the first push of our order in a new symbol learns the name
        #: instead of asking ``contract/item`` inside the socket's read loop (a round trip that
        #: held every push behind it, and a refused lookup failed the whole socket session).
        self.placing: dict[str, str] = {}
        #: Called with every value or entity the adapter could not read (``UnknownEnumValue`` or
        #: ``CodecError``, raw text inside); the feed's handler never raises.
        self.on_protocol_error: Callable[[BrokerError], None] = _log_protocol_error

    # -- forgetting -----------------------------------------------------------------------------
    def _forgotten(self, order_id: Any) -> bool:
        return self.finished.forgotten(str(order_id)) is not None

    def _note(self, order_id: int, kind: str, ident: int) -> None:
        """Remember that ``ident`` (a command, report, trade or fill id) belongs to the order."""
        self._entities_of.setdefault(order_id, []).append((kind, ident))

    def _retire_if_done(self, order_id: int) -> None:
        """A final order whose fills were all reported may push the oldest such order out."""
        view = self.orders.get(order_id)
        if view is None or not view.ended or self.filled.get(order_id, 0) < view.cum_qty:
            return
        for old in self.finished.finished(str(order_id)):
            self._drop(int(old))

    def _drop(self, order_id: int) -> None:
        view = self.orders.pop(order_id, None)
        cl_ord_id = self.cl_by_order.pop(order_id, None)
        if view is not None and cl_ord_id is not None and self.by_client.get((view.account_id, cl_ord_id)) == order_id:
            del self.by_client[(view.account_id, cl_ord_id)]
        if cl_ord_id is not None:
            self.placing.pop(cl_ord_id, None)
        self.filled.pop(order_id, None)
        for kind, ident in self._entities_of.pop(order_id, ()):
            if kind == "command":
                self.commands.pop(ident, None)
            elif kind == "command_report":
                self._seen_command_reports.discard(ident)
            elif kind == "report":
                self._seen_reports.discard(ident)
                self.ledger.forget_trade_report(ident)
            else:  # a fill
                self.ledger.forget_fill(ident)

    # -- snapshot ------------------------------------------------------------------------------
    async def apply_snapshot(self, snap: Json, *, emit: bool) -> list[BrokerEvent]:
        """Load a SyncMessage; with ``emit`` return events for what changed since the last view.
        The sync carries everything the broker holds, so forgotten orders it no longer carries
        are forgotten for good."""
        replay = self.finished.begin_replay()
        for key in ("orders", "executionReports", "fills"):
            for entity in self._rows(snap, key):
                if isinstance(entity, dict):
                    self.finished.listed(replay, str(entity.get("id") if key == "orders" else entity.get("orderId")))
        events: list[BrokerEvent] = []
        for kind, key in (
            (s.ENTITY_COMMAND, "commands"),
            (s.ENTITY_ORDER, "orders"),
            (s.ENTITY_VERSION, "orderVersions"),
            (s.ENTITY_COMMAND_REPORT, "commandReports"),
        ):
            for entity in self._rows(snap, key):
                await self.apply(kind, entity, emit=False)
        for entity in sorted(self._rows(snap, "executionReports"), key=_id_order):
            events += await self.apply(s.ENTITY_EXEC, entity, emit=emit)
        for entity in sorted(self._rows(snap, "fills"), key=_id_order):
            events += await self.apply(s.ENTITY_FILL, entity, emit=emit)
        for entity in self._rows(snap, "positions"):
            events += await self.apply(s.ENTITY_POSITION, entity, emit=emit)
        self.finished.end_replay(replay)
        return events

    def _rows(self, snap: Json, key: str) -> list[Any]:
        """One entity list of a snapshot; anything but a list is reported and read as empty."""
        rows = snap.get(key)
        if rows is None or isinstance(rows, list):
            return rows or []
        self.on_protocol_error(codec.CodecError(f"sync {key} is not a list", answers.raw_text(rows)))
        return []

    # -- one entity ------------------------------------------------------------------------------
    async def apply(self, kind: str, entity: Any, *, emit: bool = True) -> list[BrokerEvent]:
        """Events for one entity; an entity of the wrong shape is reported, never raised: one
        bad push must not stop the feed or the pushes behind it."""
        handler = _HANDLERS.get(kind)
        if handler is None:
            return []
        try:
            with answers.reading(f"{kind} entity", entity):
                if not isinstance(entity, dict):
                    raise TypeError("entity is not an object")
                return await handler(self, entity, emit)
        except codec.CodecError as exc:
            self.on_protocol_error(exc)
        return []

    async def _command(self, e: Json, emit: bool) -> list[BrokerEvent]:
        cl_ord_id, order_id = e.get("clOrdId"), e.get("orderId")
        if order_id is not None and self._forgotten(order_id):
            return []  # a command of a forgotten order, replayed
        if e.get("id") is not None and order_id is not None:
            self.commands[int(e["id"])] = (int(order_id), str(e.get("commandType")))
            self._note(int(order_id), "command", int(e["id"]))
        self._outcome(e)
        if cl_ord_id and order_id is not None and e.get("commandType") == s.CMD_NEW:
            self.cl_by_order[int(order_id)] = str(cl_ord_id)
            view = self.orders.get(int(order_id))
            if view is not None:
                view.cl_ord_id = str(cl_ord_id)
                self.by_client[(view.account_id, str(cl_ord_id))] = view.order_id
        return []

    def _outcome(self, e: Json) -> parsing.CommandOutcome | None:
        try:
            return parsing.command_outcome(e.get("commandStatus"))
        except parsing.UnknownEnumValue as exc:
            self.on_protocol_error(exc)
            return None

    async def _command_report(self, e: Json, emit: bool) -> list[BrokerEvent]:
        """A refused modify or cancel becomes an OrderEvent with the reason; a refused New
        command is already told by the order's own ``Rejected`` execution report."""
        report_id = int(e["id"])
        if report_id in self._seen_command_reports:
            return []
        command = self.commands.get(int(e.get("commandId") or -1))
        if command is None:
            return []  # a command never seen (or of a forgotten order): nothing to tell
        self._seen_command_reports.add(report_id)
        self._note(command[0], "command_report", report_id)
        outcome = self._outcome(e)
        if outcome is not parsing.CommandOutcome.REJECTED or command[1] == s.CMD_NEW:
            return []
        view = self.orders.get(command[0])
        if not emit or view is None or view.account_id not in self.our_ids:
            return []
        detail = ": ".join(str(x) for x in (e.get("rejectReason"), e.get("text")) if x)
        reason = f"{command[1]} {e.get('commandStatus')}" + (f": {detail}" if detail else "")
        return [await self._order_event(view, reason, s.parse_iso(e.get("timestamp")))]

    async def _order(self, e: Json, emit: bool) -> list[BrokerEvent]:
        order_id = int(e["id"])
        if self._forgotten(order_id):
            return []
        view = self.orders.get(order_id)
        if view is None:
            view = self.orders[order_id] = OrderView(
                order_id, int(e["accountId"]), int(e["contractId"]), str(e.get("action"))
            )
            view.cl_ord_id = self.cl_by_order.get(order_id)
            if view.cl_ord_id:
                self.by_client[(view.account_id, view.cl_ord_id)] = order_id
        view.account_id, view.contract_id = int(e["accountId"]), int(e["contractId"])
        view.ord_status = str(e.get("ordStatus") or view.ord_status)
        return []

    async def _version(self, e: Json, emit: bool) -> list[BrokerEvent]:
        view = self.orders.get(int(e["orderId"]))
        if view is not None:
            # Read before anything is kept: a price kept unread would fail every later event.
            quantity = answers.integer(e.get("orderQty") or view.quantity, "orderQty", e)
            for key in ("price", "stopPrice"):
                parsing.price_in(e.get(key))  # raises on a price that is not a finite number
            view.quantity = quantity
            view.order_type = str(e.get("orderType") or view.order_type)
            view.price, view.stop_price = e.get("price"), e.get("stopPrice")
            view.tif = str(e.get("timeInForce") or view.tif)
        return []

    async def _report(self, e: Json, emit: bool) -> list[BrokerEvent]:
        report_id = int(e["id"])
        exec_type = e.get("execType")
        if report_id in self._seen_reports:
            return []
        if self._forgotten(e.get("orderId")) and exec_type not in (s.EXEC_TRADE_CANCEL, s.EXEC_TRADE_CORRECT):
            return []  # a report of a forgotten order, replayed (a bust still goes on: reported unreadable)
        self._seen_reports.add(report_id)
        self._note(int(e["orderId"]), "report", report_id)
        if exec_type not in s.EXEC_TYPES:
            self.on_protocol_error(parsing.UnknownEnumValue("execType", exec_type))
        elif exec_type == s.EXEC_TRADE:
            self.ledger.note_trade_report(e)
        elif exec_type in (s.EXEC_TRADE_CANCEL, s.EXEC_TRADE_CORRECT):
            return await self._correction_report(e, emit)
        view = self.orders.get(int(e["orderId"]))
        if view is None:
            view = self.orders[int(e["orderId"])] = OrderView(
                int(e["orderId"]), int(e["accountId"]), int(e["contractId"]), str(e.get("action"))
            )
        elif not view.contract_id:  # our provisional view, before the order entity's push
            view.contract_id = int(e["contractId"])
        view.ord_status = str(e.get("ordStatus") or view.ord_status)
        view.cum_qty = int(e.get("cumQty") or view.cum_qty)
        said = e.get("ordStatus")
        view.ended = bool(said) and parsing.status_from(str(said), view.cum_qty, view.quantity).is_final
        if not emit or view.account_id not in self.our_ids:
            self._retire_if_done(view.order_id)
            return []
        reason = None
        if e.get("execType") == s.EXEC_REJECTED:
            reason = ": ".join(str(x) for x in (e.get("rejectReason"), e.get("text")) if x)
        elif e.get("text"):
            reason = str(e["text"])
        event = await self._order_event(view, reason, s.parse_iso(e.get("timestamp")))
        self._retire_if_done(view.order_id)
        return [event]

    async def _order_event(self, view: OrderView, reason: str | None, ts: Any) -> OrderEvent:
        return OrderEvent(
            account_id=self.our_ids[view.account_id],
            client_order_id=view.cl_ord_id,
            broker_order_id=str(view.order_id),
            symbol=await self._symbol_of(view),
            side=parsing.side(view.action),
            order_type=parsing.order_type_from(view.order_type),
            quantity=view.quantity,
            status=parsing.status_from(view.ord_status, view.cum_qty, view.quantity),
            filled_quantity=view.cum_qty,
            limit_price=parsing.price_in(view.price),
            stop_price=parsing.price_in(view.stop_price),
            reason=reason,
            timestamp=ts,
        )

    async def _correction_report(self, e: Json, emit: bool) -> list[BrokerEvent]:
        fill_id = self.ledger.resolve(e)
        if fill_id is None:  # the fill's own update (if it comes) will carry the change
            self.on_protocol_error(parsing.UnknownEnumValue(f"execRefId of {e.get('execType')}", e.get("execRefId")))
            return []
        busted = e.get("execType") == s.EXEC_TRADE_CANCEL
        change = self.ledger.change(
            fill_id,
            busted=busted,
            quantity=None if busted or e.get("lastQty") is None else int(e["lastQty"]),
            price=None if busted else parsing.price_in(e.get("lastPx")),
        )
        return await self._correction(change, e, emit)

    async def _correction(self, change: Change | None, e: Json, emit: bool) -> list[BrokerEvent]:
        if change is None:
            return []
        # The order's progress is left alone (later fills' cumulative/leaves): an exchange does
        # not reinstate busted quantity, and the broker's cumQty keeps counting it.
        view = self.orders.get(change.order_id)
        if not emit or view is None or view.account_id not in self.our_ids:
            return []
        return [
            FillCorrection(
                account_id=self.our_ids[view.account_id],
                client_order_id=view.cl_ord_id,
                broker_order_id=str(change.order_id),
                fill_id=str(change.fill_id),
                correction_id=change.key,
                symbol=await self._symbol_of(view),
                side=parsing.side(view.action),
                busted=change.busted,
                quantity=change.quantity,
                price=change.price,
                original_quantity=change.original_quantity,
                original_price=change.original_price,
                timestamp=s.parse_iso(e.get("timestamp")),
            )
        ]

    async def _fill(self, e: Json, emit: bool) -> list[BrokerEvent]:
        fill_id = answers.integer(e.get("id"), "fill id", e)
        active = e.get("active") is not False
        if fill_id not in self.ledger.fills and self._forgotten(e.get("orderId")):
            if not active:  # a bust of a fill of a forgotten order: say so, never drop it silently
                self.on_protocol_error(parsing.UnknownEnumValue("fill of a forgotten order, busted", fill_id))
            return []  # every fill of a forgotten order was reported before it was forgotten
        if fill_id in self.ledger.fills and not active:  # a bust
            return await self._correction(self.ledger.change(fill_id, busted=True), e, emit)
        # Read strictly before anything is recorded: a fill is money, so a quantity that is not
        # a positive integer or a price that is not a finite number makes the push unreadable.
        quantity = answers.integer(e.get("qty"), "fill qty", e)
        price = parsing.price_in(e.get("price"))
        if quantity <= 0 or price is None:
            raise ValueError(f"fill {fill_id}: qty {quantity}, price {price}")
        if fill_id in self.ledger.fills:  # an update: a correction, or a repeated push
            change = self.ledger.change(fill_id, busted=False, quantity=quantity, price=price)
            return await self._correction(change, e, emit)
        order_id = answers.integer(e.get("orderId"), "fill orderId", e)
        self.ledger.record(fill_id, order_id, quantity, price, active)
        self._note(order_id, "fill", fill_id)
        if not active:
            return []  # busted before we ever saw it: it never counted
        cumulative = self.filled[order_id] = self.filled.get(order_id, 0) + quantity
        view = self.orders.get(order_id)
        if not emit or view is None or view.account_id not in self.our_ids:
            self._retire_if_done(order_id)
            return []
        fill: list[BrokerEvent] = [
            FillEvent(
                account_id=self.our_ids[view.account_id],
                client_order_id=view.cl_ord_id,
                broker_order_id=str(order_id),
                fill_id=str(fill_id),
                symbol=await self._symbol_of(view),
                side=parsing.side(str(e.get("action") or view.action)),
                quantity=quantity,
                price=price,
                cumulative_quantity=cumulative,
                leaves_quantity=max(0, view.quantity - cumulative),
                timestamp=s.parse_iso(e.get("timestamp")),
            )
        ]
        self._retire_if_done(order_id)
        return fill

    async def _position(self, e: Json, emit: bool) -> list[BrokerEvent]:
        key = (int(e["accountId"]), int(e["contractId"]))
        net = int(e.get("netPos") or 0)
        changed = self.positions.get(key) != net
        self.positions[key] = net
        if not emit or key[0] not in self.our_ids or not changed:
            return []
        return [
            PositionEvent(
                account_id=self.our_ids[key[0]],
                symbol=await self._symbol(key[1], None),
                net_quantity=net,
                average_price=parsing.price_in(e.get("netPrice")) if net else None,
                timestamp=s.parse_iso(e.get("timestamp")),
            )
        ]

    def placing_order(self, cl_ord_id: str, symbol: str) -> None:
        """Before an order leaves: the name it is placed under, for its first push."""
        if len(self.placing) >= PLACING_KEPT:
            del self.placing[next(iter(self.placing))]
        self.placing[cl_ord_id] = symbol

    async def _symbol_of(self, view: OrderView) -> str:
        """The order's contract name: known, learned from our own placement, or looked up."""
        placed = self.placing.get(view.cl_ord_id) if view.cl_ord_id is not None else None
        name = await self._symbol(view.contract_id, placed)
        if placed is not None and view.contract_id:
            del self.placing[str(view.cl_ord_id)]  # learned: the adapter knows the id now
        return name

    def provisional(
        self, order_id: int, account_id: int, contract_id: int, body: Json, status: str = s.WORKING
    ) -> None:
        """Remember an order we just placed before its pushes arrive, so an immediate
        modify/cancel by clOrdId works; the pushed entities overwrite these guesses."""
        cl_ord_id = str(body["clOrdId"])
        if self._forgotten(order_id):
            return  # filled, reported and forgotten before the answer was read
        self.by_client.setdefault((account_id, cl_ord_id), order_id)
        self.cl_by_order.setdefault(order_id, cl_ord_id)
        if order_id not in self.orders:
            self.orders[order_id] = OrderView(
                order_id,
                account_id,
                contract_id,
                str(body["action"]),
                status,
                int(body["orderQty"]),
                str(body["orderType"]),
                body.get("price"),
                body.get("stopPrice"),
                str(body["timeInForce"]),
                0,
                cl_ord_id,
            )

    # -- queries -------------------------------------------------------------------------------
    def order_for(self, account_id: int, cl_ord_id: str) -> OrderView | None:
        order_id = self.by_client.get((account_id, cl_ord_id))
        return self.orders.get(order_id) if order_id is not None else None

    def status_of(self, order_id: int) -> OrderStatus:
        view = self.orders.get(order_id)
        if view is None:
            return OrderStatus.WORKING
        return parsing.status_from(view.ord_status, view.cum_qty, view.quantity)


def _log_protocol_error(exc: BrokerError) -> None:
    log.error("tradovate: %s (entity kept, value ignored); raw: %s", exc, getattr(exc, "raw", None))


def _id_order(entity: Any) -> tuple[int, int, str]:
    """Sort key by entity id that never raises: integer ids first, in order; the rest after."""
    ident = entity.get("id") if isinstance(entity, dict) else None
    if isinstance(ident, int) and not isinstance(ident, bool):
        return (0, ident, "")
    return (1, 0, answers.raw_text(ident)[:40])


_HANDLERS: dict[str, Callable[[EntityCache, Json, bool], Awaitable[list[BrokerEvent]]]] = {
    s.ENTITY_COMMAND: EntityCache._command,
    s.ENTITY_COMMAND_REPORT: EntityCache._command_report,
    s.ENTITY_ORDER: EntityCache._order,
    s.ENTITY_VERSION: EntityCache._version,
    s.ENTITY_EXEC: EntityCache._report,
    s.ENTITY_FILL: EntityCache._fill,
    s.ENTITY_POSITION: EntityCache._position,
}

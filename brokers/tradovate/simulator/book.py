"""Tradovate's entity view of the shared kernel: ids, entity tables and ``props`` pushes.

The kernel (SimExchange) owns matching; this book only listens to its events and keeps what
Tradovate would show for them — orders, order versions, commands, command and execution
reports, fills, positions, cash balances — with Tradovate's integer ids. Every change is
handed to ``on_props(account_name, props)`` for the WebSocket sessions to push, and the
tables are the ``user/syncrequest`` snapshot, so a reconnecting client sees the same
history the pushes told it.
"""

from __future__ import annotations

import itertools
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from ....common.clock import utcnow
from ...model import FillCorrection, FillEvent, OrderEvent, OrderStatus, PositionEvent
from ...simkernel.exchange import KernelEvent, SimExchange, SimOrder
from .. import parsing
from .. import schemas as s

Json = dict[str, Any]
PropsSink = Callable[[str, Json], None]


@dataclass(slots=True)
class _OrderRec:
    order_id: int
    account: str
    contract_id: int
    action: str
    cl_ord_id: str | None
    version: tuple[int, str, float | None, float | None, str]
    command_id: int
    command_type: str = s.CMD_NEW
    cum_qty: int = 0
    oco_id: int | None = None
    parent_id: int | None = None


@dataclass(slots=True)
class _PositionRec:
    position_id: int
    bought: int = 0
    bought_value: float = 0.0
    sold: int = 0
    sold_value: float = 0.0


@dataclass(slots=True)
class Tables:
    """Entity tables keyed by id, each row remembering its account for filtering."""

    rows: dict[str, dict[int, tuple[str, Json]]] = field(default_factory=dict)

    def put(self, kind: str, account: str, entity: Json) -> bool:
        table = self.rows.setdefault(kind, {})
        created = entity["id"] not in table
        table[entity["id"]] = (account, entity)
        return created

    def of(self, kind: str, accounts: set[str]) -> list[Json]:
        return [e for a, e in self.rows.get(kind, {}).values() if a in accounts]


class TradovateBook:
    def __init__(self, exchange: SimExchange, user_id: int, user_name: str) -> None:
        self.exchange = exchange
        self.user_id = user_id
        self.user_name = user_name
        self.created_at = utcnow()
        self.account_ids: dict[str, int] = {}
        self.account_names: dict[int, str] = {}
        self.contracts: dict[str, int] = {}
        self.symbols: dict[int, str] = {}
        self.tables = Tables()
        self._ids = itertools.count(1)
        self._orders: dict[int, _OrderRec] = {}
        self._positions: dict[tuple[str, int], _PositionRec] = {}
        self._sinks: list[PropsSink] = []
        self.pending_oco: dict[str, int] = {}
        self._commands: dict[int, tuple[str, Json]] = {}  # commandId → (account, entity)
        self.correction_shape = "both"  # see _on_correction
        self._announced: set[int] = set()  # orders whose execType New went out
        self._held: set[int] = set()  # OSO children reported Suspended
        self._rows_of: dict[int, list[tuple[str, int]]] = {}  # orderId → its entity rows
        exchange.add_listener(self._on_kernel)
        exchange.add_forget_listener(self.forget)

    def close(self) -> None:
        self.exchange.remove_listener(self._on_kernel)
        self.exchange.remove_forget_listener(self.forget)

    def forget(self, account: str, orders: list[SimOrder]) -> None:
        """The kernel forgot these finished orders (its history limit): every entity of theirs
        leaves the tables, so a sync no longer carries them, as a past day's orders."""
        for order in orders:
            order_id = int(order.order_id)
            for kind, ident in self._rows_of.pop(order_id, ()):
                self.tables.rows.get(kind, {}).pop(ident, None)
                if kind == s.ENTITY_COMMAND:
                    self._commands.pop(ident, None)
            self._orders.pop(order_id, None)
            self._announced.discard(order_id)
            self._held.discard(order_id)
            if order.oco_group and self.pending_oco.get(order.oco_group) == order_id:
                del self.pending_oco[order.oco_group]

    def _order_of(self, kind: str, entity: Json) -> int | None:
        """The order an entity row belongs to (None: an account's row, kept for good)."""
        if kind == s.ENTITY_ORDER:
            return int(entity["id"])
        if kind in (s.ENTITY_VERSION, s.ENTITY_EXEC, s.ENTITY_FILL, s.ENTITY_COMMAND):
            return int(entity["orderId"])
        if kind == s.ENTITY_COMMAND_REPORT:
            command = self._commands.get(int(entity["commandId"]))
            return int(command[1]["orderId"]) if command is not None else None
        return None

    # -- reference data ----------------------------------------------------------------
    def add_account(self, name: str, user_id: int | None = None) -> int:
        if name not in self.account_ids:
            account_id = 700000 + len(self.account_ids) + 1
            self.account_ids[name], self.account_names[account_id] = account_id, name
            owner = self.user_id if user_id is None else user_id
            self.tables.put("account", name, s.account_entity(account_id, name, owner, self.created_at))
            self._cash(name)
        return self.account_ids[name]

    def contract_id(self, symbol: str) -> int:
        """Stable ids per symbol (crc32) so two simulators agree on ids for the same symbol."""
        symbol = symbol.upper()
        if symbol not in self.contracts:
            contract_id = 2_000_000 + zlib.crc32(symbol.encode()) % 1_000_000
            self.contracts[symbol], self.symbols[contract_id] = contract_id, symbol
        return self.contracts[symbol]

    def contract(self, contract_id: int) -> Json | None:
        symbol = self.symbols.get(contract_id)
        return s.contract_entity(contract_id, symbol, contract_id // 10) if symbol else None

    def subscribe(self, sink: PropsSink) -> Callable[[], None]:
        self._sinks.append(sink)
        return lambda: self._sinks.remove(sink) if sink in self._sinks else None

    def order_rec(self, order_id: int) -> _OrderRec | None:
        return self._orders.get(order_id)

    # -- commands the API issues before calling the kernel ------------------------------
    def begin_command(self, order_id: int, command_type: str, cl_ord_id: str | None = None) -> int:
        """A Modify/Cancel command enters as ``PendingExecution``; the kernel's answer moves it
        to ``AtExecution`` (``finish_command``) or ``ExecutionRejected`` (``reject_command``)."""
        rec = self._orders[order_id]
        rec.command_id, rec.command_type = next(self._ids), command_type
        self._new_command(rec.account, rec.command_id, order_id, cl_ord_id, command_type, utcnow())
        return rec.command_id

    def finish_command(self, command_id: int) -> None:
        self._command_status(command_id, s.CMD_EXECUTED)

    def reject_command(self, command_id: int, order_id: int, reason: str, text: str) -> None:
        rec = self._orders.get(order_id)
        account = rec.account if rec else ""
        self._command_status(command_id, s.CMD_REJECTED)
        self._put(
            s.ENTITY_COMMAND_REPORT,
            account,
            s.command_report_entity(
                next(self._ids), command_id, s.CMD_REJECTED, self._ord_status(order_id), utcnow(), reason, text
            ),
        )

    def _new_command(
        self, account: str, command_id: int, order_id: int, cl_ord_id: str | None, command_type: str, ts: datetime
    ) -> None:
        entity = s.command_entity(command_id, order_id, cl_ord_id, command_type, s.CMD_PENDING_EXECUTION, ts)
        self._commands[command_id] = (account, entity)
        self._put(s.ENTITY_COMMAND, account, entity)

    def _command_status(self, command_id: int, status: str) -> None:
        """Move a command to ``status`` once; a final status is never changed again."""
        found = self._commands.get(command_id)
        if found is None or found[1]["commandStatus"] != s.CMD_PENDING_EXECUTION:
            return
        account, entity = found
        self._put(s.ENTITY_COMMAND, account, {**entity, "commandStatus": status})
        self._commands[command_id] = (account, {**entity, "commandStatus": status})

    def _ord_status(self, order_id: int) -> str:
        rows = self.tables.rows.get(s.ENTITY_ORDER, {})
        return str(rows[order_id][1]["ordStatus"]) if order_id in rows else s.WORKING

    # -- kernel events → entities ----------------------------------------------------------
    def _on_kernel(self, event: KernelEvent) -> None:
        if event.account_id not in self.account_ids:
            return
        if isinstance(event, OrderEvent):
            self._on_order(event)
        elif isinstance(event, FillEvent):
            self._on_fill(event)
        elif isinstance(event, PositionEvent):
            self._on_position(event)
        elif isinstance(event, FillCorrection):
            self._on_correction(event)

    def _version_of(self, event: OrderEvent) -> tuple[int, str, float | None, float | None, str]:
        order = self.exchange.account(event.account_id).orders[event.broker_order_id]
        return (
            event.quantity,
            parsing.order_type(event.order_type),
            parsing.price_out(event.limit_price),
            parsing.price_out(event.stop_price),
            parsing.tif(order.time_in_force),
        )

    def _on_order(self, event: OrderEvent) -> None:
        order_id = int(event.broker_order_id)
        rec = self._orders.get(order_id)
        now = event.timestamp
        if rec is None:
            rec = self._new_order(event, order_id, now)
        if event.filled_quantity > rec.cum_qty:
            return  # the fill handler reports trades with their execution report
        version = self._version_of(event)
        if event.status is OrderStatus.REJECTED:
            self._report(
                rec,
                s.EXEC_REJECTED,
                s.REJECTED,
                now,
                ok=False,
                reason=parsing.failure_reason(event.reason),
                text=event.reason,
            )
        elif event.status in (OrderStatus.WORKING, OrderStatus.PARTIALLY_FILLED):
            if version != rec.version:
                rec.version = version
                self._put_version(rec)
                self._report(rec, s.EXEC_REPLACED, s.WORKING, now)
            elif rec.command_type == s.CMD_NEW and rec.cum_qty == 0 and rec.order_id not in self._announced:
                self._announced.add(rec.order_id)
                self._report(rec, s.EXEC_NEW, s.WORKING, now)
        elif event.status is OrderStatus.PENDING and rec.parent_id is not None and rec.order_id not in self._held:
            # An OSO bracket waiting for its entry (undocumented state; see docs/fidelity).
            self._held.add(rec.order_id)
            self._report(rec, s.EXEC_SUSPENDED, s.SUSPENDED, now)
        elif event.status is OrderStatus.CANCELLED:
            self._report(rec, s.EXEC_CANCELED, s.CANCELED, now, text=event.reason)
        elif event.status is OrderStatus.EXPIRED:
            self._report(rec, s.EXEC_EXPIRED, s.EXPIRED, now, text=event.reason)

    def _new_order(self, event: OrderEvent, order_id: int, now: datetime) -> _OrderRec:
        rec = _OrderRec(
            order_id=order_id,
            account=event.account_id,
            contract_id=self.contract_id(event.symbol),
            action=parsing.action(event.side),
            cl_ord_id=event.client_order_id,
            version=self._version_of(event),
            command_id=next(self._ids),
        )
        kernel_order = self.exchange.account(event.account_id).orders[event.broker_order_id]
        if kernel_order.oco_group:
            rec.oco_id = self.pending_oco.setdefault(kernel_order.oco_group, order_id)
        if kernel_order.parent_id is not None:
            rec.parent_id = int(kernel_order.parent_id)
        self._orders[order_id] = rec
        self._new_command(rec.account, rec.command_id, order_id, rec.cl_ord_id, s.CMD_NEW, now)
        self._put_order(rec, s.PENDING_NEW, now)
        self._put_version(rec)
        return rec

    def _on_fill(self, event: FillEvent) -> None:
        order_id = int(event.broker_order_id)
        rec = self._orders[order_id]
        order = self.exchange.account(event.account_id).orders[event.broker_order_id]
        rec.cum_qty = event.cumulative_quantity
        status = s.FILLED if event.leaves_quantity == 0 else s.WORKING
        price = parsing.price_out(event.price)
        self._put(
            s.ENTITY_EXEC,
            rec.account,
            s.execution_report_entity(
                next(self._ids),
                rec.command_id,
                self.account_ids[rec.account],
                rec.contract_id,
                order_id,
                s.EXEC_TRADE,
                status,
                rec.action,
                event.timestamp,
                cum_qty=event.cumulative_quantity,
                avg_px=parsing.price_out(order.average_price),
                last_qty=event.quantity,
                last_px=price,
            ),
        )
        self._put(
            s.ENTITY_FILL,
            rec.account,
            s.fill_entity(
                int(event.fill_id), order_id, rec.contract_id, rec.action, event.quantity, price or 0.0, event.timestamp
            ),
        )
        key = (rec.account, rec.contract_id)
        pos = self._positions.setdefault(key, _PositionRec(next(self._ids)))
        value = float(event.price) * event.quantity
        if rec.action == s.BUY:
            pos.bought, pos.bought_value = pos.bought + event.quantity, pos.bought_value + value
        else:
            pos.sold, pos.sold_value = pos.sold + event.quantity, pos.sold_value + value
        self._put_order(rec, status, event.timestamp)

    def _on_correction(self, event: FillCorrection) -> None:
        """A bust/correction as Tradovate could show it (undocumented beyond the execType enum):
        ``correction_shape`` "both" (default) sends an executionReport TradeCancel/TradeCorrect
        naming the fill in ``execRefId`` *and* updates the fill entity (``active: false``, or the
        new qty/price); "report" or "fill" sends only one of them, for adapter tests."""
        order_id = int(event.broker_order_id)
        rec = self._orders[order_id]
        fill_id = int(event.fill_id)
        if self.correction_shape in ("both", "report"):
            order = self.exchange.account(event.account_id).orders[event.broker_order_id]
            self._put(
                s.ENTITY_EXEC,
                rec.account,
                s.execution_report_entity(
                    next(self._ids),
                    rec.command_id,
                    self.account_ids[rec.account],
                    rec.contract_id,
                    order_id,
                    s.EXEC_TRADE_CANCEL if event.busted else s.EXEC_TRADE_CORRECT,
                    self._ord_status(order_id),
                    rec.action,
                    event.timestamp,
                    cum_qty=order.filled_quantity,
                    avg_px=parsing.price_out(order.average_price),
                    last_qty=event.original_quantity if event.busted else event.quantity,
                    last_px=parsing.price_out(event.original_price if event.busted else event.price),
                    exec_ref_id=fill_id,
                ),
            )
        pos = self._positions.setdefault((rec.account, rec.contract_id), _PositionRec(next(self._ids)))
        delta_qty = event.quantity - event.original_quantity
        delta_value = float((event.price or 0) * event.quantity - event.original_price * event.original_quantity)
        if rec.action == s.BUY:
            pos.bought, pos.bought_value = pos.bought + delta_qty, pos.bought_value + delta_value
        else:
            pos.sold, pos.sold_value = pos.sold + delta_qty, pos.sold_value + delta_value
        if self.correction_shape in ("both", "fill"):
            row = self.tables.rows[s.ENTITY_FILL][fill_id][1]
            changed = (
                {"active": False} if event.busted else {"qty": event.quantity, "price": parsing.price_out(event.price)}
            )
            self._put(s.ENTITY_FILL, rec.account, {**row, **changed})

    def _on_position(self, event: PositionEvent) -> None:
        contract_id = self.contract_id(event.symbol)
        pos = self._positions.setdefault((event.account_id, contract_id), _PositionRec(next(self._ids)))
        self._put(
            s.ENTITY_POSITION,
            event.account_id,
            s.position_entity(
                pos.position_id,
                self.account_ids[event.account_id],
                contract_id,
                event.net_quantity,
                parsing.price_out(event.average_price),
                pos.bought,
                pos.bought_value,
                pos.sold,
                pos.sold_value,
                event.timestamp,
            ),
        )
        self._cash(event.account_id)

    # -- helpers ---------------------------------------------------------------------------
    def _cash(self, account: str) -> None:
        kernel = self.exchange.account(account)
        realized = sum((p.realized_pnl for p in kernel.positions.values()), Decimal(0))
        account_id = self.account_ids[account]
        self._put(
            s.ENTITY_CASH,
            account,
            s.cash_balance_entity(account_id, account_id, float(kernel.balance), float(realized), utcnow()),
        )

    def _put_order(self, rec: _OrderRec, status: str, ts: datetime) -> None:
        self._put(
            s.ENTITY_ORDER,
            rec.account,
            s.order_entity(
                rec.order_id,
                self.account_ids[rec.account],
                rec.contract_id,
                rec.action,
                status,
                ts,
                rec.oco_id,
                rec.parent_id,
            ),
        )

    def _put_version(self, rec: _OrderRec) -> None:
        qty, order_type, price, stop, tif = rec.version
        self._put(
            s.ENTITY_VERSION,
            rec.account,
            s.order_version_entity(next(self._ids), rec.order_id, qty, order_type, price, stop, tif),
        )

    def _report(
        self,
        rec: _OrderRec,
        exec_type: str,
        status: str,
        ts: datetime,
        *,
        ok: bool = True,
        reason: str | None = None,
        text: str | None = None,
    ) -> None:
        command_status = s.CMD_EXECUTED if ok else self._reject_status(rec)
        self._command_status(rec.command_id, command_status)
        self._put(
            s.ENTITY_COMMAND_REPORT,
            rec.account,
            s.command_report_entity(next(self._ids), rec.command_id, command_status, status, ts, reason, text),
        )
        order = self.exchange.account(rec.account).orders[str(rec.order_id)]
        self._put(
            s.ENTITY_EXEC,
            rec.account,
            s.execution_report_entity(
                next(self._ids),
                rec.command_id,
                self.account_ids[rec.account],
                rec.contract_id,
                rec.order_id,
                exec_type,
                status,
                rec.action,
                ts,
                cum_qty=rec.cum_qty,
                avg_px=parsing.price_out(order.average_price),
                reject_reason=reason,
                text=text,
            ),
        )
        self._put_order(rec, status, ts)

    def _reject_status(self, rec: _OrderRec) -> str:
        """Risk limits refuse with ``RiskRejected``; everything else with ``ExecutionRejected``."""
        order = self.exchange.account(rec.account).orders[str(rec.order_id)]
        return s.CMD_RISK_REJECTED if order.reject_code == "max_order_size" else s.CMD_REJECTED

    def _put(self, kind: str, account: str, entity: Json) -> None:
        created = self.tables.put(kind, account, entity)
        order_id = self._order_of(kind, entity) if created else None
        if order_id is not None:
            self._rows_of.setdefault(order_id, []).append((kind, int(entity["id"])))
        event = s.props(kind, s.CREATED if created else s.UPDATED, entity)
        for sink in list(self._sinks):
            sink(account, event)

    # -- snapshot ----------------------------------------------------------------------------
    def snapshot(self, accounts: set[str]) -> Json:
        """The SyncMessage: every documented key present, filled for the tables we keep."""
        body: Json = {key: [] for key in s.SYNC_KEYS}
        body["users"] = [s.user_entity(self.user_id, self.user_name, self.created_at)]
        plural = {
            s.ENTITY_ORDER: "orders",
            s.ENTITY_VERSION: "orderVersions",
            s.ENTITY_EXEC: "executionReports",
            s.ENTITY_FILL: "fills",
            s.ENTITY_POSITION: "positions",
            s.ENTITY_CASH: "cashBalances",
            s.ENTITY_COMMAND: "commands",
            s.ENTITY_COMMAND_REPORT: "commandReports",
            "account": "accounts",
        }
        for kind, key in plural.items():
            body[key] = self.tables.of(kind, accounts)
        contract_ids = {o["contractId"] for o in body["orders"]} | {p["contractId"] for p in body["positions"]}
        body["contracts"] = [c for c in (self.contract(cid) for cid in sorted(contract_ids)) if c]
        return body

"""The gateway's view over the shared kernel: integer ids, contracts, custom tags, trade history.

The kernel knows accounts by name and symbols like ``ESZ6``; ProjectX speaks integer account
ids and contract ids like ``CON.F.US.EP.Z26``. This module owns that mapping and turns kernel
events into the gateway's payloads, so the REST routes and the hub stay thin.
"""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from ....common.clock import today_utc, utcnow
from ...instruments import INSTRUMENTS, instrument_for
from ...model import FillEvent, OrderEvent, OrderStatus, PositionEvent
from ...simkernel.exchange import KernelEvent, SimExchange, SimOrder
from .. import parsing
from .. import schemas as px
from .brackets import BracketBook, Child

_QUARTERS = "HMUZ"
_ALL_MONTHS = "FGHJKMNQUVXZ"
#: Roots the gateway's contract list has monthly (energy and metals); the equity index and FX
#: futures are quarterly (H, M, U, Z). Source: the Contract/search examples and the CME listings
#: (docs/fidelity/projectx.md X-21).
MONTHLY_ROOTS = frozenset({"CL", "MCL", "GC", "MGC"})
_MONTH_NAMES = {
    "F": "January",
    "G": "February",
    "H": "March",
    "J": "April",
    "K": "May",
    "M": "June",
    "N": "July",
    "Q": "August",
    "U": "September",
    "V": "October",
    "X": "November",
    "Z": "December",
}


def front_month(today: date | None = None) -> tuple[str, int]:
    """Next quarterly expiry (H/M/U/Z) from today: good enough for index futures."""
    today = today or today_utc()
    quarter = (today.month - 1) // 3  # 0..3 → H,M,U,Z of this year
    return _QUARTERS[quarter], today.year % 100


def front_monthly(today: date | None = None) -> tuple[str, int]:
    """Front month of a monthly-listed future (crude's rule: a contract stops trading around the
    20th of the month before its delivery month, so after the 20th the front is two months out)."""
    today = today or today_utc()
    index = today.month - 1 + (1 if today.day < 20 else 2)  # 0-based month index from this January
    return _ALL_MONTHS[index % 12], (today.year + index // 12) % 100


def listed_months(root: str) -> str:
    return _ALL_MONTHS if root in MONTHLY_ROOTS else _QUARTERS


@dataclass(slots=True)
class Contract:
    contract_id: str
    code: str
    root: str
    month: str
    year2: int
    active: bool

    @property
    def symbol(self) -> str:
        return f"{self.root}{self.month}{self.year2 % 10}"

    def payload(self) -> dict[str, Any]:
        spec = INSTRUMENTS[self.root]
        return {
            "id": self.contract_id,
            "name": f"{self.code}{self.month}{self.year2:02d}",
            "description": f"{self.root} futures: {_MONTH_NAMES[self.month]} 20{self.year2:02d}",
            "tickSize": spec.tick_size,
            "tickValue": spec.tick_size * spec.point_value,
            "activeContract": self.active,
            "symbolId": px.symbol_id(self.code),
        }


@dataclass(slots=True)
class GatewayAccount:
    account_id: int
    name: str
    can_trade: bool = True
    realized: dict[str, Decimal] = field(default_factory=dict)  # last seen per symbol, for trade P&L
    position_ids: dict[str, int] = field(default_factory=dict)
    position_created: dict[str, datetime] = field(default_factory=dict)
    trades: list[dict[str, Any]] = field(default_factory=list)


Push = tuple[str, int, dict[str, Any]]  # (event target, accountId, payload)


class GatewayState:
    def __init__(
        self,
        exchange: SimExchange,
        account_names: list[str],
        *,
        contract_month: str | None = None,
        fee_per_contract: Decimal = Decimal("1.40"),
    ) -> None:
        self.exchange = exchange
        self.fee = fee_per_contract
        self.front = {}
        for root, code in px.ROOT_TO_CODE.items():
            if root not in INSTRUMENTS:
                continue
            if contract_month and contract_month[0] in listed_months(root):
                month, year2 = contract_month[0], int(contract_month[1:])
            else:
                month, year2 = front_monthly() if root in MONTHLY_ROOTS else front_month()
            self.front[root] = Contract(px.contract_id(code, month, year2), code, root, month, year2, True)
        self.brackets = BracketBook(exchange)
        self.trailing: dict[str, Decimal] = {}  # kernel id of a trailing stop → its distance
        self._ids = itertools.count(7001)
        self._position_ids = itertools.count(9001)
        self.accounts: dict[str, GatewayAccount] = {}
        self._symbols: dict[str, str] = {}
        for name in account_names:
            self.add_account(name)

    def forget(self, account_name: str, orders: list[SimOrder]) -> None:
        """The kernel forgot these finished orders (its history limit): their trades leave
        ``Trade/search`` too, as a trade older than the searched window would."""
        account = self.accounts.get(account_name)
        if account is None:
            return
        gone = {self.brackets.forget(order.order_id) for order in orders}
        account.trades = [t for t in account.trades if t.get("orderId") not in gone]
        for order in orders:
            self.trailing.pop(order.order_id, None)

    # -- accounts ----------------------------------------------------------------------
    def add_account(self, name: str, balance: Decimal = Decimal(50000)) -> GatewayAccount:
        if name not in self.accounts:
            self.exchange.open_account(name, balance)
            self.accounts[name] = GatewayAccount(next(self._ids), name)
        return self.accounts[name]

    def by_id(self, account_id: Any) -> GatewayAccount | None:
        for account in self.accounts.values():
            if account.account_id == account_id:
                return account
        return None

    def account_payload(self, account: GatewayAccount) -> dict[str, Any]:
        return {
            "id": account.account_id,
            "name": account.name,
            "balance": self.exchange.account(account.name).balance,
            "canTrade": account.can_trade,
            "isVisible": True,
            "simulated": True,
        }

    # -- contracts ---------------------------------------------------------------------
    def contract(self, contract_id: Any) -> Contract | None:
        parts = px.split_contract_id(contract_id) if isinstance(contract_id, str) else None
        if parts is None or parts[0] not in px.CODE_TO_ROOT:
            return None
        code, month, year2 = parts
        root = px.CODE_TO_ROOT[code]
        front = self.front.get(root)
        if front is None or month not in listed_months(root):
            return None  # e.g. an ES January contract: never listed, so "Contract not found"
        return Contract(contract_id, code, root, month, year2, contract_id == front.contract_id)

    def search_contracts(self, text: str) -> list[Contract]:
        needle = text.strip().upper()
        found = [
            c
            for c in self.front.values()
            if not needle or needle in c.code or needle in c.root or needle in c.payload()["name"]
        ]
        return found[:20]

    # -- orders ------------------------------------------------------------------------
    def order_payload(self, order: SimOrder) -> dict[str, Any]:
        account = self.accounts[order.account]
        payload = parsing.order_payload(
            order_id=self.brackets.gateway_id(order.order_id),
            account_id=account.account_id,
            contract_id=self.contract_id_for(order.symbol),
            created=order.created_at,
            updated=order.updated_at,
            status=order.status,
            order_type=order.order_type,
            side=order.side,
            size=order.quantity,
            limit_price=order.limit_price,
            stop_price=order.stop_price,
            fill_volume=order.filled_quantity,
            filled_price=_tick_price(order) if order.filled_quantity else None,
            custom_tag=order.client_order_id,
        )
        parent = self.brackets.parent_of(order.order_id)
        if parent is not None:
            payload["parentOrderId"] = parent
        return payload

    def child_payload(self, account: GatewayAccount, child: Child, symbol: str) -> dict[str, Any]:
        """A suspended (or cancelled-while-suspended) bracket child: status 8 and no price yet."""
        payload = parsing.order_payload(
            order_id=child.gateway_id,
            account_id=account.account_id,
            contract_id=self.contract_id_for(symbol),
            created=child.created,
            updated=child.updated,
            status=child.status,
            order_type=child.order_type,
            side=child.side,
            size=child.size,
            limit_price=None,
            stop_price=None,
            fill_volume=0,
            filled_price=None,
            custom_tag=child.tag,
        )
        if child.status is OrderStatus.PENDING:
            payload["status"] = int(px.OrderStatus.SUSPENDED)
        payload["parentOrderId"] = child.parent_gateway_id
        return payload

    def contract_id_for(self, symbol: str) -> str:
        """Kernel symbol → contract id, preferring the id a client actually traded."""
        known = self._symbols.get(symbol)
        if known:
            return known
        _, cid = parsing.contract_for_symbol(symbol)
        return cid or self.front[symbol].contract_id

    def kernel_symbol(self, contract: Contract) -> str:
        self._symbols.setdefault(contract.symbol, contract.contract_id)
        return contract.symbol

    def orders(self, account: GatewayAccount) -> list[SimOrder]:
        return list(self.exchange.account(account.name).orders.values())

    def position_payloads(self, account: GatewayAccount, only_open: bool = True) -> list[dict[str, Any]]:
        out = []
        for symbol, position in self.exchange.account(account.name).positions.items():
            if position.net_quantity or not only_open:
                out.append(self._position_payload(account, symbol, position.net_quantity, position.average_price))
        return out

    def _position_payload(self, account: GatewayAccount, symbol: str, net: int, avg: Decimal | None) -> dict[str, Any]:
        if symbol not in account.position_ids:
            account.position_ids[symbol] = next(self._position_ids)
            account.position_created[symbol] = utcnow()
        return parsing.position_payload(
            position_id=account.position_ids[symbol],
            account_id=account.account_id,
            contract_id=self.contract_id_for(symbol),
            created=account.position_created[symbol],
            net=net,
            average=avg,
        )

    # -- trailing stops ----------------------------------------------------------------
    def trail(self, order: SimOrder, distance: Decimal) -> None:
        self.trailing[order.order_id] = distance

    def follow_trailing(self) -> None:
        """Move each trailing stop after the market (never back): the kernel has no trailing."""
        for order_id, distance in list(self.trailing.items()):
            order = next((a.orders[order_id] for a in self.exchange.accounts.values() if order_id in a.orders), None)
            if order is None or order.status.is_final or order.stop_price is None:
                self.trailing.pop(order_id, None)
                continue
            last = self.exchange.prices.price(order.symbol)
            level = instrument_for(order.symbol).round_to_tick(last - order.side.opposite().sign * distance)
            if (order.side.sign < 0 and level > order.stop_price) or (order.side.sign > 0 and level < order.stop_price):
                self.exchange.modify(order.account, order_id, stop_price=level)

    # -- kernel events → pushes ----------------------------------------------------------
    def translate(self, event: KernelEvent) -> list[Push]:
        """One kernel event → the hub pushes it causes (empty for accounts we do not serve)."""
        account = self.accounts.get(event.account_id)
        if account is None:
            return []
        aid = account.account_id
        if isinstance(event, OrderEvent):
            order = self.exchange.account(account.name).orders[event.broker_order_id]
            pushes = [
                (px.EVENT_ORDER, aid, self.child_payload(account, child, order.symbol))
                for child in self._bracket_children(order)
            ]
            return pushes + [(px.EVENT_ORDER, aid, self.order_payload(order))] + self._settle_children(account, order)
        if isinstance(event, FillEvent):
            return self._trade_pushes(account, event)
        if isinstance(event, PositionEvent):
            return [
                (
                    px.EVENT_POSITION,
                    aid,
                    self._position_payload(account, event.symbol, event.net_quantity, event.average_price),
                )
            ]
        return []

    def _bracket_children(self, order: SimOrder) -> list[Child]:
        """Children of a bracketed entry, allocated the moment the entry exists (first event)."""
        if self.brackets.pending is not None and order.order_id not in self.brackets.children:
            return self.brackets.bind(order)
        return []

    def _settle_children(self, account: GatewayAccount, order: SimOrder) -> list[Push]:
        """An entry that ended: children go live (filled) or are cancelled (nothing filled)."""
        if not order.status.is_final or not self.brackets.suspended(order.order_id):
            return []
        if order.filled_quantity:
            for child in self.brackets.suspended(order.order_id):
                child.size = order.filled_quantity
            self._later(lambda: self.brackets.activate(order, instrument_for(order.symbol).tick_size))
            return []
        return [
            (px.EVENT_ORDER, account.account_id, self.child_payload(account, child, order.symbol))
            for child in self.brackets.cancel_suspended(order.order_id)
        ]

    @staticmethod
    def _later(action: Any) -> None:
        """After the kernel finished publishing this fill (a re-entrant submit would interleave)."""
        try:
            asyncio.get_running_loop().call_soon(action)
        except RuntimeError:
            action()

    def _trade_pushes(self, account: GatewayAccount, fill: FillEvent) -> list[Push]:
        existing = next((t for t in account.trades if t["id"] == int(fill.fill_id)), None)
        if existing is not None:  # duplicate_next_fill fault: the kernel repeats the same fill
            return [(px.EVENT_TRADE, account.account_id, existing)]
        position = self.exchange.account(account.name).positions.get(fill.symbol)
        realized = position.realized_pnl if position else Decimal(0)
        delta = realized - account.realized.get(fill.symbol, Decimal(0))
        account.realized[fill.symbol] = realized
        trade = parsing.trade_payload(
            trade_id=int(fill.fill_id),
            account_id=account.account_id,
            contract_id=self.contract_id_for(fill.symbol),
            created=fill.timestamp,
            price=fill.price,
            pnl=delta if delta else None,
            fees=self.fee * fill.quantity,
            side=fill.side,
            size=fill.quantity,
            order_id=self.brackets.gateway_id(fill.broker_order_id),
        )
        account.trades.append(trade)
        return [
            (px.EVENT_TRADE, account.account_id, trade),
            (px.EVENT_ACCOUNT, account.account_id, self.account_payload(account)),
        ]


def _tick_price(order: SimOrder) -> Decimal | None:
    """Average fill price as the gateway shows it (the kernel keeps full precision)."""
    if order.average_price is None:
        return None
    return order.average_price.quantize(Decimal("0.000000001"))

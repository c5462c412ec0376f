"""Order entry on the simulated DTC server: submit, cancel, cancel-replace, and kernel events.

Requests are checked the way the order-entry page asks a server to (strictest reading): a
ClientOrderID is required, and one that is open or was already used in the trading session is
rejected, never deduplicated into the earlier order. Every answer is an ORDER_UPDATE.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from decimal import Decimal

from ...instruments import instrument_for
from ...model import FillEvent, OrderEvent, OrderStatus, OrderType, PositionEvent, Side
from ...simkernel.exchange import KernelEvent, SimError, SimExchange
from ...simkernel.records import SimOrder
from .. import messages as m
from ..codec import Message, make
from ..messages import DBL_MAX, MsgType
from ..parsing import ORDER_TYPES, SIDES, TIME_IN_FORCE
from .session import Session
from .updates import (
    STATUS,
    fill_record,
    fill_update,
    order_update,
    position_update,
    refused_order,
    unix_seconds,
)

Reason = m.OrderUpdateReason
Publish = Callable[[str, Message], None]  # (trade account, message) to every session that owns it
CLIENT_ID_REUSE = ("reject", "new_order")


class Refused(Exception):
    """A request refused before it reached the kernel; the text goes into InfoText."""


def _price(value: float, what: str) -> Decimal:
    if not math.isfinite(value) or value == DBL_MAX or value <= 0:
        raise Refused(f"{what} is required and must be positive")
    return Decimal(repr(value))


def _quantity(value: float) -> int:
    if not math.isfinite(value) or value <= 0 or value != int(value):
        raise Refused(f"quantity {value} must be a positive whole number of contracts")
    return int(value)


class OrderDesk:
    """Turns order-entry messages into kernel calls and kernel events into ORDER_UPDATEs."""

    def __init__(
        self,
        exchange: SimExchange,
        publish: Publish,
        *,
        client_id_reuse: str = "reject",
        flatten_cancels_orders: bool = False,
    ) -> None:
        if client_id_reuse not in CLIENT_ID_REUSE:
            raise ValueError(f"client_id_reuse must be one of {CLIENT_ID_REUSE}")
        self.exchange = exchange
        self.publish = publish
        self.client_id_reuse = client_id_reuse
        self.flatten_cancels_orders = flatten_cancels_orders
        self.fills: dict[str, dict[str, FillEvent]] = {}  # account → fill id → fill (history)
        self.used_client_ids: set[tuple[str, str]] = set()  # (account, ClientOrderID) this session
        self.parents: set[tuple[str, str]] = set()  # (account, ClientOrderID) sent with IsParentOrder 1
        self._acked: set[str] = set()
        self._replacing: str | None = None

    # -- requests ---------------------------------------------------------------------------
    def submit(self, session: Session, msg: Message) -> None:
        client_id, symbol = msg.as_text("ClientOrderID"), msg.as_text("Symbol")
        account = msg.as_text("TradeAccount") or session.trade_account
        try:
            self._claim(session, account, client_id)
            kwargs = self._order_terms(msg)
        except Refused as exc:
            session.send(refused_order(client_id, account, symbol, str(exc), Reason.NEW_ORDER_REJECTED))
            return
        if msg.as_int("IsParentOrder"):
            self.parents.add((account, client_id))
        try:
            self.exchange.submit(account, symbol=symbol, client_order_id=client_id, **kwargs)  # type: ignore[arg-type]  # typed by _order_terms
        except SimError as exc:
            session.send(refused_order(client_id, account, symbol, str(exc), Reason.NEW_ORDER_REJECTED))

    def _claim(self, session: Session, account: str, client_id: str) -> None:
        """Check the account and the ClientOrderID, and mark the id used (even if refused later)."""
        if not client_id:
            raise Refused("ClientOrderID is required")
        if not session.owns(account):
            raise Refused(f"trade account {account!r} is not available to this logon")
        if (account, client_id) in self.used_client_ids and self.client_id_reuse == "reject":
            raise Refused(f"ClientOrderID {client_id!r} was already used in this trading session")
        self.used_client_ids.add((account, client_id))

    def flatten(self, session: Session, msg: Message) -> None:
        """Close the symbol's position with a market order carrying the request's ClientOrderID.

        Working orders are left alone unless ``flatten_cancels_orders``: whether a DTC server
        cancels them is undocumented, and leaving them is the answer a copier must survive.
        """
        client_id, symbol = msg.as_text("ClientOrderID"), msg.as_text("Symbol")
        account = msg.as_text("TradeAccount") or session.trade_account
        try:
            self._claim(session, account, client_id)
            position = self.exchange.account(account).positions.get(symbol)
            if position is None or not position.net_quantity:
                raise Refused(f"no {symbol} position to flatten")
        except Refused as exc:
            session.send(refused_order(client_id, account, symbol, str(exc), Reason.NEW_ORDER_REJECTED))
            return
        if self.flatten_cancels_orders:
            for order in self.exchange.open_orders(account):
                if order.symbol == symbol:
                    self.exchange.cancel(account, order.order_id, "flatten")
        side = Side.SELL if position.net_quantity > 0 else Side.BUY
        quantity = abs(position.net_quantity)
        self.exchange.submit(account, symbol=symbol, side=side, quantity=quantity, client_order_id=client_id)

    def historical_fills(self, session: Session, msg: Message) -> None:
        """HISTORICAL_ORDER_FILLS_REQUEST: every fill recorded, one response each (or NoOrderFills)."""
        request_id, wanted = msg.as_int("RequestID"), msg.as_text("TradeAccount")
        if session.login is None or (wanted and not session.owns(wanted)):
            text = f"trade account {wanted!r} is not available"
            session.send(make(MsgType.HISTORICAL_ORDER_FILLS_REJECT, RequestID=request_id, RejectText=text))
            return
        accounts = [wanted] if wanted else list(session.login.accounts)
        since = msg.as_int("StartDateTime")
        if not since and msg.as_int("NumberOfDays") > 0:
            since = int(time.time()) - 86400 * msg.as_int("NumberOfDays")
        server_id = msg.as_text("ServerOrderID")
        fills = [
            f
            for a in accounts
            for f in self.fills.get(a, {}).values()
            if (not server_id or f.broker_order_id == server_id) and unix_seconds(f.timestamp) >= since
        ]
        if not fills:
            empty = {"RequestID": request_id, "TotalNumberMessages": 1, "MessageNumber": 1, "NoOrderFills": 1}
            session.send(make(MsgType.HISTORICAL_ORDER_FILL_RESPONSE, **empty))
        for n, fill in enumerate(fills, start=1):
            extra = {"RequestID": request_id, "TotalNumberMessages": len(fills), "MessageNumber": n}
            session.send(fill_record(fill, **extra))

    def _order_terms(self, msg: Message) -> dict[str, object]:
        try:
            order_type = ORDER_TYPES[m.OrderType(msg.as_int("OrderType"))]
        except (ValueError, KeyError):
            raise Refused(f"order type {msg.as_int('OrderType')} is not supported") from None
        try:
            side = SIDES[m.BuySell(msg.as_int("BuySell"))]
        except (ValueError, KeyError):
            raise Refused("BuySell must be BUY (1) or SELL (2)") from None
        try:
            tif = TIME_IN_FORCE[m.TimeInForce(msg.as_int("TimeInForce"))]
        except (ValueError, KeyError):
            raise Refused(f"time in force {msg.as_int('TimeInForce')} is not supported") from None
        terms: dict[str, object] = {
            "side": side,
            "order_type": order_type,
            "time_in_force": tif,
            "quantity": _quantity(msg.as_float("Quantity")),
        }
        if order_type is OrderType.LIMIT:
            terms["limit_price"] = _price(msg.as_float("Price1"), "Price1 (limit price)")
        elif order_type is OrderType.STOP:
            terms["stop_price"] = _price(msg.as_float("Price1"), "Price1 (stop price)")
        elif order_type is OrderType.STOP_LIMIT:
            terms["stop_price"] = _price(msg.as_float("Price1"), "Price1 (stop price)")
            terms["limit_price"] = _price(msg.as_float("Price2"), "Price2 (limit price)")
        return terms

    def _find(self, session: Session, server_id: str, client_id: str) -> SimOrder | None:
        if session.login is None:
            return None
        for account_name in session.login.accounts:
            account = self.exchange.accounts.get(account_name)
            if account is None:
                continue
            if server_id:
                if server_id in account.orders:
                    return account.orders[server_id]
                continue
            matches = [o for o in account.orders.values() if client_id and o.client_order_id == client_id]
            if matches:
                return matches[-1]
        return None

    def cancel(self, session: Session, msg: Message) -> None:
        server_id, client_id = msg.as_text("ServerOrderID"), msg.as_text("ClientOrderID")
        order = self._find(session, server_id, client_id)
        if order is None:
            text = f"order {server_id or client_id!r} not found"
            session.send(refused_order(client_id, "", "", text, Reason.ORDER_CANCEL_REJECTED, server_id))
            return
        try:
            self.exchange.cancel(order.account, order.order_id)
        except SimError as exc:
            session.send(order_update(order, Reason.ORDER_CANCEL_REJECTED, InfoText=str(exc)[:95]))

    def cancel_replace(self, session: Session, msg: Message) -> None:
        server_id, client_id = msg.as_text("ServerOrderID"), msg.as_text("ClientOrderID")
        order = self._find(session, server_id, client_id)
        if order is None:
            text = f"order {server_id or client_id!r} not found"
            session.send(refused_order(client_id, "", "", text, Reason.ORDER_CANCEL_REPLACE_REJECTED, server_id))
            return
        try:
            changes = self._changes(order, msg)
        except Refused as exc:
            session.send(order_update(order, Reason.ORDER_CANCEL_REPLACE_REJECTED, InfoText=str(exc)[:95]))
            return
        self._replacing = order.order_id
        try:
            self.exchange.modify(order.account, order.order_id, **changes)  # type: ignore[arg-type]  # typed by _changes
        except SimError as exc:
            session.send(order_update(order, Reason.ORDER_CANCEL_REPLACE_REJECTED, InfoText=str(exc)[:95]))
        finally:
            self._replacing = None

    def _changes(self, order: SimOrder, msg: Message) -> dict[str, object]:
        changes: dict[str, object] = {}
        quantity = msg.as_float("Quantity")
        if quantity not in (0.0, DBL_MAX):  # 0 / unset: quantity unchanged (our reading)
            changes["quantity"] = _quantity(quantity)
        tif = msg.as_int("TimeInForce")
        if tif:
            try:
                wanted = TIME_IN_FORCE[m.TimeInForce(tif)]
            except (ValueError, KeyError):
                raise Refused(f"time in force {tif} is not supported") from None
            if wanted is not order.time_in_force:
                raise Refused("changing TimeInForce is not supported")
        prices: list[tuple[str, str]] = []
        if order.order_type is OrderType.LIMIT:
            prices = [("Price1", "limit_price")]
        elif order.order_type is OrderType.STOP:
            prices = [("Price1", "stop_price")]
        elif order.order_type is OrderType.STOP_LIMIT:
            prices = [("Price1", "stop_price"), ("Price2", "limit_price")]
        for wire, kernel in prices:
            if msg.as_int(f"{wire}IsSet"):
                price = _price(msg.as_float(wire), wire)
                if instrument_for(order.symbol).round_to_tick(price) != price:
                    raise Refused(f"{wire} {price} is not a multiple of the tick size")
                changes[kernel] = price
        if not changes:
            raise Refused("nothing to change")
        return changes

    # -- kernel events ------------------------------------------------------------------------
    def forget(self, account: str, orders: list[SimOrder]) -> None:
        """The kernel forgot these finished orders (its history limit): their fills leave the
        fill history and their marks go. ``used_client_ids`` stays: a ClientOrderID is refused
        again for the whole trading session, whatever the history forgot (never more forgiving)."""
        order_ids = {order.order_id for order in orders}
        fills = self.fills.get(account, {})
        for fill_id in [f.fill_id for f in fills.values() if f.broker_order_id in order_ids]:
            del fills[fill_id]
        for order in orders:
            self._acked.discard(order.order_id)
            if order.client_order_id:
                self.parents.discard((account, order.client_order_id))

    def on_event(self, event: KernelEvent) -> None:
        if isinstance(event, OrderEvent):
            self._on_order(event)
        elif isinstance(event, FillEvent):
            self.fills.setdefault(event.account_id, {})[event.fill_id] = event  # a repeat is one fill
            order = self.exchange.account(event.account_id).orders[event.broker_order_id]
            self.publish(event.account_id, fill_update(order, event))
        elif isinstance(event, PositionEvent):
            self.publish(event.account_id, position_update(event, Unsolicited=1))
        # FillCorrection: DTC has no message for a bust or a correction, so nothing is sent.

    def _on_order(self, event: OrderEvent) -> None:
        order = self.exchange.account(event.account_id).orders[event.broker_order_id]
        if self._replacing == order.order_id:
            self._replacing = None
            # the ServerOrderID is kept (undocumented either way), so Previous = current
            update = order_update(order, Reason.ORDER_CANCEL_REPLACE_COMPLETE, PreviousServerOrderID=order.order_id)
            self.publish(order.account, update)
            return
        if event.status is OrderStatus.REJECTED:
            reason = Reason.NEW_ORDER_REJECTED
        elif event.status in (OrderStatus.CANCELLED, OrderStatus.EXPIRED):
            reason = Reason.ORDER_CANCELED
        elif event.status in (OrderStatus.PARTIALLY_FILLED, OrderStatus.FILLED):
            return  # the FillEvent that follows carries the fill
        elif order.order_id not in self._acked:
            reason = Reason.NEW_ORDER_ACCEPTED
        else:
            reason = Reason.GENERAL_ORDER_UPDATE
        self._acked.add(order.order_id)
        self.publish(order.account, order_update(order, reason, OrderStatus=int(STATUS[event.status])))

"""The simulated exchange every simulator and the paper platform share.

Synchronous and I/O-free (sans-I/O): a driver — a platform's wire server or the in-process
paper adapter — calls it and turns the events it publishes into that platform's messages.
Time moves only when the driver calls :meth:`SimExchange.advance` (or pins a price with
:meth:`SimExchange.set_price`), so tests are deterministic.
"""

from __future__ import annotations

import itertools
from collections import OrderedDict
from collections.abc import Callable
from decimal import Decimal

from ...common.clock import utcnow
from ..instruments import Instrument, instrument_for
from ..model import (
    Bracket,
    FillCorrection,
    FillEvent,
    OrderEvent,
    OrderStatus,
    OrderType,
    PositionEvent,
    Side,
    TimeInForce,
)
from ..positions import apply_fill, undo_fill
from .pricepath import PricePath
from .records import REJECT_CODES, SimAccount, SimError, SimOrder, SimPosition

__all__ = [
    "REJECT_CODES",
    "FaultListener",
    "ForgetListener",
    "KernelEvent",
    "Listener",
    "SimAccount",
    "SimError",
    "SimExchange",
    "SimOrder",
    "SimPosition",
]

KernelEvent = OrderEvent | FillEvent | FillCorrection | PositionEvent
Listener = Callable[[KernelEvent], None]
FaultListener = Callable[[str], None]
#: Told ``(account name, orders)`` when the kernel forgets finished orders, so a simulator
#: drops its own per-order tables with them (its memory stays bounded like the kernel's).
ForgetListener = Callable[[str, list[SimOrder]], None]


#: Finished orders an account keeps (working ones are always kept). A real broker's order
#: history is the trading day's; a simulator that kept every order forever would grow without
#: bound in a long run (the soak), so the oldest finished orders are forgotten beyond this.
HISTORY_LIMIT = 5000
#: OCO groups remembered as "one member filled" (only a group's last moments need it).
OCO_MEMORY = 10_000

# Enum members named once: reading ``OrderType.STOP`` costs an enum lookup (Python 3.11), and
# the matcher reads several per working order per tick of market time (#16).
_STOP_KINDS = (OrderType.STOP, OrderType.STOP_LIMIT)
_PRICED_BY_LAST = (OrderType.MARKET, OrderType.STOP)
_LIMIT = OrderType.LIMIT
_BUY = Side.BUY
_PENDING = OrderStatus.PENDING
_IMMEDIATE = (TimeInForce.IOC, TimeInForce.FOK)
_INSTRUMENTS: dict[str, Instrument] = {}  # symbol → its instrument, for the symbols traded here


def _instrument(symbol: str) -> Instrument:
    """``instrument_for``, remembered per symbol (it parses the symbol with a regex each time)."""
    found = _INSTRUMENTS.get(symbol)
    if found is None:
        found = instrument_for(symbol)  # an unknown symbol raises, and is not remembered
        if len(_INSTRUMENTS) < 4096:
            _INSTRUMENTS[symbol] = found
    return found


class SimExchange:
    def __init__(
        self,
        seed: int = 7,
        prices: PricePath | None = None,
        *,
        dedupe_client_ids: bool = False,
        history_limit: int = HISTORY_LIMIT,
    ) -> None:
        """``dedupe_client_ids`` off (the default) is what real platforms promise: nothing. A
        repeated client order id is a new order, so the copier must not rely on a refusal.
        ``history_limit``: finished orders kept per account; older ones are forgotten, as a
        broker forgets a past day's orders (a lookup then finds nothing)."""
        if history_limit < 1:
            raise ValueError(f"history_limit must be at least 1, got {history_limit}")
        self.prices = prices or PricePath(seed)
        self.dedupe_client_ids = dedupe_client_ids
        self.history_limit = history_limit
        self.accounts: dict[str, SimAccount] = {}
        self._ids = itertools.count(1001)
        self._fill_ids = itertools.count(5001)
        self._listeners: list[Listener] = []
        self._live: dict[str, SimOrder] = {}  # working orders, pruned lazily as they finish
        self._fault_listeners: list[FaultListener] = []
        self._children: dict[str, list[SimOrder]] = {}  # parent order id → held OSO children
        self._oco_filled: OrderedDict[str, None] = OrderedDict()  # OCO groups one member of which filled
        self._forget_listeners: list[ForgetListener] = []
        self._prune_live_at = 64  # ``_live`` is pruned of finished orders when it grows past this

    # -- wiring ----------------------------------------------------------------------
    def add_listener(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def remove_listener(self, listener: Listener) -> None:
        self._listeners.remove(listener)

    def add_forget_listener(self, listener: ForgetListener) -> None:
        self._forget_listeners.append(listener)

    def remove_forget_listener(self, listener: ForgetListener) -> None:
        self._forget_listeners.remove(listener)

    def add_fault_listener(self, listener: FaultListener) -> None:
        """Transports register here to act on a transport fault at once (drop the socket now)
        instead of noticing it on the next request or heartbeat."""
        self._fault_listeners.append(listener)

    def remove_fault_listener(self, listener: FaultListener) -> None:
        self._fault_listeners.remove(listener)

    def faults_changed(self, account_name: str) -> None:
        """A test flipped a switch on ``account_name``'s faults: tell the transports."""
        for listener in list(self._fault_listeners):
            listener(account_name)

    def _publish(self, event: KernelEvent) -> None:
        for listener in list(self._listeners):
            listener(event)

    def open_account(
        self, name: str, balance: Decimal = Decimal(50000), *, max_order_quantity: int = 1000
    ) -> SimAccount:
        account = self.accounts.get(name)
        if account is None:
            account = self.accounts[name] = SimAccount(
                name=name, balance=balance, max_order_quantity=max_order_quantity
            )
        return account

    def account(self, name: str) -> SimAccount:
        try:
            return self.accounts[name]
        except KeyError:
            raise SimError(f"unknown account {name!r}", "unknown_account") from None

    # -- order entry -----------------------------------------------------------------
    def submit(
        self,
        account_name: str,
        *,
        symbol: str,
        side: Side,
        quantity: int,
        order_type: OrderType = OrderType.MARKET,
        limit_price: Decimal | None = None,
        stop_price: Decimal | None = None,
        time_in_force: TimeInForce = TimeInForce.DAY,
        client_order_id: str | None = None,
        bracket: Bracket | None = None,
        oco_group: str | None = None,
        parent_id: str | None = None,
    ) -> tuple[SimOrder, bool]:
        """Accept or reject a new order; returns ``(order, duplicate)``.

        A repeated client order id is a second order unless the exchange was built with
        ``dedupe_client_ids`` (then the original order is returned untouched, ``duplicate``).
        ``parent_id`` makes an order-sends-order child (Tradovate placeOSO): it is held
        (PENDING, never matched) until its parent fills, and cancelled if the parent ends unfilled.
        """
        account = self.account(account_name)
        if self.dedupe_client_ids and client_order_id and client_order_id in account.by_client_id:
            return account.orders[account.by_client_id[client_order_id]], True
        order = SimOrder(
            order_id=str(next(self._ids)),
            account=account_name,
            client_order_id=client_order_id,
            symbol=symbol,
            side=side,
            order_type=order_type,
            quantity=quantity,
            limit_price=limit_price,
            stop_price=stop_price,
            time_in_force=time_in_force,
            bracket=bracket,
            oco_group=oco_group,
            parent_id=parent_id,
        )
        account.orders[order.order_id] = order
        if len(account.orders) > self.history_limit + self._trim_slack:
            self._forget_oldest(account)
        if parent_id is not None:
            return self._hold(account, order), False
        self._live[order.order_id] = order
        if len(self._live) > self._prune_live_at:  # no market time may pass between orders
            self._live_orders()
            self._prune_live_at = 2 * len(self._live) + 64
        if client_order_id:
            account.by_client_id.setdefault(client_order_id, order.order_id)  # the first one
        rejected = self._reject_reason(account, order)
        if rejected:
            order.reject_code, order.reason = rejected
            order.status = OrderStatus.REJECTED
            self._publish(order.to_event())
            return order, False
        self._publish(order.to_event())
        self._match(order)
        return order, False

    @property
    def _trim_slack(self) -> int:
        """Trim in batches (a tenth of the limit), so forgetting costs O(1) per order."""
        return max(1, self.history_limit // 10)

    def _forget_oldest(self, account: SimAccount) -> None:
        """Drop the oldest finished orders (and their client-id entries) down to the limit."""
        finished = [o for o in account.orders.values() if o.status.is_final]
        excess = len(account.orders) - self.history_limit
        forgotten = finished[: max(0, excess)]
        for order in forgotten:
            del account.orders[order.order_id]
            self._children.pop(order.order_id, None)
            if order.client_order_id and account.by_client_id.get(order.client_order_id) == order.order_id:
                del account.by_client_id[order.client_order_id]
        if forgotten:
            for listener in list(self._forget_listeners):
                listener(account.name, forgotten)

    def _hold(self, account: SimAccount, order: SimOrder) -> SimOrder:
        """Accept a child order without working it; ``_release_children`` starts it."""
        if order.client_order_id:
            account.by_client_id.setdefault(order.client_order_id, order.order_id)
        order.status = OrderStatus.PENDING
        assert order.parent_id is not None
        self._children.setdefault(order.parent_id, []).append(order)
        self._publish(order.to_event())
        parent = account.orders.get(order.parent_id)
        if parent is not None and parent.status.is_final:  # the parent filled before its children came
            self._release_children(parent)
        return order

    def _release_children(self, parent: SimOrder) -> None:
        """The parent is final: work its held children for the filled quantity, or cancel them."""
        for child in self._children.pop(parent.order_id, []):
            if child.status is not OrderStatus.PENDING:
                continue
            if parent.filled_quantity <= 0:
                self._finish(child, OrderStatus.CANCELLED, f"parent {parent.status.value}")
                continue
            if child.oco_group in self._oco_filled:  # its sibling was released first and filled
                self._finish(child, OrderStatus.CANCELLED, "oco sibling filled")
                continue
            child.quantity, child.status, child.updated_at = parent.filled_quantity, OrderStatus.WORKING, utcnow()
            self._live[child.order_id] = child
            self._publish(child.to_event())
            self._match(child)

    def _reject_reason(self, account: SimAccount, order: SimOrder) -> tuple[str, str] | None:
        """``(code, text)`` of why the order is refused, or None to accept it."""
        faulted = account.faults.take_reject()
        if faulted:
            return "fault", faulted
        try:
            instrument = _instrument(order.symbol)
        except (KeyError, ValueError) as exc:
            return "unknown_contract", f"unknown contract: {exc}"
        if order.quantity <= 0:
            return "invalid_quantity", "quantity must be positive"
        if order.quantity > account.max_order_quantity:
            return "max_order_size", (f"quantity {order.quantity} exceeds max order size {account.max_order_quantity}")
        for price in (order.limit_price, order.stop_price):
            if price is not None and (price <= 0 or instrument.round_to_tick(price) != price):
                return "invalid_price", (
                    f"invalid price {price}: not a positive multiple of tick {instrument.tick_size}"
                )
        return None

    def modify(
        self,
        account_name: str,
        order_id: str,
        *,
        quantity: int | None = None,
        limit_price: Decimal | None = None,
        stop_price: Decimal | None = None,
    ) -> SimOrder:
        order = self._working(account_name, order_id)
        if quantity is not None:
            if quantity <= order.filled_quantity:
                raise SimError(f"quantity {quantity} not above filled {order.filled_quantity}", "invalid_quantity")
            order.quantity = quantity
        if limit_price is not None:
            order.limit_price = limit_price
        if stop_price is not None:
            order.stop_price = stop_price
        order.updated_at = utcnow()
        self._publish(order.to_event())
        self._match(order)
        return order

    def cancel(self, account_name: str, order_id: str, reason: str | None = None) -> SimOrder:
        """Cancel a working order.

        With ``faults.fill_before_cancel`` the matching engine fills the order just before the
        cancel is processed, as when a cancel and a fill cross on the wire: the fill events are
        published and the cancel fails with code ``too_late``.
        """
        order = self._working(account_name, order_id)
        if self.account(account_name).faults.take_fill_before_cancel():
            price = order.limit_price if order.order_type is OrderType.LIMIT else None
            self._fill(order, order.leaves_quantity, price or self.prices.price(order.symbol))
            raise SimError(f"order {order_id} is already filled: too late to cancel", "too_late")
        self._finish(order, OrderStatus.CANCELLED, reason)
        return order

    def flatten(
        self, account_name: str, symbol: str | None = None, client_order_id: str | None = None
    ) -> list[SimOrder]:
        """Cancel working orders, then close positions with market orders (returned).

        ``client_order_id`` tags the closing orders, so a flatten can be found again by its id.
        """
        account = self.account(account_name)
        for order in list(account.orders.values()):
            if not order.status.is_final and (symbol is None or order.symbol == symbol):
                self._finish(order, OrderStatus.CANCELLED, "flatten")
        closing = []
        for sym, position in list(account.positions.items()):
            if position.net_quantity and (symbol is None or sym == symbol):
                side = Side.SELL if position.net_quantity > 0 else Side.BUY
                order, _ = self.submit(
                    account_name,
                    symbol=sym,
                    side=side,
                    quantity=abs(position.net_quantity),
                    client_order_id=client_order_id,
                )
                closing.append(order)
        return closing

    def find_by_client_id(self, account_name: str, client_order_id: str) -> SimOrder | None:
        account = self.account(account_name)
        order_id = account.by_client_id.get(client_order_id)
        return account.orders.get(order_id) if order_id else None

    def orders_with_client_id(self, account_name: str, client_order_id: str) -> list[SimOrder]:
        """Every order the account holds under that client id: the books' own count of copies."""
        return [o for o in self.account(account_name).orders.values() if o.client_order_id == client_order_id]

    def open_orders(self, account_name: str) -> list[SimOrder]:
        return [o for o in self.account(account_name).orders.values() if not o.status.is_final]

    def position_event(self, account_name: str, symbol: str) -> PositionEvent:
        position = self.account(account_name).positions.get(symbol, SimPosition())
        return PositionEvent(
            account_id=account_name,
            symbol=symbol,
            net_quantity=position.net_quantity,
            average_price=position.average_price,
            realized_pnl=position.realized_pnl,
        )

    # -- time ------------------------------------------------------------------------
    def advance(self, steps: int = 1) -> None:
        """``steps`` steps of market time: move prices, then trade whatever became marketable."""
        for _ in range(steps):
            active = {o.symbol for o in self._live_orders()}
            for symbol in active | set(self.prices.symbols()):
                self.prices.step(symbol)
            self._match_all()

    def set_price(self, symbol: str, price: Decimal) -> Decimal:
        """Pin the last price (rounded to tick) and trade what became marketable at exactly it.

        Unlike ``prices.set_price`` followed by ``advance`` there is no random step in between,
        so a scenario knows the fill price it expects. Returns the pinned price.
        """
        self.prices.set_price(symbol, price)
        self._match_all(symbol)
        return self.prices.price(symbol)

    def _match_all(self, symbol: str | None = None) -> None:
        last_price = self.prices.price
        for order in self._live_orders():
            if not order.status.is_final and (symbol is None or order.symbol == symbol):
                if self._resting(order, last_price(order.symbol)):
                    continue  # what ``_match`` would find, without its work: nothing to do
                self._match(order)

    @staticmethod
    def _resting(order: SimOrder, last: Decimal) -> bool:
        """A working day or GTC limit the last price does not reach: ``_match`` would leave it
        untouched. Every tick asks this of every resting order, so it is the cheap question."""
        if order.order_type is not _LIMIT or order.time_in_force in _IMMEDIATE or order.status is _PENDING:
            return False
        limit = order.limit_price
        assert limit is not None
        return last > limit if order.side is _BUY else last < limit

    def _live_orders(self) -> list[SimOrder]:
        """Working orders only: market time must not cost more as filled history grows."""
        for order_id in [i for i, o in self._live.items() if o.status.is_final]:
            del self._live[order_id]
        return list(self._live.values())

    def expire_day_orders(self) -> None:
        for account in self.accounts.values():
            for order in list(account.orders.values()):
                if not order.status.is_final and order.time_in_force is TimeInForce.DAY:
                    self._finish(order, OrderStatus.EXPIRED, "session end")

    # -- matching ----------------------------------------------------------------------
    def _match(self, order: SimOrder) -> None:
        if order.status is _PENDING and order.parent_id is not None:
            return  # an OSO child waits for its parent
        last = self.prices.price(order.symbol)
        price = self._marketable_price(order, last)
        if price is None:
            if order.time_in_force in _IMMEDIATE:
                self._finish(order, OrderStatus.EXPIRED, "not marketable")
            return
        lot = self.account(order.account).faults.partial_fill_lot
        if order.time_in_force is TimeInForce.FOK and lot and lot < order.leaves_quantity:
            self._finish(order, OrderStatus.EXPIRED, "fill or kill: not enough liquidity")
            return
        quantity = min(lot, order.leaves_quantity) if lot else order.leaves_quantity
        self._fill(order, quantity, price)
        if order.time_in_force is TimeInForce.IOC and not order.status.is_final:
            self._finish(order, OrderStatus.CANCELLED, "immediate or cancel remainder")

    @staticmethod
    def _marketable_price(order: SimOrder, last: Decimal) -> Decimal | None:
        buy = order.side is _BUY
        if order.order_type in _STOP_KINDS and not order.triggered:
            assert order.stop_price is not None
            if (buy and last >= order.stop_price) or (not buy and last <= order.stop_price):
                order.triggered = True
            else:
                return None
        if order.order_type in _PRICED_BY_LAST:
            return last
        assert order.limit_price is not None
        if (buy and last <= order.limit_price) or (not buy and last >= order.limit_price):
            return order.limit_price
        return None

    def _fill(self, order: SimOrder, quantity: int, price: Decimal) -> None:
        account = self.account(order.account)
        previous = order.filled_quantity
        order.filled_quantity += quantity
        cost = (order.average_price or Decimal(0)) * previous + price * quantity
        order.average_price = cost / order.filled_quantity
        order.status = OrderStatus.FILLED if order.leaves_quantity == 0 else OrderStatus.PARTIALLY_FILLED
        order.updated_at = utcnow()
        fill = FillEvent(
            account_id=order.account,
            client_order_id=order.client_order_id,
            broker_order_id=order.order_id,
            fill_id=str(next(self._fill_ids)),
            symbol=order.symbol,
            side=order.side,
            quantity=quantity,
            price=price,
            cumulative_quantity=order.filled_quantity,
            leaves_quantity=order.leaves_quantity,
            timestamp=order.updated_at,
        )
        self._apply_to_position(account, order.symbol, order.side.sign * quantity, price)
        self._publish(order.to_event())
        self._publish(fill)
        if account.faults.take_duplicate_fill():
            self._publish(fill)
        self._publish(self.position_event(order.account, order.symbol))
        correction = account.faults.take_fill_correction()
        if correction is not None:
            self._correct_fill(order, fill, *correction)
        if order.status is OrderStatus.FILLED:
            self._after_full_fill(order)

    def _correct_fill(
        self, order: SimOrder, fill: FillEvent, busted: bool, price: Decimal | None, quantity: int | None
    ) -> None:
        """Bust or correct a fill already reported: the position takes the difference. The order
        keeps its state (an exchange does not reopen a done order for a bust)."""
        account = self.account(order.account)
        new_qty = 0 if busted else (fill.quantity if quantity is None else quantity)
        new_price = None if busted else (fill.price if price is None else price)
        position = account.positions.setdefault(order.symbol, SimPosition())
        position.net_quantity, position.average_price, pnl = undo_fill(
            position.net_quantity,
            position.average_price,
            order.side.sign * fill.quantity,
            fill.price,
            _instrument(order.symbol).point_value,
        )
        position.realized_pnl += pnl
        account.balance += pnl
        if new_qty and new_price is not None:
            self._apply_to_position(account, order.symbol, order.side.sign * new_qty, new_price)
        self._publish(
            FillCorrection(
                account_id=order.account,
                client_order_id=order.client_order_id,
                broker_order_id=order.order_id,
                fill_id=fill.fill_id,
                correction_id=str(next(self._fill_ids)),
                symbol=order.symbol,
                side=order.side,
                busted=busted,
                quantity=new_qty,
                price=new_price,
                original_quantity=fill.quantity,
                original_price=fill.price,
            )
        )
        self._publish(self.position_event(order.account, order.symbol))

    def _apply_to_position(self, account: SimAccount, symbol: str, signed_qty: int, price: Decimal) -> None:
        position = account.positions.setdefault(symbol, SimPosition())
        position.net_quantity, position.average_price, pnl = apply_fill(
            position.net_quantity, position.average_price, signed_qty, price, _instrument(symbol).point_value
        )
        position.realized_pnl += pnl
        account.balance += pnl

    def _after_full_fill(self, order: SimOrder) -> None:
        """OCO siblings are cancelled; a bracketed entry spawns its two exits as an OCO pair."""
        account = self.account(order.account)
        if order.oco_group:
            self._oco_filled[order.oco_group] = None
            if len(self._oco_filled) > OCO_MEMORY:
                self._oco_filled.popitem(last=False)
            for other in account.orders.values():
                if other.oco_group == order.oco_group and other is not order and not other.status.is_final:
                    self._finish(other, OrderStatus.CANCELLED, "oco sibling filled")
        if order.bracket and order.average_price is not None:
            self._spawn_bracket(order, order.bracket, order.average_price)
        self._release_children(order)

    def _spawn_bracket(self, entry: SimOrder, bracket: Bracket, entry_price: Decimal) -> None:
        exit_side = entry.side.opposite()
        direction = entry.side.sign
        group = f"oco-{entry.order_id}"
        if bracket.take_profit is not None:
            self.submit(
                entry.account,
                symbol=entry.symbol,
                side=exit_side,
                quantity=entry.quantity,
                order_type=OrderType.LIMIT,
                limit_price=entry_price + direction * bracket.take_profit,
                time_in_force=TimeInForce.GTC,
                oco_group=group,
            )
        if bracket.stop_loss is not None:
            self.submit(
                entry.account,
                symbol=entry.symbol,
                side=exit_side,
                quantity=entry.quantity,
                order_type=OrderType.STOP,
                stop_price=entry_price - direction * bracket.stop_loss,
                time_in_force=TimeInForce.GTC,
                oco_group=group,
            )

    def _working(self, account_name: str, order_id: str) -> SimOrder:
        order = self.account(account_name).orders.get(order_id)
        if order is None:
            raise SimError(f"unknown order {order_id}", "unknown_order")
        if order.status.is_final:
            raise SimError(f"order {order_id} is already {order.status.value}", "already_final")
        return order

    def _finish(self, order: SimOrder, status: OrderStatus, reason: str | None) -> None:
        order.status, order.reason, order.updated_at = status, reason, utcnow()
        self._publish(order.to_event())
        self._release_children(order)

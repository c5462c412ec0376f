"""What NinjaTrader does with an ATI command line, on the shared simulator kernel.

Route-agnostic: the TCP server and the folder watcher hand lines to :meth:`NtDesk.execute`
and turn what the desk reports (order states, positions, order lists, the connection) into
VALUE pushes or outgoing files. The kernel trades; the desk adds NinjaTrader's rules:

* a line the strict parser refuses (field count, prices not in US decimal, unknown order type
  or TIF), an unknown account, an instrument NinjaTrader does not know, an ATM strategy, or a
  command this simulator does not carry out (CLOSESTRATEGY, REVERSEPOSITION) is refused with
  its reason in :attr:`NtDesk.log`, NinjaTrader's log tab. Nothing is sent back for it: the ATI
  has no reply to a command (N-tk), so the client hears nothing, as from NinjaTrader.
* a repeated ORDER ID is a second order (the help guide asks for unique ids and never says it
  refuses a repeat: assume the worst). Its values overwrite the first one's, as one key can hold
  one value.
* orders go through NinjaTrader 8's states (N-st): Submitted, Accepted, Working (or
  TriggerPending for a stop-limit not yet triggered), ChangeSubmitted, CancelPending,
  PartFilled, Filled, Cancelled, Rejected.
* while the broker connection is down (:meth:`set_connected`), a PLACE is Rejected.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

from ...model import OrderEvent, OrderStatus, OrderType, PositionEvent, Side, TimeInForce
from ...simkernel.exchange import KernelEvent, SimError, SimExchange, SimOrder
from ..commandline import AtiCommand, Command, CommandError, NtOrderType, parse
from ..states import NtState, OrderReport, PositionReport
from ..symbols import SymbolError, from_instrument, to_instrument

#: NinjaTrader's averages are doubles: ten places is more than a double carries for a price.
AVERAGE_PLACES = Decimal("1e-10")
KERNEL_TYPES = {
    NtOrderType.MARKET: OrderType.MARKET,
    NtOrderType.LIMIT: OrderType.LIMIT,
    NtOrderType.STOPMARKET: OrderType.STOP,
    NtOrderType.STOP: OrderType.STOP,
    NtOrderType.STOPLIMIT: OrderType.STOP_LIMIT,
}
KERNEL_STATES = {
    OrderStatus.PENDING: NtState.ACCEPTED,
    OrderStatus.WORKING: NtState.WORKING,
    OrderStatus.PARTIALLY_FILLED: NtState.PART_FILLED,
    OrderStatus.FILLED: NtState.FILLED,
    OrderStatus.CANCELLED: NtState.CANCELLED,
    OrderStatus.REJECTED: NtState.REJECTED,
    OrderStatus.EXPIRED: NtState.CANCELLED,  # NinjaTrader 8 has no expired state
}


@dataclass(frozen=True, slots=True)
class Refusal:
    """One line NinjaTrader would not carry out, and why (its log tab)."""

    line: str
    reason: str


OrderListener = Callable[[str, str, OrderReport, bool], None]  # account, order id, report, tagged
PositionListener = Callable[[str, str, PositionReport], None]  # account, instrument, report
ListListener = Callable[[str, list[str]], None]  # account, every order id of the account


class NtDesk:
    def __init__(self, exchange: SimExchange, accounts: list[str]) -> None:
        self.exchange = exchange
        self.accounts: list[str] = []
        self.log: list[Refusal] = []
        self.lines = 0
        self.connected = True
        self._orders: dict[str, list[str]] = {}  # account → order ids, in order of placing
        self._nt_ids: dict[str, str] = {}  # kernel order id → ORDER ID
        self._tagged: set[str] = set()  # ORDER IDs the client gave (only they get a file)
        self._latest: dict[str, SimOrder] = {}  # ORDER ID → the newest order placed under it
        self._placing: str | None = None  # the ORDER ID of the PLACE the kernel is taking now
        self.reports: dict[str, OrderReport] = {}
        self.order_listeners: list[OrderListener] = []
        self.position_listeners: list[PositionListener] = []
        self.list_listeners: list[ListListener] = []
        for account in accounts:
            self.add_account(account)

    def add_account(self, account: str) -> None:
        if account not in self.accounts:
            self.accounts.append(account)
            self._orders.setdefault(account, [])
            self.exchange.open_account(account)

    # -- the kernel's events ---------------------------------------------------------------
    def on_event(self, event: KernelEvent) -> None:
        if isinstance(event, OrderEvent) and event.account_id in self._orders:
            self._order_event(event)
        elif isinstance(event, PositionEvent) and event.account_id in self._orders:
            try:
                instrument = to_instrument(event.symbol)
            except SymbolError:
                return
            report = PositionReport(event.net_quantity, event.average_price or Decimal(0))
            for listener in list(self.position_listeners):
                listener(event.account_id, instrument, report)

    def _order_event(self, event: OrderEvent) -> None:
        order = self.exchange.account(event.account_id).orders.get(event.broker_order_id)
        if order is None:
            return
        nt_id = self._nt_ids.get(order.order_id)
        if nt_id is None:  # a new kernel order: the one being placed, or one the kernel made
            placing = self._placing is not None and order.client_order_id == self._placing
            nt_id = self._placing if placing and self._placing else uuid.uuid4().hex
            self._nt_ids[order.order_id] = nt_id
            self._latest[nt_id] = order  # a repeated id now names the newest order
            if not placing:  # a flatten's closing order: NinjaTrader gives it an id of its own
                self._list(event.account_id, nt_id)
        if self._latest.get(nt_id) is not order:
            return  # an older order under a repeated id: its keys now name the newer one
        state = KERNEL_STATES[event.status]
        if state is NtState.WORKING and order.order_type is OrderType.STOP_LIMIT and not order.triggered:
            state = NtState.TRIGGER_PENDING
        self._report(event.account_id, nt_id, state, order.filled_quantity, order.average_price)

    def _report(
        self, account: str, nt_id: str, state: NtState, filled: int = 0, average: Decimal | None = None
    ) -> None:
        report = OrderReport(state, filled, (average or Decimal(0)).quantize(AVERAGE_PLACES))
        self.reports[nt_id] = report
        for listener in list(self.order_listeners):
            listener(account, nt_id, report, nt_id in self._tagged)

    def _list(self, account: str, nt_id: str) -> None:
        self._orders[account].append(nt_id)
        for listener in list(self.list_listeners):
            listener(account, list(self._orders[account]))

    def order_ids(self, account: str) -> list[str]:
        return list(self._orders.get(account, []))

    def latest(self, nt_id: str) -> SimOrder | None:
        return self._latest.get(nt_id)

    def is_tagged(self, nt_id: str) -> bool:
        return nt_id in self._tagged

    def set_connected(self, connected: bool) -> None:
        self.connected = connected

    def forget_orders(self, account: str, orders: list[SimOrder]) -> None:
        """The kernel forgot these finished orders (its history limit): their ORDER IDs leave
        the account's list and reports, so ``Orders``/``OrderStatus`` no longer know them."""
        gone: set[str] = set()
        for order in orders:
            nt_id = self._nt_ids.pop(order.order_id, None)
            if nt_id is not None and self._latest.get(nt_id) is order:
                del self._latest[nt_id]
                self._tagged.discard(nt_id)
                self.reports.pop(nt_id, None)
                gone.add(nt_id)
        if gone and account in self._orders:
            self._orders[account] = [nt_id for nt_id in self._orders[account] if nt_id not in gone]

    def forget(self) -> None:
        """NinjaTrader restarted: its ATI forgets every ORDER ID (the broker keeps the orders)."""
        self._orders = {account: [] for account in self.accounts}
        self._nt_ids.clear()
        self._tagged.clear()
        self._latest.clear()
        self.reports.clear()

    # -- commands ----------------------------------------------------------------------------
    def execute(self, line: str) -> Refusal | None:
        """Carry out one line; a refusal is logged and returned (never raised)."""
        self.lines += 1
        try:
            command = parse(line)
            self._dispatch(command)
        except (CommandError, SymbolError) as exc:
            return self._refuse(line, str(exc))
        except SimError as exc:
            return self._refuse(line, exc.args[0] if exc.args else str(exc))
        return None

    def _refuse(self, line: str, reason: str) -> Refusal:
        refusal = Refusal(line[:200], reason)
        self.log.append(refusal)
        return refusal

    def _account(self, name: str | None) -> str:
        if not name or name not in self._orders:
            raise CommandError(f"account {name!r} is unknown to NinjaTrader")
        return name

    def _dispatch(self, cmd: AtiCommand) -> None:
        handlers = {
            Command.PLACE: self._place,
            Command.CHANGE: self._change,
            Command.CANCEL: self._cancel,
            Command.CLOSEPOSITION: self._close_position,
            Command.CANCELALLORDERS: self._cancel_all,
            Command.FLATTENEVERYTHING: self._flatten_everything,
        }
        handler = handlers.get(cmd.command)
        if handler is None:
            raise CommandError(f"{cmd.command.value} is not carried out by this simulator")
        handler(cmd)

    def _place(self, cmd: AtiCommand) -> None:
        account = self._account(cmd.account)
        assert cmd.instrument and cmd.action and cmd.quantity and cmd.order_type and cmd.tif
        if cmd.strategy:
            raise CommandError(f"ATM strategy template {cmd.strategy!r} does not exist")
        symbol = from_instrument(cmd.instrument)
        nt_id = cmd.order_id or uuid.uuid4().hex  # NinjaTrader names an order given no id
        if cmd.order_id:
            self._tagged.add(nt_id)
        kernel_type = KERNEL_TYPES[cmd.order_type]
        self._list(account, nt_id)
        self._report(account, nt_id, NtState.SUBMITTED)
        if not self.connected:
            self._report(account, nt_id, NtState.REJECTED)
            raise CommandError("no connection: NinjaTrader rejects orders while disconnected")
        self._placing = nt_id
        try:
            self.exchange.submit(
                account,
                symbol=symbol,
                side=Side.BUY if cmd.action.value == "BUY" else Side.SELL,
                quantity=cmd.quantity,
                order_type=kernel_type,
                limit_price=cmd.limit_price if kernel_type in (OrderType.LIMIT, OrderType.STOP_LIMIT) else None,
                stop_price=cmd.stop_price if kernel_type in (OrderType.STOP, OrderType.STOP_LIMIT) else None,
                time_in_force=TimeInForce.GTC if cmd.tif.value == "GTC" else TimeInForce.DAY,
                client_order_id=nt_id,
                oco_group=cmd.oco_id,
            )
        finally:
            self._placing = None

    def _working(self, nt_id: str | None) -> tuple[str, SimOrder]:
        order = self._latest.get(nt_id or "")
        if order is None:
            raise CommandError(f"order {nt_id!r} is unknown")
        if order.status.is_final:
            raise CommandError(f"order {nt_id!r} is already {KERNEL_STATES[order.status].value}")
        return order.account, order

    def _change(self, cmd: AtiCommand) -> None:
        account, order = self._working(cmd.order_id)
        assert cmd.order_id
        self._report(account, cmd.order_id, NtState.CHANGE_SUBMITTED, order.filled_quantity, order.average_price)
        self.exchange.modify(
            account, order.order_id, quantity=cmd.quantity, limit_price=cmd.limit_price, stop_price=cmd.stop_price
        )

    def _cancel(self, cmd: AtiCommand) -> None:
        account, order = self._working(cmd.order_id)
        assert cmd.order_id
        self._report(account, cmd.order_id, NtState.CANCEL_PENDING, order.filled_quantity, order.average_price)
        self.exchange.cancel(account, order.order_id, "cancelled by ATI")

    def _close_position(self, cmd: AtiCommand) -> None:
        """Cancels the instrument's working orders and flattens it (help guide)."""
        account = self._account(cmd.account)
        assert cmd.instrument
        self.exchange.flatten(account, from_instrument(cmd.instrument))

    def _cancel_all(self, cmd: AtiCommand) -> None:
        """Every active order of every account (help guide: "across all accounts")."""
        for account in self.accounts:
            for order in self.exchange.open_orders(account):
                self.exchange.cancel(account, order.order_id, "CANCELALLORDERS")

    def _flatten_everything(self, cmd: AtiCommand) -> None:
        for account in self.accounts:
            self.exchange.flatten(account)

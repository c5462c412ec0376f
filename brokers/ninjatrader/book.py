"""The adapter's book: the orders it placed, what NinjaTrader last said of each, and the fill
ledger that reports every fill once.

The ATI never names an execution: it says an order's state, its filled quantity and its average
fill price (``Filled|<id>``, ``AvgFillPrice|<id>``, or the ``<id>.txt`` file). A fill is the
growth of the filled quantity; its price is what the average moved by
(``(avg·filled − avg₀·filled₀) / (filled − filled₀)``). The ledger keeps, per order, the
quantity and cost already reported, so a value read again after a reconnect, a file read twice
or NinjaTrader's state pushed again on connect reports nothing new. The fill id is
``<ORDER ID>#<instance>:<filled>``: the same for the same growth whenever it is seen.

A repeated ORDER ID (a place sent again under the same client id) starts a new instance: its
keys now describe the newer order (one key holds one value), so the ledger starts again at 0.
Instances are numbered by the book, never reused in this process (not even once the older
instance is forgotten), so a newer order's fill ids never repeat an older one's.

Finished orders shrink, then go (``forgetting.py``): the book stays as large as NinjaTrader's
own lists, never as long as the run.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal

from ..finished import FinishedOrders
from ..instruments import instrument_for
from ..model import BrokerEvent, FillEvent, OrderEvent, OrderStatus, OrderType, PositionEvent, Side
from .forgetting import KEEP_IN_FULL, Ended, Forgetting
from .states import DOMAIN_STATUS, NtState, OrderReport, PositionReport
from .symbols import SymbolError, from_instrument

CHANGING = frozenset({NtState.CHANGE_PENDING, NtState.CHANGE_SUBMITTED})
Waiter = tuple[Callable[[OrderReport], bool], "asyncio.Future[OrderReport]"]


@dataclass(slots=True)
class TrackedOrder:
    account_id: str
    client_order_id: str
    nt_id: str
    symbol: str
    side: Side
    order_type: OrderType
    quantity: int
    limit_price: Decimal | None
    stop_price: Decimal | None
    instance: int = 1
    generation: int = 0  # the route's generation (connection, or folder life) it was sent in
    report: OrderReport | None = None
    filled: int = 0  # the ledger: quantity and cost already reported as fills
    cost: Decimal = Decimal(0)
    emitted: tuple[object, ...] | None = None
    #: A CHANGE sent and not yet answered: (quantity, limit, stop). The ATI reports no prices or
    #: quantities, so the order's terms are what we asked once NinjaTrader says it is working.
    pending_change: tuple[int | None, Decimal | None, Decimal | None] | None = None
    waiters: list[Waiter] = field(default_factory=list)

    def event(self, report: OrderReport) -> OrderEvent:
        return OrderEvent(
            account_id=self.account_id,
            client_order_id=self.client_order_id,
            broker_order_id=self.nt_id,
            symbol=self.symbol,
            side=self.side,
            order_type=self.order_type,
            quantity=self.quantity,
            status=DOMAIN_STATUS[report.state],
            filled_quantity=report.filled,
            limit_price=self.limit_price,
            stop_price=self.stop_price,
            reason=f"NinjaTrader state {report.state.value}",
        )


class Book:
    def __init__(self, accounts: dict[str, str], keep: int = KEEP_IN_FULL) -> None:
        self.accounts = accounts  # our id → NinjaTrader name
        self.our_ids = {name: ours for ours, name in accounts.items()}
        #: Orders we placed, held in full: live ones and the latest ``keep`` finished ones.
        self.orders: dict[str, TrackedOrder] = {}
        #: What NinjaTrader last said of every order it still lists, ours (held in full) or not.
        self.reports: dict[str, OrderReport] = {}
        self.lists: dict[str, list[str]] = {}  # NinjaTrader account → its ORDER IDs (TCP)
        self.positions: dict[tuple[str, str], PositionReport] = {}  # (NT account, instrument)
        self.memory = Forgetting(FinishedOrders(lambda nt_id: self.orders[nt_id].filled, keep), list(accounts.values()))
        self._instances = itertools.count(1)

    def track(self, order: TrackedOrder) -> TrackedOrder:
        """Register an order before its line is sent, so no report of it is missed."""
        order.instance = next(self._instances)
        previous = self.orders.get(order.nt_id)
        if previous is not None:
            order.waiters = previous.waiters  # a request still waiting hears of the newer order
        self.memory.reopen(order.nt_id)
        self.orders[order.nt_id] = order
        self.reports.pop(order.nt_id, None)
        return order

    def wait(self, nt_id: str, ready: Callable[[OrderReport], bool]) -> asyncio.Future[OrderReport]:
        """A future resolved by the first report of ``nt_id`` from now on that is ``ready``."""
        future: asyncio.Future[OrderReport] = asyncio.get_running_loop().create_future()
        self.orders[nt_id].waiters.append((ready, future))
        return future

    def forget_changes(self) -> None:
        """A connection was lost with CHANGEs unanswered: whether they went through cannot be
        read back (the ATI reports no prices or quantities), so the asked terms are dropped."""
        for order in self.orders.values():
            order.pending_change = None

    def fail_waiters(self, exc: BaseException) -> None:
        for order in self.orders.values():
            for _, future in order.waiters:
                if not future.done():
                    future.set_exception(exc)
            order.waiters.clear()

    def order_report(self, nt_id: str, report: OrderReport) -> list[BrokerEvent]:
        """Events for one report: the order's new state, and a fill for any growth."""
        order = self.orders.get(nt_id)
        if order is None:
            forgotten = self.memory.filled(nt_id)
            if forgotten is None:
                self.reports[nt_id] = report  # not ours: kept for lookup while NinjaTrader lists it
                return []
            if report.filled <= forgotten:
                return []  # shrunk and told again (a reconnect, a file re-read): old news
            order = self._restore(nt_id)  # a fill after its end: reported, never dropped
        self.reports[nt_id] = report
        order.report = report
        if order.pending_change is not None and report.state not in CHANGING:
            quantity, limit, stop = order.pending_change
            order.pending_change = None
            if report.state is not NtState.REJECTED:
                order.quantity = quantity or order.quantity
                order.limit_price = limit or order.limit_price
                order.stop_price = stop or order.stop_price
        events: list[BrokerEvent] = []
        shown = (report.state, report.filled, order.quantity, order.limit_price, order.stop_price)
        if shown != order.emitted:
            order.emitted = shown
            events.append(order.event(report))
        if report.filled > order.filled:
            quantity = report.filled - order.filled
            cost = report.average_price * report.filled
            price = (cost - order.cost) / quantity
            order.filled, order.cost = report.filled, cost
            events.append(
                FillEvent(
                    account_id=order.account_id,
                    client_order_id=order.client_order_id,
                    broker_order_id=nt_id,
                    fill_id=f"{nt_id}#{order.instance}:{report.filled}",
                    symbol=order.symbol,
                    side=order.side,
                    quantity=quantity,
                    price=_on_tick(order.symbol, price),
                    cumulative_quantity=report.filled,
                    leaves_quantity=max(0, order.quantity - report.filled),
                )
            )
        for waiter in list(order.waiters):
            ready, future = waiter
            if future.done():
                order.waiters.remove(waiter)
            elif ready(report):
                order.waiters.remove(waiter)
                future.set_result(report)
        if DOMAIN_STATUS[report.state].is_final:
            for old in self.memory.finished.finished(nt_id):
                self._shrink(old)
        else:
            self.memory.finished.reopened(nt_id)
        return events

    def _shrink(self, nt_id: str) -> None:
        """A finished order beyond ``keep`` leaves the maps; its :class:`Ended` stays."""
        order = self.orders.pop(nt_id)
        self.reports.pop(nt_id, None)
        assert order.report is not None  # it finished on a report
        self.memory.shrink(
            nt_id,
            Ended(
                order.account_id,
                order.client_order_id,
                order.symbol,
                order.side,
                order.order_type,
                order.quantity,
                order.instance,
                order.report.state,
                order.cost,
            ),
        )

    def _restore(self, nt_id: str) -> TrackedOrder:
        """A shrunk order held in full again, its ledger where it was (its prices are gone:
        the ATI never reports them, and a finished order needs none)."""
        ended = self.memory.ended[nt_id]
        filled = self.memory.filled(nt_id) or 0
        self.memory.reopen(nt_id)
        order = TrackedOrder(
            account_id=ended.account_id,
            client_order_id=ended.client_order_id,
            nt_id=nt_id,
            symbol=ended.symbol,
            side=ended.side,
            order_type=ended.order_type,
            quantity=ended.quantity,
            limit_price=None,
            stop_price=None,
            instance=ended.instance,
            filled=filled,
            cost=ended.cost,
        )
        self.orders[nt_id] = order
        return order

    def order_list(self, account: str, ids: list[str]) -> None:
        """``Orders|<account>`` (TCP): someone else's orders NinjaTrader no longer lists leave
        ``reports``; the list counts towards the running replay."""
        previous = self.lists.get(account, [])
        self.lists[account] = ids
        if previous and ids[: len(previous)] != previous:  # not just longer: something left it
            listed = set(ids)
            for nt_id in previous:
                if nt_id not in listed and nt_id not in self.orders:
                    self.reports.pop(nt_id, None)
        self.memory.account_listed(account, ids)

    def files_after_wipe(self, ids: set[str]) -> None:
        """The order files NinjaTrader kept through a wipe of the outgoing folder (a restart):
        what is not among them was forgotten by NinjaTrader, so here too."""
        for nt_id in [nt_id for nt_id in self.reports if nt_id not in ids and nt_id not in self.orders]:
            del self.reports[nt_id]
        self.memory.folder_wiped(ids)

    def ended(self, nt_id: str) -> Ended | None:
        return self.memory.ended.get(nt_id)

    def position_report(self, account: str, instrument: str, report: PositionReport) -> PositionEvent | None:
        """A position of one of our accounts, or None (another account, or a name we cannot map)."""
        ours = self.our_ids.get(account)
        if ours is None:
            return None
        symbol = from_instrument(instrument)  # SymbolError is the caller's to report
        key = (account, instrument)
        if self.positions.get(key) == report:
            return None
        self.positions[key] = report
        return PositionEvent(
            account_id=ours,
            symbol=symbol,
            net_quantity=report.net,
            average_price=report.average_price if report.net else None,
        )

    def open_positions(self, account_id: str) -> list[PositionEvent]:
        name = self.accounts[account_id]
        found = []
        for (account, instrument), report in sorted(self.positions.items()):
            if account == name and report.net:
                try:
                    symbol = from_instrument(instrument)
                except SymbolError:
                    continue
                found.append(PositionEvent(account_id, symbol, report.net, report.average_price))
        return found

    def open_orders(self, account_id: str) -> list[OrderEvent]:
        return [
            order.event(order.report)
            for order in self.orders.values()
            if order.account_id == account_id
            and order.report is not None
            and not DOMAIN_STATUS[order.report.state].is_final
        ]

    def status_of(self, nt_id: str) -> OrderStatus | None:
        report = self.reports.get(nt_id)
        if report is not None:
            return DOMAIN_STATUS[report.state]
        ended = self.memory.ended.get(nt_id)
        return DOMAIN_STATUS[ended.state] if ended is not None else None


def _on_tick(symbol: str, price: Decimal) -> Decimal:
    """A fill price derived from averages, back on the contract's tick (NinjaTrader's averages
    are doubles, so the difference of two carries rounding noise)."""
    try:
        return instrument_for(symbol).round_to_tick(price)
    except (KeyError, ValueError):
        return price

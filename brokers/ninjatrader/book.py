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
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal

from ..instruments import instrument_for
from ..model import BrokerEvent, FillEvent, OrderEvent, OrderStatus, OrderType, PositionEvent, Side
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
    def __init__(self, accounts: dict[str, str]) -> None:
        self.accounts = accounts  # our id → NinjaTrader name
        self.our_ids = {name: ours for ours, name in accounts.items()}
        self.orders: dict[str, TrackedOrder] = {}
        self.reports: dict[str, OrderReport] = {}  # every order NinjaTrader told of, ours or not
        self.lists: dict[str, list[str]] = {}  # NinjaTrader account → its ORDER IDs (TCP)
        self.positions: dict[tuple[str, str], PositionReport] = {}  # (NT account, instrument)

    def track(self, order: TrackedOrder) -> TrackedOrder:
        """Register an order before its line is sent, so no report of it is missed."""
        previous = self.orders.get(order.nt_id)
        if previous is not None:
            order.instance = previous.instance + 1
            order.waiters = previous.waiters  # a request still waiting hears of the newer order
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
        self.reports[nt_id] = report
        order = self.orders.get(nt_id)
        if order is None:
            return []
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
        return events

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
        return DOMAIN_STATUS[report.state] if report is not None else None


def _on_tick(symbol: str, price: Decimal) -> Decimal:
    """A fill price derived from averages, back on the contract's tick (NinjaTrader's averages
    are doubles, so the difference of two carries rounding noise)."""
    try:
        return instrument_for(symbol).round_to_tick(price)
    except (KeyError, ValueError):
        return price

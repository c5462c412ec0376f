"""Order requests of the NinjaTrader adapter: place, change, cancel, flatten, lookup, and the
ATI's account-wide commands.

Each request is one ATI line (``commandline.py``), checked by the strict parser before it is
sent, so a line NinjaTrader would refuse is refused here with its reason (``OrderRejected``)
and never sent. Then the request waits for NinjaTrader's word on the ORDER ID.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import TYPE_CHECKING

from ..errors import BrokerUnavailable, OrderRejected, UnknownOrder, UnsupportedOperation
from ..model import (
    CancelOrder,
    FlattenPosition,
    ModifyOrder,
    OrderAck,
    OrderStatus,
    OrderType,
    PlaceOrder,
    Side,
    TimeInForce,
)
from .book import TrackedOrder
from .commandline import Action, AtiCommand, Command, CommandError, NtOrderType, Tif, encode
from .config import Route
from .orderids import nt_order_id
from .states import DOMAIN_STATUS, NtState, OrderReport
from .symbols import SymbolError, to_instrument

if TYPE_CHECKING:
    from .adapter import NinjaTraderAdapter

ORDER_TYPES = {
    OrderType.MARKET: NtOrderType.MARKET,
    OrderType.LIMIT: NtOrderType.LIMIT,
    OrderType.STOP: NtOrderType.STOPMARKET,
    OrderType.STOP_LIMIT: NtOrderType.STOPLIMIT,
}
TIFS = {TimeInForce.DAY: Tif.DAY, TimeInForce.GTC: Tif.GTC}
#: States that are NinjaTrader's answer to a PLACE (Submitted only says it was handed on).
PLACED = frozenset(NtState) - {NtState.INITIALIZED, NtState.SUBMITTED}
#: States that answer a CHANGE (the change went through, or the order ended meanwhile).
CHANGED = frozenset(NtState) - {NtState.CHANGE_PENDING, NtState.CHANGE_SUBMITTED}
FINAL = frozenset({NtState.FILLED, NtState.CANCELLED, NtState.REJECTED})


def _line(cmd: AtiCommand) -> str:
    try:
        return encode(cmd)
    except CommandError as exc:
        raise OrderRejected(f"ninjatrader: NinjaTrader would refuse this line: {exc}", code="ATI_LINE") from exc


async def _answer(adapter: NinjaTraderAdapter, future: asyncio.Future[OrderReport], what: str) -> OrderReport:
    """NinjaTrader's word on a sent line; none in time means it may have been carried out."""
    try:
        return await asyncio.wait_for(asyncio.shield(future), adapter.nt.request_timeout_s)
    except TimeoutError:
        future.cancel()
        raise BrokerUnavailable(
            f"ninjatrader: no word from NinjaTrader on {what} within {adapter.nt.request_timeout_s} s", sent=True
        ) from None


async def place(adapter: NinjaTraderAdapter, command: PlaceOrder) -> OrderAck:
    """PLACE with ORDER ID = our client id, once. Rejected is ``OrderRejected``; the ATI gives
    no reason text, so the message says where NinjaTrader keeps it (its log)."""
    if command.bracket is not None:
        raise UnsupportedOperation("ninjatrader: brackets are not supported (ATM strategies are not used)")
    if command.time_in_force not in TIFS:
        raise UnsupportedOperation(f"ninjatrader: the ATI takes DAY or GTC, not {command.time_in_force.value}")
    account = adapter.broker_account(command.account_id)
    try:
        instrument = to_instrument(command.symbol)
    except SymbolError as exc:
        raise OrderRejected(f"ninjatrader: {exc}", code="INSTRUMENT") from exc
    nt_id = nt_order_id(command.client_order_id)
    nt_type = ORDER_TYPES[command.order_type]
    line = _line(
        AtiCommand(
            Command.PLACE,
            account=account,
            instrument=instrument,
            action=Action.BUY if command.side is Side.BUY else Action.SELL,
            quantity=command.quantity,
            order_type=nt_type,
            limit_price=command.limit_price if command.order_type in (OrderType.LIMIT, OrderType.STOP_LIMIT) else None,
            stop_price=command.stop_price if command.order_type in (OrderType.STOP, OrderType.STOP_LIMIT) else None,
            tif=TIFS[command.time_in_force],
            order_id=nt_id,
        )
    )
    tracked = adapter.book.track(
        TrackedOrder(
            account_id=command.account_id,
            client_order_id=command.client_order_id,
            nt_id=nt_id,
            symbol=command.symbol,
            side=command.side,
            order_type=command.order_type,
            quantity=command.quantity,
            limit_price=command.limit_price,
            stop_price=command.stop_price,
            generation=adapter.generation,
        )
    )
    future = adapter.book.wait(nt_id, lambda r: r.state in PLACED)
    try:
        await adapter.send([line], [nt_id])
    except BaseException:
        future.cancel()
        raise
    tracked.generation = adapter.generation
    report = await _answer(adapter, future, f"PLACE {nt_id}")
    if report.state is NtState.REJECTED:
        raise OrderRejected(
            f"ninjatrader: order {nt_id} Rejected by NinjaTrader (the ATI carries no reason; NinjaTrader's log has it)",
            code="REJECTED",
        )
    return OrderAck(command.account_id, command.client_order_id, nt_id, DOMAIN_STATUS[report.state])


def _known(adapter: NinjaTraderAdapter, account_id: str, client_order_id: str) -> tuple[str, OrderReport]:
    """The ORDER ID and last report of an order NinjaTrader told us of, else ``UnknownOrder``."""
    nt_id = nt_order_id(client_order_id)
    if adapter.nt.route is Route.OIF and adapter.folders is not None:
        adapter.folders.read_order(nt_id)
    report = adapter.book.reports.get(nt_id)
    tracked = adapter.book.orders.get(nt_id)
    ended = adapter.book.ended(nt_id)
    if tracked is None and ended is not None and ended.account_id == account_id:
        return nt_id, OrderReport(ended.state, 0, Decimal(0))  # finished and shrunk: its end is all we need
    if report is None or tracked is None or tracked.account_id != account_id:
        raise UnknownOrder(f"ninjatrader: no order {nt_id} of {account_id} is known to NinjaTrader")
    return nt_id, report


async def modify(adapter: NinjaTraderAdapter, command: ModifyOrder) -> OrderAck:
    """CHANGE: 0 leaves a value as it is (help guide; ``commandline.encode`` writes it)."""
    nt_id, report = _known(adapter, command.account_id, command.client_order_id)
    if report.state in FINAL:
        raise UnknownOrder(f"ninjatrader: order {nt_id} is already {report.state.value}")
    line = _line(
        AtiCommand(
            Command.CHANGE,
            quantity=command.quantity,
            limit_price=command.limit_price,
            stop_price=command.stop_price,
            order_id=nt_id,
        )
    )
    future = adapter.book.wait(nt_id, lambda r: r.state in CHANGED)
    tracked = adapter.book.orders[nt_id]
    tracked.pending_change = (command.quantity, command.limit_price, command.stop_price)
    try:
        await adapter.send([line], [])
    except BaseException as exc:
        future.cancel()
        if not getattr(exc, "sent", True):
            tracked.pending_change = None
        raise
    answer = await _answer(adapter, future, f"CHANGE {nt_id}")
    if answer.state is NtState.FILLED:
        raise UnknownOrder(f"ninjatrader: order {nt_id} filled before the change")
    return OrderAck(command.account_id, command.client_order_id, nt_id, DOMAIN_STATUS[answer.state])


async def cancel(adapter: NinjaTraderAdapter, command: CancelOrder) -> OrderAck:
    """CANCEL, answered by the order's final state; a repeat of a done cancel is a duplicate."""
    nt_id, report = _known(adapter, command.account_id, command.client_order_id)
    if report.state is NtState.CANCELLED:
        return OrderAck(command.account_id, command.client_order_id, nt_id, OrderStatus.CANCELLED, duplicate=True)
    if report.state in FINAL:
        raise UnknownOrder(f"ninjatrader: order {nt_id} is already {report.state.value}: nothing to cancel")
    line = _line(AtiCommand(Command.CANCEL, order_id=nt_id))
    future = adapter.book.wait(nt_id, lambda r: r.state in FINAL)
    try:
        await adapter.send([line], [])
    except BaseException:
        future.cancel()
        raise
    answer = await _answer(adapter, future, f"CANCEL {nt_id}")
    if answer.state is not NtState.CANCELLED:
        raise UnknownOrder(f"ninjatrader: order {nt_id} ended {answer.state.value} before the cancel")
    return OrderAck(command.account_id, command.client_order_id, nt_id, OrderStatus.CANCELLED)


async def flatten(adapter: NinjaTraderAdapter, command: FlattenPosition) -> OrderAck:
    """Cancel this account's working orders we placed, then close each position with a MARKET
    order whose ORDER ID is the flatten's client id (``<id>-2``… for a second symbol).

    Not CLOSEPOSITION: it cannot carry an ORDER ID, so its closing order could never be looked
    up, and a flatten retried after a lost answer could close twice (or turn a closed long into
    a short). The price of the choice: orders entered by hand in NinjaTrader are not cancelled
    (the ATI cancels only by an ORDER ID it was given, or all orders of every account)."""
    for order in list(adapter.book.orders.values()):
        if order.account_id != command.account_id or order.report is None or order.report.state in FINAL:
            continue
        if command.symbol is None or order.symbol == command.symbol:
            try:
                await cancel(adapter, CancelOrder(order.account_id, order.client_order_id))
            except UnknownOrder:
                pass  # it finished meanwhile: nothing left to cancel
    positions = [p for p in adapter.book.open_positions(command.account_id) if command.symbol in (None, p.symbol)]
    first: OrderAck | None = None
    for n, position in enumerate(sorted(positions, key=lambda p: p.symbol), start=1):
        client_id = command.client_order_id if n == 1 else f"{command.client_order_id}-{n}"
        side = Side.SELL if position.net_quantity > 0 else Side.BUY
        ack = await place(
            adapter, PlaceOrder(command.account_id, client_id, position.symbol, side, abs(position.net_quantity))
        )
        first = first or ack
    return first or OrderAck(command.account_id, command.client_order_id, "none", OrderStatus.FILLED)


async def lookup(adapter: NinjaTraderAdapter, account_id: str, client_order_id: str) -> OrderAck | None:
    """Ask NinjaTrader for the order placed under ``client_order_id``.

    Found: its ``OrderStatus`` (TCP), its place in ``Orders|<acct>`` (TCP) or its ``<id>.txt``
    (files). Not found is "none" only when NinjaTrader's view covers the moment the id may have
    been sent: the id was not sent on an earlier ATI connection or before the outgoing folder was
    wiped (NinjaTrader may have restarted meanwhile and forgotten it), no instruction file of it
    still waits in ``incoming``, on TCP the account's order list has arrived, and this adapter
    has not forgotten any order NinjaTrader stopped listing (``forgetting.py``: it could have been
    one). Otherwise ``BrokerUnavailable``: cannot tell.
    """
    account = adapter.broker_account(account_id)
    nt_id = nt_order_id(client_order_id)
    await adapter.wait_route()
    deadline = asyncio.get_running_loop().time() + adapter.nt.lookup_settle_s
    while True:
        found = _find(adapter, account, nt_id)
        if found is not None:
            return OrderAck(account_id, client_order_id, nt_id, found, duplicate=True)
        waiting = _in_flight(adapter, nt_id)
        if waiting is None or asyncio.get_running_loop().time() >= deadline:
            break
        await asyncio.sleep(min(0.02, adapter.nt.lookup_settle_s))
    why = _cannot_tell(adapter, account, nt_id)
    if why:
        raise BrokerUnavailable(f"ninjatrader: cannot tell whether {nt_id} exists: {why}", sent=False)
    return None


def _find(adapter: NinjaTraderAdapter, account: str, nt_id: str) -> OrderStatus | None:
    if adapter.nt.route is Route.OIF:
        if adapter.folders is None:
            raise BrokerUnavailable("ninjatrader: not connected (folders not open)", sent=False)
        adapter.folders.read_order(nt_id)
    elif adapter.connection is None or adapter.connection.closed.is_set():
        raise BrokerUnavailable(f"ninjatrader: not connected to {adapter.nt.address}", sent=False)
    status = adapter.book.status_of(nt_id)
    if status is not None:
        return status
    if nt_id in adapter.book.lists.get(account, []):
        return OrderStatus.PENDING  # listed, its state not pushed yet
    return None


def _in_flight(adapter: NinjaTraderAdapter, nt_id: str) -> str | None:
    """Why a sent line may still become an order in a moment, or None."""
    if adapter.nt.route is Route.OIF and adapter.folders is not None and adapter.folders.pending(nt_id):
        return "its instruction file still waits in the incoming folder"
    tracked = adapter.book.orders.get(nt_id)
    if tracked is not None and tracked.report is None and tracked.generation == adapter.generation:
        return "its line was sent and NinjaTrader has not answered yet"
    return None


def _cannot_tell(adapter: NinjaTraderAdapter, account: str, nt_id: str) -> str | None:
    waiting = _in_flight(adapter, nt_id)
    if waiting:
        return waiting
    tracked = adapter.book.orders.get(nt_id)
    if tracked is None and adapter.book.memory.dropped:
        return "this adapter forgot finished orders NinjaTrader no longer lists; it may have been one of them"
    if tracked is not None and tracked.generation != adapter.generation:
        if adapter.nt.route is Route.OIF:
            return "the outgoing folder was wiped (NinjaTrader restarted) after it was sent"
        return "it was sent on an earlier ATI connection; NinjaTrader may have restarted since"
    if adapter.nt.route is Route.ATI:
        assert adapter.connection is not None
        if account not in adapter.connection.cache.lists_seen:
            return f"NinjaTrader has not sent the order list of {account} on this connection"
    elif tracked is None and adapter.folders is not None and not adapter.folders.sentinel_was_there:
        return "the outgoing folder may have been wiped before this session began (NinjaTrader restarted)"
    return None


# -- the ATI's account-wide commands --------------------------------------------------------------
async def close_position(adapter: NinjaTraderAdapter, account_id: str, symbol: str) -> None:
    """CLOSEPOSITION: NinjaTrader cancels the instrument's working orders and flattens it (help
    guide). Untagged: nothing of it can be looked up. For an operator, not for copies."""
    try:
        instrument = to_instrument(symbol)
    except SymbolError as exc:
        raise OrderRejected(f"ninjatrader: {exc}", code="INSTRUMENT") from exc
    line = _line(AtiCommand(Command.CLOSEPOSITION, account=adapter.broker_account(account_id), instrument=instrument))
    await adapter.send([line], [])


async def cancel_all_orders(adapter: NinjaTraderAdapter) -> None:
    """CANCELALLORDERS: every active order of every account and connection of this NinjaTrader."""
    await adapter.send([_line(AtiCommand(Command.CANCELALLORDERS))], [])


async def flatten_everything(adapter: NinjaTraderAdapter) -> None:
    """FLATTENEVERYTHING: cancels every order and flattens every position of every account."""
    await adapter.send([_line(AtiCommand(Command.FLATTENEVERYTHING))], [])

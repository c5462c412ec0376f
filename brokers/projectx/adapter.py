"""ProjectX Gateway adapter (TopstepX and the other ProjectX firms): REST for commands, the
SignalR user hub for events, one rate budget for everything.

Every order carries our client order id as ``customTag``. The gateway documents no refusal of a
repeated tag, so the adapter never relies on one: a place is sent once, a lost answer surfaces
as ``BrokerUnavailable(sent=True)``, and :meth:`ProjectXAdapter.lookup` asks the gateway for the
tag before anyone places again. A refused place is checked the same way: when an order with our
tag already lives at the gateway, that order is the answer (``duplicate=True``), whatever the
refusal said. A flatten places its closing orders itself (``Order/place`` with the flatten's id
as tag) instead of ``Position/closeContract``, which takes no tag and returns no order id.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, ClassVar

from ...common.clock import utcnow
from ...common.ratewindow import SlidingWindow
from ..base import BrokerAdapter, SessionConfig
from ..errors import (
    BrokerError,
    BrokerUnavailable,
    OrderRejected,
    TransientBrokerError,
    UnknownOrder,
    UnsupportedOperation,
)
from ..finished import Replay
from ..model import (
    AccountSnapshot,
    CancelOrder,
    Capabilities,
    ConnectionState,
    FlattenPosition,
    ModifyOrder,
    OrderAck,
    OrderStatus,
    OrderType,
    PlaceOrder,
    SessionHealth,
    Side,
    TimeInForce,
)
from ..ratebudget import Priority, RateBudget
from ..wire import excerpt
from . import answers, codec, parsing
from . import lookup as tags
from . import schemas as px
from .config import ProjectXConfig
from .hub import UserHubClient
from .tracking import Tracker
from .transport import GatewaySession

log = logging.getLogger(__name__)
#: Unreadable answers kept for health and the tests (the newest; older ones are in the log).
BAD_ANSWERS_KEPT = 50
#: At most this many BAD_ANSWER log lines per window and session; the rest are counted, and
#: the next line says how many: a gateway that sends garbage in a burst must not flood the log.
BAD_ANSWER_LOG = (20, 60.0)


class ProjectXAdapter(BrokerAdapter):
    platform: ClassVar[str] = "projectx"
    capabilities: ClassVar[Capabilities] = Capabilities(
        order_types=frozenset({OrderType.MARKET, OrderType.LIMIT, OrderType.STOP}),
        brackets=True,
        oco=False,
    )

    def __init__(self, config: SessionConfig) -> None:
        super().__init__(config)
        self.px = ProjectXConfig.from_session(config)
        # Our grant time precedes the server's arrival time; a little slack on the window keeps
        # a request granted just as a slot frees from landing inside the server's window.
        limit, window = self.px.rate_limit
        self.budget = RateBudget([(limit, window + self.px.budget_slack_s)], name=f"projectx-{config.session_id}")
        self.session = GatewaySession(self.px, self.budget)
        self._ids: dict[str, int] = {}  # our account id → ProjectX accountId
        self._contract_lookups: dict[str, asyncio.Future[dict[str, Any]]] = {}  # our symbol → contract
        self._symbols: dict[str, str] = {}  # contractId → our symbol
        self.tracker = Tracker({}, self._symbol_for)
        self.hub: UserHubClient | None = None
        self.reconciled = asyncio.Event()
        self.bad_answers: deque[codec.ProtocolError] = deque(maxlen=BAD_ANSWERS_KEPT)
        self.bad_answer_count = 0
        self._bad_log = SlidingWindow(*BAD_ANSWER_LOG)
        self._bad_unlogged = 0

    # -- lifecycle ---------------------------------------------------------------------
    async def connect(self) -> None:
        if self._state is ConnectionState.CONNECTED:
            return
        self._set_state(ConnectionState.CONNECTING)
        try:
            await self.session.start()
        except BaseException as exc:
            self._set_state(ConnectionState.DISCONNECTED, f"login failed: {exc}")
            raise
        try:
            await self._map_accounts()
            self.hub = UserHubClient(
                self.px,
                self.session,
                list(self._ids.values()),
                self._on_hub_event,
                self._on_hub_state,
                self._bad_answer,
            )
            await self.hub.start()
        except BaseException:
            await self.session.close()
            self._set_state(ConnectionState.DISCONNECTED, "connect failed")
            raise
        self._set_state(ConnectionState.CONNECTED)

    async def disconnect(self) -> None:
        if self.hub is not None:
            await self.hub.close()
            self.hub = None
        await self.session.close()
        self._set_state(ConnectionState.DISCONNECTED)

    async def _map_accounts(self) -> None:
        data = await self._call(px.ACCOUNT_SEARCH, {"onlyActiveAccounts": False}, Priority.MODIFY, idempotent=True)
        by_name = answers.accounts(data)
        missing = [name for name in self.px.accounts.values() if name not in by_name]
        if missing:
            raise BrokerError(f"ProjectX login sees no account named {', '.join(missing)}", code="ACCOUNT")
        self._ids = {ours: by_name[name] for ours, name in self.px.accounts.items()}
        self.tracker = Tracker({pid: ours for ours, pid in self._ids.items()}, self._symbol_for)

    # -- orders ------------------------------------------------------------------------
    async def place(self, command: PlaceOrder) -> OrderAck:
        """Send ``Order/place`` once. A lost answer is ``BrokerUnavailable(sent=True)``: the order
        may exist, and only :meth:`lookup` can tell — this method never resends by itself."""
        if command.time_in_force in (TimeInForce.IOC, TimeInForce.FOK):
            # The Gateway's Order/place has no time-in-force field: an IOC/FOK would silently rest.
            raise UnsupportedOperation(f"ProjectX cannot place {command.time_in_force.value.upper()} orders")
        if command.bracket is not None and command.account_id in self.px.position_bracket_accounts:
            raise OrderRejected(
                f"{command.account_id} is in Position Brackets mode: ProjectX accepts brackets on Order/place "
                "only for accounts in Auto OCO Brackets mode (TopstepX Settings, Risk Settings)",
                code="BRACKET_MODE",
            )
        contract = await self._contract(command.symbol)
        try:
            body = parsing.place_request(
                account_id=self._account(command.account_id),
                contract_id=contract["id"],
                side=command.side,
                quantity=command.quantity,
                order_type=command.order_type,
                limit_price=command.limit_price,
                stop_price=command.stop_price,
                custom_tag=command.client_order_id,
                bracket=command.bracket,
                tick_size=parsing.to_decimal(contract.get("tickSize")),
            )
        except ValueError as exc:
            raise OrderRejected(str(exc), code="INVALID") from None
        data = await self._call(px.ORDER_PLACE, body, Priority.ENTRY)
        if data.get("success") and data.get("orderId") is not None:
            broker_id = answers.order_id(data)
            self.tracker.remember(
                command.account_id, command.client_order_id, broker_id, command.symbol, command.quantity
            )
            return self._ack(command.account_id, command.client_order_id, broker_id)
        return await self._refused(command, data)

    async def _refused(self, command: PlaceOrder, data: dict[str, Any]) -> OrderAck:
        """A refused place is a rejection unless an order with our tag already lives at the gateway.

        Why ask instead of reading the refusal: a repeated tag may be refused with any code or
        text (none is documented), and ``errorCode 2`` is also every ordinary rejection. Only a
        rejected record (the gateway may return its id with the refusal) does not count.
        """
        code, message = answers.error_code(data), data.get("errorMessage")
        try:
            found = await tags.orders_with_tag(
                self._call,
                self._account(command.account_id),
                command.client_order_id,
                self.px.order_lookback_h,
                include_history=True,
            )
        except BrokerUnavailable as exc:
            raise BrokerUnavailable(
                f"ProjectX refused the place ({message}) and the tag lookup failed: {exc}", sent=True
            ) from exc
        live = tags.first_live(found)
        if live is not None:
            return self._remember_found(command.account_id, command.client_order_id, live)
        text = message or _code_name(code)
        if command.bracket is not None and code == px.PlaceOrderErrorCode.ORDER_REJECTED:
            text += " [bracketed place: ProjectX needs the account in Auto OCO Brackets mode and signed ticks]"
        raise OrderRejected(text, code=str(code))

    async def lookup(self, account_id: str, client_order_id: str) -> OrderAck | None:
        """Ask the gateway (``Order/searchOpen``, then ``Order/search``) for our tag.

        Returns the oldest order carrying exactly this tag (``duplicate=True``), or ``None`` when
        the gateway answered and holds none. A flatten's first closing order carries the
        flatten's id, so a flatten is found too. Raises ``BrokerUnavailable`` when it cannot tell.
        """
        try:
            found = await tags.orders_with_tag(
                self._call, self._account(account_id), client_order_id, self.px.order_lookback_h, include_history=False
            )
        except TransientBrokerError as exc:  # throttled or re-authenticating past the deadline
            if isinstance(exc, BrokerUnavailable):
                raise
            raise BrokerUnavailable(
                f"ProjectX lookup of {client_order_id!r} could not ask the gateway: {exc}", sent=False
            ) from exc
        if not found:
            return None
        return self._remember_found(account_id, client_order_id, found[0])

    def _remember_found(self, account_id: str, client_order_id: str, order: dict[str, Any]) -> OrderAck:
        self._emit_if(self.tracker.order_event(order))
        with answers.reading("order found by tag", order):
            broker_id = answers.order_id(order, "id")
            symbol, size = self._symbol_for(order["contractId"]), int(order.get("size") or 0)
            status = parsing.status_from_px(int(order.get("status") or 0), size, int(order.get("fillVolume") or 0))
        self.tracker.remember(account_id, client_order_id, broker_id, symbol, size)
        return OrderAck(account_id, client_order_id, broker_id, status, duplicate=True)

    async def modify(self, command: ModifyOrder) -> OrderAck:
        broker_id = await self._order_id(command.account_id, command.client_order_id)
        body: dict[str, Any] = {
            "accountId": self._account(command.account_id),
            "orderId": int(broker_id),
            "size": command.quantity,
            "limitPrice": command.limit_price,
            "stopPrice": command.stop_price,
            "trailPrice": None,
        }
        data = await self._call(px.ORDER_MODIFY, body, Priority.MODIFY)
        self._raise_for_order_error(data, command.client_order_id)
        return self._ack(command.account_id, command.client_order_id, broker_id)

    async def cancel(self, command: CancelOrder) -> OrderAck:
        broker_id = await self._order_id(command.account_id, command.client_order_id)
        tracked = self.tracker.orders.get(broker_id)
        if tracked is not None and tracked.last is not None and tracked.last.status is OrderStatus.CANCELLED:
            # A redelivered cancel: the order is cancelled already, which is what was asked.
            return self._ack(
                command.account_id, command.client_order_id, broker_id, status=OrderStatus.CANCELLED, duplicate=True
            )
        data = await self._call(
            px.ORDER_CANCEL,
            {"accountId": self._account(command.account_id), "orderId": int(broker_id)},
            Priority.CANCEL,
        )
        self._raise_for_order_error(data, command.client_order_id)
        return self._ack(command.account_id, command.client_order_id, broker_id, status=OrderStatus.CANCELLED)

    async def flatten(self, command: FlattenPosition) -> OrderAck:
        """Cancel working orders, then close each position with a tagged market order.

        ``Position/closeContract`` takes only accountId + contractId and answers no order id, so
        its closing order could never be traced to a copy. The first closing order carries the
        flatten's client order id as ``customTag`` (further contracts of a flatten-all get
        ``<id>.2``, ``<id>.3``... because a tag must be unique on the account), so
        :meth:`lookup` finds a flatten like any other copy.
        """
        account = self._account(command.account_id)
        contract_id = (await self._contract(command.symbol))["id"] if command.symbol else None
        data = await self._call(px.ORDER_SEARCH_OPEN, {"accountId": account}, Priority.CANCEL, idempotent=True)
        for order in answers.rows(data, "orders"):
            if contract_id is None or order.get("contractId") == contract_id:
                # A refusal here means the order finished meanwhile: nothing left to cancel.
                order_id = int(answers.order_id(order, "id"))
                await self._call(px.ORDER_CANCEL, {"accountId": account, "orderId": order_id}, Priority.CANCEL)
        data = await self._call(px.POSITION_SEARCH_OPEN, {"accountId": account}, Priority.EXIT, idempotent=True)
        with answers.reading("Position/searchOpen", data):
            positions = sorted(
                (
                    p
                    for p in answers.rows(data, "positions")
                    if int(p.get("size") or 0) and (contract_id is None or p["contractId"] == contract_id)
                ),
                key=lambda p: str(p["contractId"]),
            )
        closing: list[str] = []
        for n, position in enumerate(positions, start=1):
            tag = command.client_order_id if n == 1 else f"{command.client_order_id}.{n}"
            closing.append(await self._close(command.account_id, account, position, tag))
        return OrderAck(
            command.account_id, command.client_order_id, closing[0] if closing else "none", OrderStatus.FILLED
        )

    async def _close(self, account_id: str, account: int, position: dict[str, Any], tag: str) -> str:
        with answers.reading("position to close", position):
            long = int(position.get("type") or 0) == px.PositionType.LONG
            size = answers.integer(position.get("size"), "position size", position)
            symbol = self._symbol_for(position["contractId"])
        body = parsing.place_request(
            account_id=account,
            contract_id=position["contractId"],
            side=Side.SELL if long else Side.BUY,
            quantity=size,
            order_type=OrderType.MARKET,
            limit_price=None,
            stop_price=None,
            custom_tag=tag,
        )
        data = await self._call(px.ORDER_PLACE, body, Priority.EXIT)
        if not data.get("success") or data.get("orderId") is None:
            code = answers.error_code(data)
            raise OrderRejected(
                f"closing {position['contractId']}: {data.get('errorMessage') or _code_name(code)}", code=str(code)
            )
        broker_id = answers.order_id(data)
        self.tracker.remember(account_id, tag, broker_id, symbol, size)
        return broker_id

    # -- state -----------------------------------------------------------------------
    async def snapshot(self, account_id: str) -> AccountSnapshot:
        account = self._account(account_id)
        listed = await self._call(px.ACCOUNT_SEARCH, {"onlyActiveAccounts": False}, Priority.MODIFY, idempotent=True)
        with answers.reading("Account/search", listed):
            balance = next(
                (
                    parsing.to_decimal(a.get("balance"))
                    for a in answers.rows(listed, "accounts")
                    if answers.integer(a.get("id"), "account id", listed) == account
                ),
                None,
            )
        orders = answers.rows(
            await self._call(px.ORDER_SEARCH_OPEN, {"accountId": account}, Priority.MODIFY, idempotent=True), "orders"
        )
        positions = answers.rows(
            await self._call(px.POSITION_SEARCH_OPEN, {"accountId": account}, Priority.MODIFY, idempotent=True),
            "positions",
        )
        snapshot_tracker = Tracker({account: account_id}, self._symbol_for)
        return AccountSnapshot(
            account_id=account_id,
            balance=balance or Decimal(0),
            open_orders=tuple(e for e in map(snapshot_tracker.order_event, orders) if e is not None),
            positions=tuple(e for e in map(snapshot_tracker.position_event, positions) if e is not None),
        )

    def health(self) -> SessionHealth:
        return SessionHealth(
            platform=self.platform, state=self._state, last_error=self._last_error, rate_headroom=self.budget.headroom
        )

    # -- hub events ------------------------------------------------------------------
    def _on_hub_event(self, target: str, arguments: tuple[Any, ...]) -> None:
        """A push for one of our streams; one that cannot be read is reported (BAD_ANSWER, raw
        text inside) and skipped, and the feed reads on. Unknown targets are ignored."""
        if not arguments or target not in (px.EVENT_ORDER, px.EVENT_TRADE, px.EVENT_POSITION):
            return
        try:
            with answers.reading(f"{target} push", arguments[-1]):
                payload = parsing.unwrap(arguments[-1])
            if target == px.EVENT_ORDER:
                event: Any = self.tracker.order_event(payload)
            elif target == px.EVENT_TRADE:
                event = self.tracker.fill_event(payload)
            else:
                event = self.tracker.position_event(payload)
        except codec.ProtocolError as exc:
            self._bad_answer(exc)
            return
        if event is not None:
            self._emit(event)

    def _bad_answer(self, exc: codec.ProtocolError) -> None:
        """An unreadable record, push or answer item: logged, kept in ``bad_answers`` and shown
        by health as ``BAD_ANSWER`` with its raw text; the session reads on."""
        self.bad_answer_count += 1
        if self._bad_log.admit():
            more = f" ({self._bad_unlogged} more not logged)" if self._bad_unlogged else ""
            log.error("projectx session %s: BAD_ANSWER %s; raw: %s%s", self.config.session_id, exc, exc.raw, more)
            self._bad_unlogged = 0
        else:
            self._bad_unlogged += 1
        self.bad_answers.append(exc)
        self._last_error = f"BAD_ANSWER: {exc}; raw: {excerpt(exc.raw, 300)}"

    def _read_each(self, read: Any, payloads: list[dict[str, Any]]) -> None:
        """Emit what each payload says; an unreadable one is reported and the rest still count."""
        for payload in payloads:
            try:
                event = read(payload)
            except codec.ProtocolError as exc:
                self._bad_answer(exc)
                continue
            self._emit_if(event)

    async def _on_hub_state(self, up: bool, reason: str | None) -> None:
        if not up:
            self.reconciled.clear()
            self._set_state(ConnectionState.DEGRADED, reason)
            return
        await self.reconcile()
        self._set_state(ConnectionState.CONNECTED)

    async def reconcile(self) -> None:
        """After a gap in the hub: replay what REST says changed, each change once."""
        since = utcnow() - timedelta(hours=self.px.order_lookback_h)
        replay, complete = self.tracker.finished.begin_replay(), True
        for ours, account in self._ids.items():
            try:
                complete &= await self._reconcile_account(ours, account, since, replay)
            except codec.ProtocolError as exc:  # an answer that does not read: say so, go on
                self._bad_answer(exc)
                complete = False
        if complete:  # forgotten orders the look-back window no longer holds: gone for good
            self.tracker.finished.end_replay(replay)
        self.reconciled.set()

    async def _reconcile_account(self, ours: str, account: int, since: datetime, replay: Replay) -> bool:
        """One account's trades, orders and positions; an unreadable row is reported and skipped.
        True when the order history was read too (the replay then lists every order it holds).
        The history is read when an order we knew open is no longer open, or when fingerprints
        of forgotten orders wait to be dropped (more than ``keep`` of them)."""
        body = {"accountId": account, "startTimestamp": parsing.format_time(since)}
        trades = answers.rows(await self._call(px.TRADE_SEARCH, body, Priority.MODIFY, idempotent=True), "trades")
        self._list(replay, trades, "orderId")
        self._read_each(self.tracker.fill_event, trades)
        open_orders = answers.rows(
            await self._call(px.ORDER_SEARCH_OPEN, {"accountId": account}, Priority.MODIFY, idempotent=True),
            "orders",
        )
        open_ids = {str(o.get("id")) for o in open_orders}
        self._read_each(self.tracker.order_event, open_orders)
        finished = self.tracker.finished
        complete = finished.fingerprint_count > finished.keep
        if complete or any(oid not in open_ids for oid in self.tracker.open_order_ids(ours)):
            history = answers.rows(await self._call(px.ORDER_SEARCH, body, Priority.MODIFY, idempotent=True), "orders")
            self._list(replay, history, "id")
            self._read_each(self.tracker.order_event, [o for o in history if str(o.get("id")) not in open_ids])
            complete = True
        positions = answers.rows(
            await self._call(px.POSITION_SEARCH_OPEN, {"accountId": account}, Priority.MODIFY, idempotent=True),
            "positions",
        )
        self._read_each(self.tracker.position_event, positions)
        with answers.reading("Position/searchOpen", positions):
            still_open = {self._symbol_for(p["contractId"]) for p in positions}
        for flat in self.tracker.flat_positions(ours, still_open):
            self._emit(flat)
        return complete

    def _list(self, replay: Replay, rows: list[Any], key: str) -> None:
        for row in rows:
            if isinstance(row, dict):
                self.tracker.finished.listed(replay, str(row.get(key)))

    def _emit_if(self, event: Any) -> None:
        if event is not None:
            self._emit(event)

    # -- helpers -----------------------------------------------------------------------
    async def _call(
        self, path: str, body: dict[str, Any], priority: Priority, *, idempotent: bool = False
    ) -> dict[str, Any]:
        try:
            return await self.session.call(path, body, priority, idempotent=idempotent)
        except BrokerError as exc:
            self._last_error = exc.message
            raise

    def _account(self, account_id: str) -> int:
        try:
            return self._ids[account_id]
        except KeyError:
            raise KeyError(f"account {account_id!r} is not part of ProjectX session {self.config.session_id}") from None

    async def _contract(self, symbol: str) -> dict[str, Any]:
        """Resolve once per symbol; concurrent places of a fan-out share one lookup."""
        pending = self._contract_lookups.get(symbol)
        if pending is None:
            pending = self._contract_lookups[symbol] = asyncio.ensure_future(self._resolve_contract(symbol))
        try:
            return await asyncio.shield(pending)
        except BaseException:
            if pending.done():
                self._contract_lookups.pop(symbol, None)  # let the next call try again
            raise

    async def _resolve_contract(self, symbol: str) -> dict[str, Any]:
        try:
            code, wanted = parsing.contract_for_symbol(symbol)
        except (KeyError, ValueError) as exc:
            raise OrderRejected(f"no ProjectX contract for {symbol!r}: {exc}", code="CONTRACT") from None
        data = await self._call(
            px.CONTRACT_SEARCH, {"searchText": code, "live": self.px.live}, Priority.MODIFY, idempotent=True
        )
        with answers.reading("Contract/search", data):
            found = [
                c
                for c in answers.rows(data, "contracts")
                if isinstance(c.get("id"), str) and (px.split_contract_id(c["id"]) or ("",))[0] == code
            ]
        match: dict[str, Any] | None = (
            next((c for c in found if c["id"] == wanted), None)
            if wanted
            else next((c for c in found if c.get("activeContract")), None)
        )
        if match is None and wanted:
            byid = await self._call(px.CONTRACT_SEARCH_BY_ID, {"contractId": wanted}, Priority.MODIFY, idempotent=True)
            single = byid.get("contract")
            match = single if isinstance(single, dict) else next(iter(answers.rows(byid, "contracts")), None)
            if match is not None and not isinstance(match.get("id"), str):
                raise codec.ProtocolError(
                    "Contract/searchById answered a contract without an id", answers.raw_text(byid)
                )
        if match is None:
            raise OrderRejected(
                f"ProjectX has no contract for {symbol!r}", code=str(px.PlaceOrderErrorCode.CONTRACT_NOT_FOUND.value)
            )
        self._symbols.setdefault(match["id"], symbol)
        return match

    def _symbol_for(self, contract_id: str) -> str:
        symbol = self._symbols.get(contract_id)
        if symbol is None:
            symbol = self._symbols[contract_id] = parsing.symbol_for_contract(contract_id)
        return symbol

    async def _order_id(self, account_id: str, client_order_id: str) -> str:
        broker_id = self.tracker.by_client_id.get((account_id, client_order_id))
        if broker_id is None:
            broker_id = await self._find_by_tag(account_id, client_order_id)
        if broker_id is None:
            raise UnknownOrder(f"no ProjectX order with custom tag {client_order_id!r}")
        return broker_id

    async def _find_by_tag(self, account_id: str, tag: str) -> str | None:
        found = await tags.orders_with_tag(
            self._call, self._account(account_id), tag, self.px.order_lookback_h, include_history=False
        )
        if not found:
            return None
        return self._remember_found(account_id, tag, found[0]).broker_order_id

    def _ack(
        self,
        account_id: str,
        client_order_id: str,
        broker_id: str,
        *,
        duplicate: bool = False,
        status: OrderStatus | None = None,
    ) -> OrderAck:
        tracked = self.tracker.orders.get(broker_id)
        current = tracked.last.status if tracked is not None and tracked.last is not None else OrderStatus.WORKING
        return OrderAck(account_id, client_order_id, broker_id, status or current, duplicate=duplicate)

    @staticmethod
    def _raise_for_order_error(data: dict[str, Any], client_order_id: str) -> None:
        if data.get("success"):
            return
        code, message = answers.error_code(data), data.get("errorMessage") or "refused"
        if code == px.ModifyOrderErrorCode.ORDER_NOT_FOUND:
            raise UnknownOrder(f"{client_order_id}: {message}", code=str(code))
        raise OrderRejected(f"{client_order_id}: {message}", code=str(code))


def _code_name(code: int) -> str:
    try:
        return px.PlaceOrderErrorCode(code).name
    except ValueError:
        return f"errorCode {code}"

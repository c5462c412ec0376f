"""The simulated Rithmic ORDER and PNL plants: R|Protocol over WebSocket on an ephemeral port.

One aiohttp WebSocket endpoint; every binary frame is one message (4-byte length + protobuf) and
is routed by template id through one dispatch table, :attr:`RithmicSimulator.handlers`. The shared
kernel does the trading; :mod:`.orders` speaks 312/314/316 to it and :mod:`.notify` turns its
events into 351/352 pushes for the sessions subscribed (308) to the account.

Strict by default (docs/fidelity/rithmic.md): anything but system info (16) or login (10) before a
login is refused with Reject 75 ``["1034", "invalid operation before login."]``; a frame without a
valid length gets Reject 75 ``message length is invalid``; a session silent for twice its
``heartbeat_interval`` is closed; one user may hold ``max_sessions`` (1) session per plant, an
older one gets ForcedLogout 77 (:mod:`.sessions`). No input closes the server: a frame it
cannot read gets a Reject 75 and the link stays up; a request whose handling fails (a simulator
bug) closes that link only, since it may be half carried out.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from aiohttp import WSMsgType, web
from google.protobuf.message import Message

from ...model import PositionEvent
from ...simkernel.exchange import KernelEvent, SimExchange, SimOrder
from ...simkernel.faults import FaultSwitches
from ...simkernel.latency import Latency
from ...simkernel.logins import SimLogin
from ...simkernel.serving import Background, HttpSite
from .. import codec
from . import wire
from .accounts import AccountDesk
from .notify import Notifier
from .orders import OrderDesk
from .sessions import SessionBook

log = logging.getLogger(__name__)

DEFAULT_ACCOUNTS = ("RITHMIC-LEADER", "RITHMIC-FOLLOWER-1")
SYSTEM_NAME = "Rithmic Test"  # the test gateway's system name [AR scripts/conformance.py]
SHARED = frozenset({16, 10, 12, 18})
#: Which templates each simulated plant answers [RG template table]; others get Reject 75.
PLANT_TEMPLATES = {
    wire.ORDER_PLANT: SHARED | {300, 302, 308, 310, 312, 314, 316, 320, 324, 330, 336, 346, 3504},
    wire.PNL_PLANT: SHARED | {400, 402},
}


@dataclass(eq=False)
class Session:
    """One WebSocket: who logged in on it and which accounts' order updates it asked for."""

    ws: web.WebSocketResponse
    user: str | None = None
    infra_type: int = 0
    order_accounts: set[str] = field(default_factory=set)
    pnl_accounts: set[str] = field(default_factory=set)
    bracket_accounts: set[str] = field(default_factory=set)
    outbox: asyncio.Queue[bytes | None] = field(default_factory=asyncio.Queue)
    login_order: int = 0  # when it logged in, so the oldest is the one a newer login evicts


Handler = Callable[[Session, Message], Awaitable[None]]


class RithmicSimulator:
    """Options: ``logins`` (list of :class:`SimLogin`; default one login ``sim-user``/``sim-pass``
    owning ``accounts``), ``balance``, ``system_name``, ``heartbeat_interval`` (s, sent in 11),
    ``latency`` (ms or ``"50+20"``, before every reply), ``tick_ms`` (market clock; 0 = manual),
    ``fcm_id``/``ib_id``, ``exchanges`` (those with a trade route; default every kernel venue),
    ``max_sessions`` (per user and plant, default 1: the strictest reading, see :mod:`.sessions`)."""

    def __init__(
        self, exchange: SimExchange | None = None, host: str = "127.0.0.1", port: int = 0, **options: Any
    ) -> None:
        self.exchange = exchange or SimExchange()
        self.host, self.port = host, port
        logins: list[SimLogin] | None = options.get("logins")
        if not logins:
            names = tuple(options.get("accounts", DEFAULT_ACCOUNTS))
            logins = [SimLogin(str(options.get("user", "sim-user")), str(options.get("password", "sim-pass")), names)]
        self.logins = {login.username: login for login in logins}
        for login in logins:
            for name in login.accounts:
                self.exchange.open_account(name, Decimal(str(options.get("balance", 50000))))
        self.system_name = str(options.get("system_name", SYSTEM_NAME))
        self.heartbeat_interval = float(options.get("heartbeat_interval", 60.0))
        self.latency = Latency.parse(options.get("latency", 0))
        self.tick_ms = float(options.get("tick_ms", 50.0))
        self.fcm_id, self.ib_id = str(options.get("fcm_id", "SIMFCM")), str(options.get("ib_id", "SIMIB"))
        venues = sorted(set(wire.EXCHANGE_OF_ROOT.values()))
        self.routes = {venue: "simulator" for venue in options.get("exchanges", venues)}
        self.exchange_of: dict[str, str] = {}  # broker order id → exchange it was sent to
        self.notifier = Notifier(self.fcm_id, self.ib_id, self.routes, self.exchange_of)
        self.sessions: set[Session] = set()
        self.heartbeats = 0  # RequestHeartbeat count, for tests
        self.lost_links: list[Session] = []  # sessions whose answer a lose_response fault ate
        self.desk = OrderDesk(self)
        self.book = SessionBook(self, int(options.get("max_sessions", 1)))
        self.accounts = AccountDesk(self)
        self.handlers: dict[int, Handler] = {
            16: self._system_info,
            10: self._login,
            12: self._logout,
            18: self._heartbeat,
            300: self._login_info,
            310: self._trade_routes,
            302: self._account_list,
            308: self._subscribe_orders,
            336: self._subscribe_brackets,
            320: self._show_orders,
            312: self.desk.new_order,
            330: self.desk.bracket_order,
            314: self.desk.modify_order,
            316: self.desk.cancel_order,
            346: self.desk.cancel_all,
            324: self.accounts.order_history,
            3504: self.accounts.exit_position,
            400: self.accounts.pnl_updates,
            402: self.accounts.pnl_snapshot,
        }
        self._held: list[tuple[str, list[Message]]] | None = None
        self._site = HttpSite()
        self._background = Background()
        self.url = ""

    # -- lifecycle -------------------------------------------------------------------------
    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/", self._serve)
        self.port = await self._site.start(app, self.host, self.port)
        self.url = f"ws://{self.host}:{self.port}"
        self.exchange.add_listener(self._on_kernel_event)
        self.exchange.add_forget_listener(self._on_forgotten)
        self._background.spawn(self._watch_faults(), "rithmic-sim-faults")
        if self.tick_ms > 0:
            self._background.spawn(self._clock(), "rithmic-sim-clock")

    def _on_forgotten(self, account: str, orders: list[SimOrder]) -> None:
        """The kernel forgot finished orders (its history limit): so does the order table."""
        for order in orders:
            self.exchange_of.pop(order.order_id, None)
        self.notifier.forget([order.order_id for order in orders])

    async def stop(self) -> None:
        await self._background.cancel_all()
        with contextlib.suppress(ValueError):
            self.exchange.remove_listener(self._on_kernel_event)
            self.exchange.remove_forget_listener(self._on_forgotten)
        for session in list(self.sessions):
            await session.ws.close()
        await self._site.stop()

    async def __aenter__(self) -> RithmicSimulator:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def faults(self, account_name: str) -> FaultSwitches:
        return self.exchange.account(account_name).faults

    # -- connection --------------------------------------------------------------------------
    async def _serve(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        session = Session(ws)
        self.sessions.add(session)
        writer = asyncio.get_running_loop().create_task(self._write(session), name="rithmic-sim-writer")
        try:
            await self._read(session)
        finally:
            self.sessions.discard(session)
            session.outbox.put_nowait(None)
            with contextlib.suppress(asyncio.CancelledError):
                await writer
            await ws.close()
        return ws

    @property
    def base_url(self) -> str:
        return self.url

    def credentials_for(self, username: str) -> dict[str, Any]:
        """What a client of ``username`` needs: user, password, system name, its accounts."""
        login = self.logins[username]
        return {
            "username": login.username,
            "password": login.secret,
            "system_name": self.system_name,
            "accounts": list(login.accounts),
        }

    def demo_credentials(self) -> dict[str, Any]:
        """The first login's credentials, every login, and symbols the kernel trades."""
        first = next(iter(self.logins))
        logins = [self.credentials_for(name) for name in self.logins]
        return {**self.credentials_for(first), "logins": logins, "symbols": wire.demo_symbols()}

    async def _read(self, session: Session) -> None:
        ws = session.ws
        while not ws.closed:
            timeout = 2 * self.heartbeat_interval if session.user else None
            try:
                frame = await ws.receive(timeout=timeout)
            except TimeoutError:
                return  # silent past the threshold: the server drops the link [RG Heartbeats]
            if frame.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED, WSMsgType.ERROR):
                return
            if frame.type is not WSMsgType.BINARY:
                self.send(session, wire.reject(None, ["3", "message length is invalid"]))
                continue
            try:
                message = codec.decode(frame.data)
            except codec.UnknownTemplate as exc:
                self.send(session, wire.reject(None, ["3", f"unknown template id {exc.template_id}"]))
                continue
            except codec.FrameError as exc:
                self.send(session, wire.reject(None, ["3", str(exc)]))
                continue
            template_id = codec.template_of(message)
            handler = self.handlers.get(template_id)
            faulted = self.book.fault_answer(session, message)
            if faulted is not None:
                self.send(session, faulted)
            elif session.user is None and template_id not in (10, 16):
                self.send(session, wire.reject(message, wire.BEFORE_LOGIN))
            elif handler is None or (session.user and template_id not in PLANT_TEMPLATES[session.infra_type]):
                self.send(session, wire.reject(message, ["3", f"template {template_id} not supported here"]))
            else:
                await self.latency.wait()
                try:
                    await handler(session, message)
                except Exception:  # noqa: BLE001 - a simulator bug must not take the server down
                    # The request may be half carried out, so a Reject (= "not done") would lie:
                    # this link ends instead (its client looks the order up), the server goes on.
                    log.exception("rithmic simulator: template %s failed; closing that link", template_id)
                    await ws.close()
                    return
                if session in self.lost_links:
                    self.lost_links.remove(session)
                    await ws.close()  # a reset before the reply left: nothing more is written
                    return

    async def _write(self, session: Session) -> None:
        while (frame := await session.outbox.get()) is not None:
            if session.ws.closed:
                return
            if not frame:  # the server ends this session (ForcedLogout): close after what was queued
                await session.ws.close()
                return
            with contextlib.suppress(ConnectionError):
                await session.ws.send_bytes(frame)

    def send(self, session: Session, *messages: Message) -> None:
        """Queue ``messages`` for ``session`` in order (one binary frame each)."""
        for message in messages:
            session.outbox.put_nowait(codec.encode(message))

    # -- shared and ORDER plant admin templates ---------------------------------------------
    async def _system_info(self, session: Session, request: Message) -> None:
        self.send(session, wire.final(request, 17, system_name=[self.system_name], has_aggregated_quotes=[False]))

    async def _login(self, session: Session, request: Message) -> None:
        req: Any = request
        login = self.logins.get(req.user)
        if session.user is not None:
            self.send(session, wire.final(request, 11, ["3", "already logged in"]))
        elif login is None or login.secret != req.password or req.system_name != self.system_name:
            self.send(session, wire.final(request, 11, wire.PERMISSION_DENIED))
        elif req.infra_type not in PLANT_TEMPLATES:
            self.send(session, wire.final(request, 11, ["13", "simulator serves the ORDER and PNL plants only"]))
        else:
            session.user, session.infra_type = login.username, req.infra_type
            hb = self.heartbeat_interval
            fields: dict[str, Any] = dict(
                fcm_id=self.fcm_id, ib_id=self.ib_id, heartbeat_interval=hb, unique_user_id=login.username
            )
            self.send(session, wire.final(request, 11, template_version=req.template_version, **fields))
            self.book.logged_in(session)

    async def _logout(self, session: Session, request: Message) -> None:
        session.user = None
        session.order_accounts.clear()
        session.pnl_accounts.clear()
        self.send(session, wire.final(request, 13))

    async def _heartbeat(self, session: Session, request: Message) -> None:
        self.heartbeats += 1
        self.send(session, wire.final(request, 19))

    async def _login_info(self, session: Session, request: Message) -> None:
        fields: dict[str, Any] = dict(fcm_id=self.fcm_id, ib_id=self.ib_id, user=session.user, user_type=3)  # TRADER
        fields.update(tp_max_session_count=self.book.max_sessions, op_max_session_count=self.book.max_sessions)
        self.send(session, wire.final(request, 301, **fields))

    async def _trade_routes(self, session: Session, request: Message) -> None:
        parts = [
            wire.part(request, 311, fcm_id=self.fcm_id, ib_id=self.ib_id, exchange=venue, trade_route=route)
            for venue, route in self.routes.items()
        ]
        for message in parts:
            message.status = "UP"
            message.is_default = True
        self.send(session, *parts, wire.final(request, 311))

    def accounts_of(self, session: Session) -> tuple[str, ...]:
        return self.logins[session.user].accounts if session.user else ()

    async def _account_list(self, session: Session, request: Message) -> None:
        parts = [
            wire.part(request, 303, fcm_id=self.fcm_id, ib_id=self.ib_id, account_id=name, account_name=name)
            for name in self.accounts_of(session)
        ]
        for message in parts:
            message.account_currency = "USD"
        self.send(session, *parts, wire.final(request, 303))

    def wrong_account(self, session: Session, request: Message) -> list[str] | None:
        """Why ``request``'s fcm/ib/account is not this session's to use, or None."""
        req: Any = request
        if req.fcm_id and req.fcm_id != self.fcm_id or req.ib_id and req.ib_id != self.ib_id:
            return ["13", "permission denied: fcm_id/ib_id"]
        if req.account_id not in self.accounts_of(session):
            return ["13", f"permission denied: account {req.account_id!r}"]
        return None

    async def _subscribe_orders(self, session: Session, request: Message) -> None:
        refused = self.wrong_account(session, request)
        if refused is None:
            session.order_accounts.add(request.account_id)
        self.send(session, wire.final(request, 309, refused))

    async def _subscribe_brackets(self, session: Session, request: Message) -> None:
        """336 → 337; the account's bracket orders (330) are then reported on 353."""
        refused = self.wrong_account(session, request)
        if refused is None:
            session.bracket_accounts.add(request.account_id)
        self.send(session, wire.final(request, 337, refused))

    def bracket_update(self, order: SimOrder, request: Any) -> None:
        """353 BracketUpdates for a new bracket order: its target and stop ticks and quantities
        [PB78 bracket_updates; AR order.py reads them]; sent to the account's 336 subscribers."""
        update = codec.build(
            353,
            fcm_id=self.fcm_id,
            ib_id=self.ib_id,
            account_id=order.account,
            basket_id=order.order_id,
            target_ticks=request.target_ticks,
            target_quantity=request.target_quantity,
            stop_ticks=request.stop_ticks,
            stop_quantity=request.stop_quantity,
        )
        for session in self.sessions:
            if order.account in session.bracket_accounts:
                self.send(session, update)

    async def _show_orders(self, session: Session, request: Message) -> None:
        """Open orders as 352 snapshots, then 321 (whether 351 snapshots come too: UNDOCUMENTED)."""
        refused = self.wrong_account(session, request)
        if refused is None:
            account = request.account_id
            orders = [o for o in self.exchange.open_orders(account) if o.order_id in self.exchange_of]
            self.send(session, *(self.notifier.snapshot(order) for order in orders))
        self.send(session, wire.final(request, 321, refused))

    # -- kernel → pushes --------------------------------------------------------------------
    @contextlib.contextmanager
    def holding(self) -> Iterator[None]:
        """Hold pushes while a request is carried out, so its reply (e.g. 313) goes out first."""
        held: list[tuple[str, list[Message]]] = []
        self._held = held
        try:
            yield
        finally:
            self._held = None
            for account_id, messages in held:
                self._push(account_id, messages)

    def _on_kernel_event(self, event: KernelEvent) -> None:
        if isinstance(event, PositionEvent):
            update = self.accounts.instrument(event)
            for session in self.sessions:
                if event.account_id in session.pnl_accounts:
                    self.send(session, update, self.accounts.account(event.account_id))
            return
        account = self.exchange.accounts.get(event.account_id)
        order_id = getattr(event, "broker_order_id", None)
        order = account.orders.get(order_id) if account is not None and order_id else None
        messages = self.notifier.translate(event, order)  # now: the order's state moves on
        if not messages:
            return
        if self._held is not None:
            self._held.append((event.account_id, messages))
        else:
            self._push(event.account_id, messages)

    def _push(self, account_id: str, messages: list[Message]) -> None:
        for session in self.sessions:
            if account_id in session.order_accounts:
                self.send(session, *messages)

    async def _clock(self) -> None:
        while True:
            await asyncio.sleep(self.tick_ms / 1000.0)
            self.exchange.advance()

    async def _watch_faults(self) -> None:
        """The drop switch closes every session that sees the faulted account."""
        while True:
            await asyncio.sleep(0.01)
            for name in list(self.exchange.accounts):
                if self.exchange.accounts[name].faults.take_drop():
                    for session in list(self.sessions):
                        if name in self.accounts_of(session):
                            await session.ws.close()

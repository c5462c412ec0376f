"""The FIX 4.2/4.4 adapter: one QuickFIX initiator session to a broker's or FCM's acceptor.

Session (``config.py``): ``endpoint`` ``fix://host:port``; options (``options.py``)
``fix_version`` (FIX.4.2 or FIX.4.4), ``sender_comp_id``, ``target_comp_id``, ``heartbeat_s``,
``store_dir`` (the FileStore: sequence numbers survive restarts), ``reset_on_logon``,
``order_status_requests`` (the counterparty answers 35=H), ``request_timeout_s``;
``username``/``secret`` go in the Logon (553/554). ``accounts`` maps our ids to FIX Account (1)
values.

The engine does the session layer (logon, heartbeats, test requests, resend requests, gap fills,
reconnects every ``reconnect_s``). This class waits for answers on the loop (``application.py``
brings every message here) and turns ExecutionReports into events, each fill once. After every
logon, the missed reports arrive by the engine's resend, and the orders still open are asked for
with OrderStatusRequests. Nothing of ours goes out after a logon before the engine has read the
counterparty's first message after its Logon answer (:meth:`_catch_up`): a ResendRequest comes
first when it lost our last messages with the line, and our gap fill would cover (and the
counterparty skip) a request sent before it. Exactly once: see ``orders.py`` and ``application.py``. Memory that
does not grow with the run (#18): finished orders shrink to fingerprints (``tracking.py``), the
resync drops those the counterparty forgot (:meth:`_forget_what_the_counterparty_forgot`), and
the journal is compacted (``journal.py``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from decimal import Decimal
from typing import ClassVar

import quickfix as fix

from ..base import BrokerAdapter, SessionConfig
from ..errors import AuthenticationFailed, BrokerUnavailable
from ..model import (
    AccountSnapshot,
    CancelOrder,
    Capabilities,
    ConnectionEvent,
    ConnectionState,
    FlattenPosition,
    ModifyOrder,
    OrderAck,
    PlaceOrder,
)
from . import messages as m
from . import orders
from .application import MSG_SEQ_NUM, Bridge, Listener, SessionKey, send
from .codec import FixDecodeError, FixMessage, parse
from .config import FixConfig
from .journal import JOURNAL
from .reports import ReportRouter
from .settings import initiator_session_id, initiator_settings
from .tracking import SessionBook, TrackedOrder

log = logging.getLogger(__name__)
#: Our order messages whose MsgSeqNum a session Reject may name; the oldest go beyond this
#: (a Reject answers a message just sent, and its request waits only ``timeout_s``).
SENT_SEQ_KEPT = 10_000
#: Forgotten orders asked about per resync (each one OrderStatusRequest, one at a time).
PROBES_PER_RESYNC = 10_000
#: OrderStatusRequests for forgotten orders in flight at once (distinct ClOrdIDs).
PROBE_BATCH = 50
#: How often the wait after a logon looks at the engine's expected sequence number (it
#: usually moves within one round trip: a ResendRequest or the Heartbeat to our TestRequest).
CATCH_UP_POLL_S = 0.005
TEST_REQUEST, TEST_REQ_ID = "1", 112


class FixAdapter(BrokerAdapter, Listener):
    platform: ClassVar[str] = "fix"
    capabilities: ClassVar[Capabilities] = Capabilities(brackets=False, oco=False, fill_corrections=True)

    def __init__(self, config: SessionConfig) -> None:
        super().__init__(config)
        self.fix = FixConfig.from_session(config)
        self.key = SessionKey(self.fix.begin_string, self.fix.sender_comp_id, self.fix.target_comp_id)
        self.book = SessionBook(self.fix.store_dir / JOURNAL)
        self.book.load()
        self.router = ReportRouter(self)
        self.accounts_in = {name: ours for ours, name in self.fix.accounts.items()}
        self._initiator: fix.SocketInitiator | None = None
        self._bridge: Bridge | None = None
        self._logged_on = asyncio.Event()
        self._caught_up = asyncio.Event()  # the counterparty's resend request, if any, answered
        self._logon_seq = 0  # MsgSeqNum of the counterparty's last Logon
        self._logged_out = asyncio.Event()
        self._logon_refused: str | None = None
        self._stopping = False
        self.logons = 0
        self.sent_seq: dict[int, tuple[str, str]] = {}  # our MsgSeqNum → (MsgType, ClOrdID)
        self._resyncs: set[asyncio.Task[None]] = set()
        self.status_lock = asyncio.Lock()  # one OrderStatusRequest in flight (orders.status)
        self._probing = False  # a round of status requests for forgotten orders is running

    # -- lifecycle ---------------------------------------------------------------------------
    async def connect(self) -> None:
        if self._state is ConnectionState.CONNECTED:
            return
        self._stopping = False
        self._logon_refused = None
        self._set_state(ConnectionState.CONNECTING)
        loop = asyncio.get_running_loop()
        self._bridge = Bridge(loop, self, credentials=(self.fix.username, self.fix.password))
        settings = initiator_settings(self.fix)
        # No engine log: QuickFIX's FileLog writes every message, our Logon's Password (554) too.
        self._initiator = fix.SocketInitiator(self._bridge, fix.FileStoreFactory(settings), settings)
        await asyncio.to_thread(self._initiator.start)
        try:
            await self._await_logon()
        except BaseException as exc:
            await self._stop_engine(force=True)
            self._set_state(ConnectionState.DISCONNECTED, f"fix: logon to {self.fix.address} failed: {exc}")
            raise
        self._set_state(ConnectionState.CONNECTED)
        await self._resync(emit=False)

    async def _await_logon(self) -> None:
        deadline = asyncio.get_running_loop().time() + self.fix.logon_timeout_s
        while not self._logged_on.is_set():
            if self._logon_refused is not None:
                raise AuthenticationFailed(f"fix: logon refused: {self._logon_refused}", code="LOGON_REJECTED")
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                raise BrokerUnavailable(f"fix: no Logon answer from {self.fix.address}", sent=False)
            try:
                await asyncio.wait_for(self._logged_on.wait(), min(remaining, 0.05))
            except TimeoutError:
                continue

    async def disconnect(self) -> None:
        self._stopping = True
        await self._logout()
        await self._stop_engine(force=True)
        self.router.fail_all(BrokerUnavailable("fix: disconnected", sent=True))
        for task in list(self._resyncs):
            task.cancel()
        self._set_state(ConnectionState.DISCONNECTED)

    async def _logout(self) -> None:
        """A clean Logout, sent now and its answer waited for here: QuickFIX's own ``logout()``
        and ``stop()`` act on the engine's one-second timer, so the engine is stopped with
        ``force`` once the counterparty has answered."""
        if self._initiator is None or not self._logged_on.is_set():
            return
        self._logged_out.clear()
        if not send(self.key, "5", [(m.TEXT, "client logout")]):
            return
        try:
            await asyncio.wait_for(self._logged_out.wait(), 2.0)
        except TimeoutError:
            log.warning("fix session %s: no Logout answer within 2 s; closing", self.config.session_id)

    async def _stop_engine(self, *, force: bool) -> None:
        """Stop the initiator off the loop: ``stop`` joins QuickFIX's threads, whose last
        callbacks (onLogout) post to this loop and must find it running."""
        initiator, self._initiator = self._initiator, None
        if initiator is not None:
            await asyncio.to_thread(initiator.stop, force)
        self._logged_on.clear()

    # -- the engine's news (on the loop) -----------------------------------------------------
    def on_logon(self, key: SessionKey) -> None:
        self.logons += 1
        self._logged_on.set()
        self._caught_up.clear()
        self._in_background(self._catch_up(self.logons))
        if self._state is ConnectionState.DEGRADED:
            self._set_state(ConnectionState.CONNECTED)
            self._in_background(self._resync(emit=True))

    def _in_background(self, work: Coroutine[None, None, None]) -> None:
        """A resync step that must not hold up its caller (cancelled by ``disconnect``)."""
        task = asyncio.get_running_loop().create_task(work)
        self._resyncs.add(task)
        task.add_done_callback(self._resyncs.discard)

    async def _catch_up(self, logon: int) -> None:
        """Open the way for our messages once the engine has read the counterparty's message
        after its Logon answer. A counterparty that lost our last messages with the line asks
        for them with a ResendRequest right after that answer, and the engine answers with a
        SequenceReset-GapFill up to its next number (it stores no order to resend): a request
        sent before the engine read the ResendRequest would lie inside the gap fill, and the
        counterparty, which queued it as too high, skips it. A TestRequest makes sure some
        message follows the Logon; its Heartbeat, a ResendRequest or any other message moves
        the engine's expected number past the Logon's. Bounded by ``request_timeout_s``."""
        session = fix.Session.lookupSession(initiator_session_id(self.fix))
        if session is None:  # no engine session to wait for: send() says why nothing goes out
            self._caught_up.set()
            return
        past_logon = self._logon_seq + 1
        send(self.key, TEST_REQUEST, [(TEST_REQ_ID, f"caught-up-{logon}")])
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.fix.request_timeout_s
        while session.getExpectedTargetNum() <= past_logon and loop.time() < deadline:
            if self.logons != logon or not self._logged_on.is_set():
                return
            await asyncio.sleep(CATCH_UP_POLL_S)
        if self.logons == logon and self._logged_on.is_set():
            if session.getExpectedTargetNum() <= past_logon:
                log.warning("fix session %s: nothing read after the Logon; sending anyway", self.config.session_id)
            self._caught_up.set()

    def on_logout(self, key: SessionKey) -> None:
        was_on = self._logged_on.is_set()
        self._logged_on.clear()
        self._caught_up.clear()
        self._logged_out.set()
        if self._stopping or self._initiator is None:
            return
        self.router.fail_all(BrokerUnavailable("fix: session logged out with requests in flight", sent=True))
        if was_on and self._state is ConnectionState.CONNECTED:
            self._set_state(ConnectionState.DEGRADED, "fix: session lost; the engine reconnects")

    def on_admin(self, key: SessionKey, raw: str) -> None:
        try:
            message = parse(raw)
        except FixDecodeError as exc:
            self.report(f"unreadable admin message: {exc}; raw={exc.raw!r}")
            return
        if message.msg_type == "A":
            seq = message.get(MSG_SEQ_NUM)
            self._logon_seq = int(seq) if seq.isdigit() else 0
        elif message.msg_type == "5":
            if not self._logged_on.is_set():
                self._logon_refused = message.get(m.TEXT) or "the counterparty logged out during logon"
            self._logged_out.set()
        elif message.msg_type == m.SESSION_REJECT:
            self.router.session_reject(message)

    def on_app(self, key: SessionKey, raw: str) -> None:
        try:
            self.router.route(parse(raw))
        except FixDecodeError as exc:
            self.report(f"message not understood: {exc}; raw={exc.raw!r}")
        except Exception as exc:  # noqa: BLE001 - one bad report must never end the session
            log.exception("fix session %s: report handling failed", self.config.session_id)
            self.report(f"report handling failed: {exc!r}")

    def on_sent(self, key: SessionKey, msg_type: str, seq_num: int, raw: str) -> None:
        if msg_type in (m.NEW_ORDER, m.CANCEL, m.REPLACE, m.STATUS):
            try:
                self.sent_seq[seq_num] = (msg_type, parse(raw).get(m.CL_ORD_ID))
                if len(self.sent_seq) > SENT_SEQ_KEPT:  # a Reject names a message just sent (#18)
                    del self.sent_seq[next(iter(self.sent_seq))]
            except FixDecodeError:
                pass

    async def ready(self) -> None:
        """Wait (up to the request timeout) while the engine is logging on again after a drop,
        and after a logon until the counterparty's resend request, if any, is answered."""
        if self._caught_up.is_set() or self._initiator is None or self._stopping:
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.fix.request_timeout_s
        for step in (self._logged_on, self._caught_up):
            try:
                await asyncio.wait_for(step.wait(), max(0.0, deadline - loop.time()))
            except TimeoutError:
                return  # send() says "not logged on", or it goes out after all

    # -- sending -----------------------------------------------------------------------------
    def send(self, msg_type: str, fields: list[tuple[int, str]]) -> None:
        """Hand a message to the engine, only while logged on: a message queued while down would
        go out as a PossDup resend, which ``Bridge.toApp`` refuses for order entry."""
        session = fix.Session.lookupSession(initiator_session_id(self.fix))
        if self._initiator is None or session is None or not session.isLoggedOn():
            raise BrokerUnavailable(f"fix: not logged on to {self.fix.address}", sent=False)
        if not send(self.key, msg_type, fields):
            raise BrokerUnavailable(f"fix: the engine refused to send {msg_type}", sent=False)

    # -- orders ------------------------------------------------------------------------------
    async def place(self, command: PlaceOrder) -> OrderAck:
        return await orders.place(self, command)

    async def modify(self, command: ModifyOrder) -> OrderAck:
        return await orders.modify(self, command)

    async def cancel(self, command: CancelOrder) -> OrderAck:
        return await orders.cancel(self, command)

    async def flatten(self, command: FlattenPosition) -> OrderAck:
        return await orders.flatten(self, command)

    async def lookup(self, account_id: str, client_order_id: str) -> OrderAck | None:
        return await orders.lookup(self, account_id, client_order_id)

    # -- state -------------------------------------------------------------------------------
    async def snapshot(self, account_id: str) -> AccountSnapshot:
        """Open orders as the counterparty answers their status requests now, positions from the
        fills this session was told of (FIX 4.2/4.4 order routing has no standard position or
        balance query that counterparties share; the fidelity table says so)."""
        self.broker_account(account_id)
        opened = []
        for order in self.book.working(account_id):
            for order_id in order.order_ids or [""]:
                if self.fix.order_status:
                    state = await orders.status(self, order, order_id)
                else:
                    state = self.book.states.get(order_id)
                if state is not None and not state.status.is_final:
                    opened.append(state)
        positions = tuple(
            self.book.position(account_id, symbol)
            for (owner, symbol), net in sorted(self.book.positions.items())
            if owner == account_id and net
        )
        return AccountSnapshot(
            account_id=account_id, balance=Decimal(0), open_orders=tuple(opened), positions=positions
        )

    async def _resync(self, *, emit: bool) -> None:
        """Ask for every order this session knows as open (the resend already brought what the
        counterparty sent while we were away; this catches what it never sent)."""
        if not self.fix.order_status:
            return
        for account_id in self.fix.accounts:
            for order in self.book.working(account_id):
                for order_id in order.order_ids or [""]:
                    try:
                        state = await orders.status(self, order, order_id)
                    except BrokerUnavailable as exc:
                        self.report(f"resync of {order.client_order_id!r} failed: {exc}")
                        return
                    if state is not None and self.book.changed(order.client_order_id, state) and emit:
                        self._emit(state)
                    self.book.settle(order.client_order_id)
        # in the background: after a restart it may ask about many orders, and connect() waits here
        self._in_background(self._forget_what_the_counterparty_forgot())

    async def _forget_what_the_counterparty_forgot(self) -> None:
        """Ask about forgotten orders, oldest first per account (``PROBE_BATCH`` requests in
        flight at once), and drop the fingerprints of those the counterparty answers with
        "unknown order" (OrdRejReason 5): no report can name them any more. The first order it
        still knows ends an account's round (it drops finished orders in the order they ended,
        so the newer ones are known too). Each drop rests on its own answer, so a round cut
        short (a request fails, the link drops) still drops those already answered; every
        other fingerprint stays. One round at a time (a resync during one does not start
        another)."""
        book = self.book
        if not book.forgotten or self._probing:
            return
        self._probing = True
        replay, unknown = book.finished.begin_replay(), set[str]()
        try:
            for account_id in self.fix.accounts:
                await self._probe_account(book.forgotten_of(account_id)[:PROBES_PER_RESYNC], unknown)
        except BrokerUnavailable as exc:
            self.report(f"status of forgotten orders cut short: {exc}")
        finally:
            self._probing = False
            for client_id in list(book.forgotten):
                if client_id not in unknown:
                    book.finished.listed(replay, client_id)
            book.forget_for_good(book.finished.end_replay(replay))

    async def _probe_account(self, forgotten: list[TrackedOrder], unknown: set[str]) -> None:
        """Add to ``unknown`` the account's oldest forgotten orders the counterparty no longer
        knows, up to the first one it knows. An order held under several OrderIDs is asked
        about alone, once per OrderID (its requests would share one ClOrdID)."""
        while forgotten:
            batch = forgotten[:1] if len(forgotten[0].order_ids) > 1 else []
            for order in forgotten:
                if len(batch) >= PROBE_BATCH or len(order.order_ids) > 1:
                    break
                batch.append(order)
            forgotten = forgotten[len(batch) :]
            if len(batch[0].order_ids) > 1:
                answers = [await orders.status(self, batch[0], oid) for oid in batch[0].order_ids]
                known = [any(answer is not None for answer in answers)]
            else:
                known = [answer is not None for answer in await orders.statuses(self, batch)]
            for order, still_known in zip(batch, known, strict=True):
                if still_known:
                    return
                unknown.add(order.client_order_id)

    def report(self, text: str) -> None:
        """An error no request raises: kept as the session's last error and sent as an event."""
        reason = f"fix: {text}"
        log.error("fix session %s: %s", self.config.session_id, reason)
        self._last_error = reason
        self._emit(ConnectionEvent(state=self._state, reason=reason))

    def account_of(self, message: FixMessage) -> str | None:
        return self.accounts_in.get(message.get(m.ACCOUNT))

"""The protective-stop invariant (issue #17 item 4): a follower never holds a position without
the leader's protective stop for longer than its copy group's ``protective_stop_s`` (2 s).

Why in the executor: only it sees, per follower, the outcome of every stop copy (the router's
outcome hook) and the follower's fills and order changes (the fill pump), and only it can act
through the follower's lane, where a re-placed stop goes through the attempt journal and the
lookup path like any copy, so it is never doubled.

What counts: a follower order copied from a leader stop or stop-limit (a bracket's stop leg
reaches the copier as one) whose side is opposite to the follower's position. The follower is
*naked* on a symbol when it holds a position (or its position is not known since start or a
reconnect), the leader has such a stop there, and none of the follower's copies of it is
working. A naked symbol starts a timer; at expiry the watcher first reads the broker's own
state (a snapshot) and acts only on that: never from a guess. If the session is down it says
so (``STOP_MISSING_UNVERIFIED``) and waits for the session. If the broker confirms the
position and no protective stop works, the stop is placed again once (a new client id derived
from the original), else the symbol is flattened; each is reported on ``order.errors``.

Cost on the copy path: a dictionary lookup per outcome and per broker event, and one timer per
naked symbol; nothing walks all accounts.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable

from ...brokers.model import FillEvent, OrderEvent, OrderStatus, PositionEvent
from ...core.records import Execution, OrderError, OrderIntent
from . import protective_orders as orders
from .protective_orders import Truth
from .protective_state import Book, Mine, StopCopy, Timer

log = logging.getLogger(__name__)

STOP_TYPES = frozenset({"stop", "stop_limit"})
#: A missing stop is placed again this many times; then the symbol is flattened.
MAX_REPLACEMENTS = 1
#: A flatten the broker refused is tried again (new derived id) this many times in all.
MAX_FLATTENS = 3
WORKING = frozenset({OrderStatus.WORKING, OrderStatus.PARTIALLY_FILLED})
#: The router's codes for an outcome it could not read: the order may be working after all.
UNKNOWN_CODES = frozenset({"OUTCOME_UNKNOWN", "BAD_ANSWER", "INTERNAL"})
GONE = frozenset({OrderStatus.CANCELLED, OrderStatus.EXPIRED, OrderStatus.REJECTED})
#: Final events of unknown orders kept for an outcome that may still come (a few seconds' worth).
EARLY_EVENTS_KEPT = 4096


CallLater = Callable[[float, Callable[[], None]], Timer]
Verify = Callable[[str, str], Awaitable[Truth]]
Submit = Callable[[OrderIntent], None]
Report = Callable[[OrderError], Awaitable[None]]


class ProtectiveStops:
    """Every watched follower's books, fed by the router's outcome and event hooks."""

    def __init__(
        self,
        deadline_for: Callable[[str, str], float | None],
        verify: Verify,
        submit: Submit,
        report: Report,
        clock: Callable[[], float],
        call_later: CallLater,
    ) -> None:
        self.deadline_for = deadline_for  # (leader, follower) → seconds, None: not watched
        self.verify = verify
        self.submit = submit
        self.report = report
        self.clock = clock
        self.call_later = call_later
        self.owns: Callable[[str], bool] = lambda _account: True  # this worker holds the lane
        self.books: dict[str, dict[str, Book]] = {}  # account → symbol → book
        self._by_id: dict[str, tuple[Book, StopCopy]] = {}  # original and live ids → stop
        self._mine: dict[str, Mine] = {}
        # Final events of stop orders not known yet: the fill pump can be ahead of the router's
        # answer (Tradovate's WebSocket vs its REST reply). Bounded; read when the outcome comes.
        self._early: OrderedDict[str, str] = OrderedDict()
        self._acting: set[asyncio.Future[None]] = set()

    # -- the router's hooks ---------------------------------------------------------------
    def on_outcome(self, intent: OrderIntent, outcome: Execution | OrderError) -> None:
        """Every intent's one outcome: stop copies, the leader's changes to them, our orders."""
        mine = self._mine.pop(intent.client_order_id, None)
        if mine is not None:
            self._our_outcome(mine, intent, outcome)
        elif intent.action == "place" and intent.order_type in STOP_TYPES:
            self._stop_copy(intent, outcome)
        elif intent.action in ("modify", "cancel") and self._is_original(intent.target_client_order_id):
            # Aimed at the copy fan-out planned: the leader changed or took away its stop. A
            # cancel aimed at a replacement comes from elsewhere (the reconciler sees it as an
            # orphan): the broker's cancel event marks it missing like any lost stop.
            self._leader_change(intent)
        elif intent.action == "flatten" and isinstance(outcome, Execution):
            for book in list(self.books.get(intent.account_id, {}).values()):
                if not intent.symbol or book.symbol == intent.symbol:
                    self._drop_stops(book)  # a flatten cancels the symbol's working orders
                    self._evaluate(book)

    def on_event(self, event: object) -> None:
        """The fill pump's events: positions move, stop copies start working or go missing."""
        if isinstance(event, FillEvent):
            book = self._book(event.account_id, event.symbol)
            if book.position is not None and not book.reported:
                book.position += event.side.sign * event.quantity
            found = self._by_id.get(event.client_order_id or "")
            if found is not None and found[1].live_id == event.client_order_id and event.leaves_quantity == 0:
                self._forget(found[0], found[1])  # the stop did its job
            elif found is None and event.leaves_quantity == 0 and event.client_order_id:
                self._remember_early(event.client_order_id, "filled")
            book.covered_elsewhere = False
            self._evaluate(book)
        elif isinstance(event, PositionEvent):
            book = self._book(event.account_id, event.symbol)
            book.position, book.reported = event.net_quantity, True
            book.covered_elsewhere = False
            self._evaluate(book)
        elif isinstance(event, OrderEvent):
            found = self._by_id.get(event.client_order_id or "")
            if found is None and event.client_order_id and event.order_type.value in STOP_TYPES:
                if event.status in GONE or event.status is OrderStatus.FILLED:
                    self._remember_early(event.client_order_id, event.status.value)
                return
            if found is None or found[1].live_id != event.client_order_id:
                return
            book, stop = found
            if event.status in WORKING:
                stop.state = "working"
            elif event.status in GONE:
                stop.state = "missing"
                book.covered_elsewhere = False
            elif event.status is OrderStatus.FILLED:
                self._forget(book, stop)
            self._evaluate(book)

    def on_session_connected(self, account_ids: set[str]) -> None:
        """After a (re)connect the positions we counted may have missed fills: unknown again,
        and a symbol that was waiting for this session is looked at now."""
        for account_id in account_ids:
            for book in self.books.get(account_id, {}).values():
                book.position = None
                book.gave_up, book.flattens = False, 0  # a failure may have been the session's
                if book.naked_since is not None and not book.acting:
                    self._arm(book, 0.0)
                else:
                    self._evaluate(book)

    async def close(self) -> None:
        """Shutdown: no timer fires and no action runs once the lanes are closing."""
        for symbols in self.books.values():
            for book in symbols.values():
                if book.timer is not None:
                    book.timer.cancel()
                    book.timer = None
        for task in list(self._acting):
            task.cancel()
        await asyncio.gather(*self._acting, return_exceptions=True)

    async def settled(self) -> None:
        """Wait for the actions under way (tests, shutdown)."""
        while self._acting:
            await asyncio.gather(*self._acting, return_exceptions=True)

    # -- stop copies and the leader's changes to them ---------------------------------------
    def _stop_copy(self, intent: OrderIntent, outcome: Execution | OrderError) -> None:
        found = self._by_id.get(intent.client_order_id)
        if found is not None:  # a late outcome (a late lookup) of a copy we know
            book, stop = found
            if stop.live_id == intent.client_order_id and isinstance(outcome, Execution):
                stop.state = "working"
                self._evaluate(book)
            return
        deadline = self.deadline_for(intent.leader_account, intent.account_id)
        if deadline is None:
            return
        book = self._book(intent.account_id, intent.symbol)
        book.deadline_s = deadline
        early = self._early.pop(intent.client_order_id, None)
        if early == "filled":  # it filled before the router's answer came back: done
            self._evaluate(book)
            return
        stop = StopCopy(intent, intent.client_order_id)
        stop.state = "working" if isinstance(outcome, Execution) and early is None else "missing"
        stop.maybe_live = isinstance(outcome, OrderError) and outcome.code in UNKNOWN_CODES
        book.stops[intent.client_order_id] = stop
        self._by_id[intent.client_order_id] = (book, stop)
        book.covered_elsewhere = False
        self._evaluate(book)

    def _leader_change(self, intent: OrderIntent) -> None:
        book, stop = self._by_id[intent.target_client_order_id or ""]
        original = stop.intent.client_order_id
        if intent.action == "cancel":  # the leader took its stop away: nothing to protect with
            self._forget(book, stop)
            if stop.live_id != original:
                self._send(orders.forward(intent, stop.live_id), Mine("forward", book))
        else:
            stop.intent = orders.modified(stop.intent, intent)
            if stop.live_id != original:
                self._send(orders.forward(intent, stop.live_id), Mine("forward", book))
        self._evaluate(book)

    def _our_outcome(self, mine: Mine, intent: OrderIntent, outcome: Execution | OrderError) -> None:
        book, ok = mine.book, isinstance(outcome, Execution)
        if mine.kind == "replace" and mine.stop is not None:
            if ok and mine.stop.state != "missing":  # not gone already (an event ahead of the ack)
                if mine.stop.state == "pending":
                    mine.stop.state = "working"
                self._spawn(self._say(book, "STOP_MISSING_REPLACED", intent, "placed the stop again"))
                book.acting = False
                self._evaluate(book)
            else:  # the second try failed too: flatten, after one more look at the broker
                mine.stop.state = "missing"
                book.acting = False
                self._arm(book, 0.0)
        elif mine.kind == "flatten":
            book.acting = False
            if ok:
                self._spawn(self._say(book, "STOP_MISSING_FLATTENED", intent, "flattened the position"))
                self._drop_stops(book)
                self._evaluate(book)
            else:
                reason = outcome.reason if isinstance(outcome, OrderError) else ""
                last = book.flattens >= MAX_FLATTENS
                then = "gave up: flatten it by hand" if last else "trying again"
                attempt = f"flatten {book.flattens} of {MAX_FLATTENS} failed ({reason}); {then}"
                self._spawn(self._say(book, "STOP_MISSING_FLATTEN_FAILED", intent, attempt))
                if last:
                    book.gave_up = True
                else:
                    self._arm(book, book.deadline_s)

    # -- the timer and the action -----------------------------------------------------------
    def _evaluate(self, book: Book) -> None:
        if book.acting:
            return
        if book.naked():
            if book.gave_up:
                return
            if book.naked_since is None:
                book.naked_since = self.clock()
                self._arm(book, book.deadline_s)
            elif book.timer is None:
                self._arm(book, max(0.0, book.naked_since + book.deadline_s - self.clock()))
            return
        book.naked_since = None
        book.reported_down = book.gave_up = False
        book.flattens = 0
        if book.timer is not None:
            book.timer.cancel()
            book.timer = None

    def _arm(self, book: Book, delay: float) -> None:
        if book.timer is not None:
            book.timer.cancel()
        book.timer = self.call_later(delay, lambda: self._expired(book))

    def _expired(self, book: Book) -> None:
        book.timer = None
        if book.acting or not book.naked() or not self.owns(book.account_id):
            return
        book.acting = True
        self._spawn(self._act_safely(book))

    async def _act_safely(self, book: Book) -> None:
        try:
            await self._act(book)
        except Exception:  # noqa: BLE001 - a bug here must not leave the symbol unwatched
            log.exception("protective stop on %s %s: the action failed", book.account_id, book.symbol)
            book.acting = False
            self._arm(book, book.deadline_s)

    async def _act(self, book: Book) -> None:
        """Read the broker's state; act only if it confirms the naked position."""
        try:
            truth = await self.verify(book.account_id, book.symbol)
        except Exception as exc:  # noqa: BLE001 - whatever failed, the state is not known: never act
            book.acting = False
            self._arm(book, book.deadline_s)  # and on_session_connected looks again at once
            if not book.reported_down:
                book.reported_down = True
                await self._say(book, "STOP_MISSING_UNVERIFIED", None, f"cannot read the broker ({exc}); waiting")
            return
        self._apply(book, truth)
        if not book.naked():
            book.acting = False
            self._evaluate(book)
            return
        missing = [s for s in book.protective() if s.state != "working"]
        if all(s.replacements < MAX_REPLACEMENTS for s in missing):
            for stop in missing:
                self._replace(book, stop)
        elif book.flattens < MAX_FLATTENS:
            book.flattens += 1
            first = missing[0].intent
            self._send(orders.flatten(first, book.flattens, self.clock()), Mine("flatten", book))
        else:  # said three times already (STOP_MISSING_FLATTEN_FAILED); a person must look
            book.acting, book.gave_up = False, True

    def _apply(self, book: Book, truth: Truth) -> None:
        book.position = truth.position
        live = {s.live_id: s for s in book.stops.values()}
        for client_id, sign in truth.working_stops:
            stop = live.get(client_id or "")
            if stop is not None:
                stop.state = "working"
            elif sign * truth.position < 0:
                book.covered_elsewhere = True  # protected, by an order we did not send
        for stop in live.values():
            if stop.state == "pending" and stop.live_id not in {c for c, _ in truth.working_stops}:
                stop.state, stop.maybe_live = "missing", True  # never acknowledged, not at the broker yet

    def _replace(self, book: Book, stop: StopCopy) -> None:
        stop.replacements += 1
        quantity = min(stop.intent.quantity, abs(book.position or stop.intent.quantity))
        if stop.maybe_live:
            # Its outcome was never known: it may still turn up. Cancelled first, in the same
            # lane, so the replacement can never be a second stop.
            self._send(orders.cancel(stop.intent, stop.live_id, stop.replacements, self.clock()), Mine("cancel", book))
        replacement = orders.replacement(stop.intent, stop.replacements, quantity, self.clock())
        if stop.live_id != stop.intent.client_order_id:
            self._by_id.pop(stop.live_id, None)  # an earlier replacement, gone
        stop.live_id, stop.state, stop.maybe_live = replacement.client_order_id, "pending", False
        self._by_id[stop.live_id] = (book, stop)
        self._send(replacement, Mine("replace", book, stop))

    # -- helpers ----------------------------------------------------------------------------
    def _is_original(self, client_order_id: str | None) -> bool:
        found = self._by_id.get(client_order_id or "")
        return found is not None and found[1].intent.client_order_id == client_order_id

    def _remember_early(self, client_order_id: str, what: str) -> None:
        self._early[client_order_id] = what
        if len(self._early) > EARLY_EVENTS_KEPT:
            self._early.popitem(last=False)

    def _send(self, intent: OrderIntent, mine: Mine) -> None:
        self._mine[intent.client_order_id] = mine
        self.submit(intent)

    def _book(self, account_id: str, symbol: str) -> Book:
        symbols = self.books.setdefault(account_id, {})
        book = symbols.get(symbol)
        if book is None:
            book = symbols[symbol] = Book(account_id, symbol)
        return book

    def _forget(self, book: Book, stop: StopCopy) -> None:
        book.stops.pop(stop.intent.client_order_id, None)
        self._by_id.pop(stop.intent.client_order_id, None)
        self._by_id.pop(stop.live_id, None)

    def _drop_stops(self, book: Book) -> None:
        for stop in list(book.stops.values()):
            self._forget(book, stop)

    def _say(self, book: Book, code: str, intent: OrderIntent | None, action: str) -> Awaitable[None]:
        """The record is made now (the naked time as of now); it is published by the caller."""
        since = book.naked_since
        naked_s = self.clock() - since if since is not None else 0.0
        episode = f"{since:.3f}" if since is not None else "0"
        log.warning("protective stop on %s %s: %s (%.2f s naked)", book.account_id, book.symbol, code, naked_s)
        return self.report(
            orders.error(book.account_id, book.symbol, book.position, naked_s, code, action, intent, episode)
        )

    def _spawn(self, work: Awaitable[None]) -> None:
        task = asyncio.ensure_future(work)
        self._acting.add(task)
        task.add_done_callback(self._acting.discard)

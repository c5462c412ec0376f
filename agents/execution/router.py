"""The executor: OrderIntents in, broker requests out, outcomes on ``trade.executions``.

Each account gets a lane (a queue and a task): one account's orders run strictly in order,
while every account proceeds in parallel, so a slow broker never delays another account.
The Kafka offset of an intent is acknowledged only after its lane finished with it and Kafka
acknowledged its outcome records, so a crash redelivers unfinished intents.

Exactly once without trusting the broker (no platform refuses a repeated client order id):
each intent's client id is written to the attempt journal before the broker call. A fresh
intent is placed at once (the fast path, no lookup). An intent that may have been sent before
(the journal has it, or the consumer says a previous owner may have handled it) is first looked
up at the broker by its client id; so is every request whose answer was lost (timeout, reset,
5xx). What no lookup can settle within the copy's one deadline is reported as unknown on
``order.errors``, never placed blindly (``brokers.retry.exactly_once``).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, TypeAlias

from ...brokers.base import BrokerAdapter
from ...brokers.breaker import CircuitBreaker
from ...brokers.deadline import copy_deadline
from ...brokers.errors import BrokerError, OutcomeUnknown, UnknownOrder
from ...brokers.model import (
    CancelOrder,
    FillCorrection,
    FillEvent,
    FlattenPosition,
    ModifyOrder,
    OrderAck,
    OrderEvent,
    OrderStatus,
    OrderType,
    PlaceOrder,
    Side,
)
from ...brokers.ratebudget import Priority, urgent
from ...brokers.retry import exactly_once
from ...core.record_codec import maker_for
from ...core.records import Execution, OrderError, OrderIntent, RecordError, stamp
from ..shared import kill_switch
from ..shared.deferred_outbox import DeferredOutbox
from ..shared.outbox import Outbox
from ..shared.refused_events import refused_broker_event
from ..shared.sessions import SessionPool
from .attempt_journal import UNKNOWN, Attempt, AttemptJournal
from .late_lookup import LateLookups
from .netting import journal_signal

if TYPE_CHECKING:
    from .guards import ExecutorGuards
    from .netting import StaleCopies

log = logging.getLogger(__name__)

Done = Callable[[], Awaitable[object]]
#: One queued intent of a lane: the intent, its offset acknowledgement, redelivered or not.
Queued: TypeAlias = "tuple[OrderIntent, Done | None, bool]"
Lookup = Callable[[], Awaitable["OrderAck | None"]]
Pending: TypeAlias = "asyncio.Future[None] | None"  # what an intent's offset still waits for

#: ``Execution(**fields)`` without Faust's per-field descriptors: the same record, its checks
#: run, at a fifth of the CPU; two per copy (#16).
new_execution = maker_for(Execution)


Command = PlaceOrder | ModifyOrder | CancelOrder | FlattenPosition


def to_command(intent: OrderIntent) -> Command:
    if intent.action == "place":
        return PlaceOrder(
            account_id=intent.account_id,
            client_order_id=intent.client_order_id,
            symbol=intent.symbol,
            side=Side(intent.side),
            quantity=intent.quantity,
            order_type=OrderType(intent.order_type),
            limit_price=intent.limit_price,
            stop_price=intent.stop_price,
        )
    assert intent.target_client_order_id or intent.action == "flatten"
    if intent.action == "modify":
        return ModifyOrder(
            intent.account_id,
            intent.target_client_order_id or "",
            quantity=intent.quantity,
            limit_price=intent.limit_price,
            stop_price=intent.stop_price,
        )
    if intent.action == "cancel":
        return CancelOrder(intent.account_id, intent.target_client_order_id or "")
    return FlattenPosition(intent.account_id, intent.client_order_id, intent.symbol or None)


class RecentKeys:
    """Bounded memory of finished idempotency keys (the worker-local dedupe layer)."""

    def __init__(self, capacity: int = 100_000) -> None:
        self._keys: OrderedDict[str, None] = OrderedDict()
        self._capacity = capacity

    def __contains__(self, key: str) -> bool:
        return key in self._keys

    def add(self, key: str) -> None:
        self._keys[key] = None
        if len(self._keys) > self._capacity:
            self._keys.popitem(last=False)


@dataclass(slots=True)
class InFlight:
    signal_id: str
    stamps: dict[str, float]
    reference_price: Decimal | None = None  # the copy's reference at fan-out, for its fills


@dataclass(slots=True)
class AccountStats:
    orders_placed: int = 0
    rejects: int = 0
    last_copy_ms: float | None = None
    last_error: str | None = None


class OrderRouter:
    """Runs one intent against its broker and reports exactly one outcome for it.

    Outcome records are queued on a :class:`DeferredOutbox`, not sent from the lane: the
    lanes of a burst place all their orders before any of them spends time on Kafka sends.
    ``journal`` None (unit tests of other parts) keeps only the in-memory layer.
    """

    #: Placed orders whose stamps wait for their last fill; the oldest go beyond this (#18).
    inflight_limit = 100_000

    def __init__(
        self, pool: SessionPool, outbox: Outbox, journal: AttemptJournal | None = None, deadline_s: float = 5.0
    ) -> None:
        self.pool = pool
        self.outbox = DeferredOutbox(outbox)
        self.journal = journal
        self.deadline_s = deadline_s
        self.finished = RecentKeys()
        self.inflight: dict[str, InFlight] = {}
        self.stats: dict[str, AccountStats] = {}
        self.on_outcome: Callable[[OrderIntent, Execution | OrderError], None] | None = None
        self.late = LateLookups(self)
        self.guards: ExecutorGuards | None = None  # risk guards (agents/execution/guards.py)
        self.on_event: Callable[[object], None] | None = None  # the protective-stop watcher (protective.py)

    async def execute(self, intent: OrderIntent, redelivered: bool = False) -> Pending:
        """One intent, one outcome. ``redelivered``: a previous owner may have sent it already.

        Returns what the intent's offset must still wait for (an unknown outcome's late
        lookup), or None when it is finished.
        """
        key = intent.client_order_id
        if key in self.finished:
            log.info("intent %s already executed here; redelivery ignored", key)
            return None
        pending: Pending = None
        # An exit or flatten is served before entries when the login's request budget is short.
        raised = urgent(Priority.EXIT) if intent.reduces_position else contextlib.nullcontext()
        with copy_deadline(self.deadline_s), raised:
            prior = (
                await self.journal.begin(key, intent.account_id, intent.action, signal_id=journal_signal(intent))
                if self.journal is not None
                else None
            )
            if prior is not None and prior.done:
                await self._report_again(intent, prior)
            else:
                pending = await self._execute(intent, uncertain=redelivered or prior is not None)
        self.finished.add(key)
        if intent.action != "place":
            self.inflight.pop(key, None)
        return pending

    async def _execute(self, intent: OrderIntent, *, uncertain: bool) -> Pending:
        key = intent.client_order_id
        stamps = stamp(intent.stamps, "sent")
        self.inflight[key] = InFlight(intent.signal_id, stamps, intent.reference_price)
        if len(self.inflight) > self.inflight_limit:  # orders never seen to end (a lost final event)
            del self.inflight[next(iter(self.inflight))]
        stats = self.stats.get(intent.account_id) or self.stats.setdefault(intent.account_id, AccountStats())
        try:
            adapter = await self.pool.adapter_for(intent.account_id)
            command = to_command(intent)
        except BrokerError as exc:  # the session could not be opened: nothing was sent
            await self._fail(intent, stamps, exc, kind="reject", code=exc.code or type(exc).__name__)
            return None
        except (KeyError, ValueError) as exc:  # an account or command nobody defined
            await self._fail(intent, stamps, exc, kind="reject", code="INVALID")
            return None
        refusal = self.guards.check(intent) if self.guards is not None else None
        if refusal is not None:  # a risk guard: reported like any refusal, never sent
            placed = await self._placed_before(adapter, command) if uncertain else False
            if placed is not True:  # an earlier attempt's order, if found, is reported below
                error = BrokerError(refusal.message, code=refusal.code)
                state = UNKNOWN if placed is None else "done"
                await self._fail(intent, stamps, error, kind="reject", code=refusal.code, state=state)
                return None
        try:
            ack = await self._request(adapter, command, uncertain)
            acked = time.time()
        except OutcomeUnknown as exc:
            await self._fail(intent, stamps, exc, kind="reject", code="OUTCOME_UNKNOWN", state=UNKNOWN)
            return self.late.watch(intent)
        except UnknownOrder as exc:
            await self._fail(intent, stamps, exc, kind="reject", code=exc.code or "UNKNOWN_ORDER")
        except BrokerError as exc:
            raw = getattr(exc, "raw", None)
            if raw is not None:  # an answer the adapter could not read
                await self._fail(intent, stamps, exc, kind="reject", code="BAD_ANSWER", state=UNKNOWN, payload=str(raw))
            else:
                await self._fail(intent, stamps, exc, kind="reject", code=exc.code or type(exc).__name__)
        except Exception as exc:  # noqa: BLE001 - an answer we cannot read: say so, keep the lane
            # The broker may well have carried the request out, so the journal keeps it
            # unknown: a redelivery looks it up instead of placing again.
            await self._fail(
                intent,
                stamps,
                exc,
                kind="reject",
                code="BAD_ANSWER",
                state=UNKNOWN,
                payload=getattr(exc, "raw", None) or repr(exc),
            )
        else:
            if ack.status is OrderStatus.REJECTED:  # a lookup found the order, rejected
                await self._fail(intent, stamps, OrderRejectedFound(ack), kind="reject", code="REJECTED")
                return None
            stamps = {**stamps, "acked": acked}
            flight = self.inflight.get(key)
            if flight is not None:  # a fill may have completed it during the broker call
                flight.stamps = stamps
            # Found by a lookup after this very attempt's answer was lost: placed now, not a
            # redelivery. ``duplicate`` means an earlier delivery had placed it.
            duplicate = ack.duplicate and uncertain
            if not duplicate:
                stats.orders_placed += 1
            stats.last_copy_ms = (stamps["acked"] - stamps.get("detected", stamps["sent"])) * 1000
            if self.journal is not None:
                self.journal.finish(
                    key, _ACK_KIND[intent.action], ack.broker_order_id, signal_id=journal_signal(intent)
                )
            await self.report_ack(intent, ack.broker_order_id, duplicate, stamps)
        return None

    async def report_ack(
        self, intent: OrderIntent, broker_order_id: str, duplicate: bool, stamps: dict[str, float]
    ) -> None:
        key = intent.client_order_id
        execution = new_execution(
            execution_id=f"{key}|ack",
            account_id=intent.account_id,
            platform=intent.platform,
            kind=_ACK_KIND[intent.action],
            client_order_id=key,
            broker_order_id=broker_order_id,
            signal_id=intent.signal_id,
            symbol=intent.symbol,
            side=intent.side,
            quantity=intent.quantity,
            duplicate=duplicate,
            request_outcome=True,
            stamps=stamps,
            reference_price=intent.reference_price,
            band_ticks=intent.band_ticks,
            band_touch=intent.band_touch,
        )
        await self.outbox.execution(execution)
        self._notify(intent, execution)

    async def _report_again(self, intent: OrderIntent, prior: Attempt) -> None:
        """The journal holds this intent's answer (a crash came before its offset commit):
        publish the same outcome again, under the same record ids, with no broker call."""
        log.info("intent %s answered before (%s); outcome reported again", intent.client_order_id, prior.kind)
        stamps = stamp(intent.stamps, "sent")
        if prior.kind == "reject":
            await self._fail(
                intent, stamps, BrokerError(prior.reason or "rejected"), kind="reject", code="REJECTED", record=False
            )
            return
        await self.report_ack(intent, prior.broker_order_id or "", True, {**stamps, "acked": stamps["sent"]})

    async def _placed_before(self, adapter: BrokerAdapter, command: Command) -> bool | None:
        """Whether an earlier attempt of a redelivered intent reached the broker (None: cannot tell)."""
        lookup = _lookup_for(adapter, self.pool.breaker(adapter.config.session_id), command)
        try:
            return lookup is not None and await lookup() is not None
        except BrokerError:
            return None

    async def _request(self, adapter: BrokerAdapter, command: Command, uncertain: bool) -> OrderAck:
        method = getattr(adapter, _METHOD_OF[type(command)])
        breaker = self.pool.breaker(adapter.config.session_id)
        # A partial, not a coroutine function around ``breaker.call``: one frame less per copy.
        send = functools.partial(breaker.call, method, command)
        return await exactly_once(
            send, _lookup_for(adapter, breaker, command), uncertain=uncertain, deadline_s=self.deadline_s
        )

    async def _fail(
        self,
        intent: OrderIntent,
        stamps: dict[str, float],
        exc: Exception,
        *,
        kind: str,
        code: str,
        state: str = "done",
        payload: str | None = None,
        record: bool = True,
    ) -> None:
        stats = self.stats.setdefault(intent.account_id, AccountStats())
        stats.rejects += 1
        reason = getattr(exc, "message", None) or str(exc) or type(exc).__name__
        stats.last_error = reason
        self.inflight.pop(intent.client_order_id, None)
        if record and self.journal is not None:
            self.journal.finish(
                intent.client_order_id, "reject", None, reason, signal_id=journal_signal(intent), state=state
            )
        self._report_refused(intent, stamps, reason, kind=kind, code=code, payload=payload)

    def _report_refused(
        self,
        intent: OrderIntent,
        stamps: dict[str, float],
        reason: str,
        *,
        kind: str,
        code: str,
        payload: str | None = None,
    ) -> None:
        """A copy that did not become an order: its ``order.errors`` record and its reject on
        ``trade.executions``, queued (each leaves in its partition's batch)."""
        error = OrderError(
            error_id=f"{intent.client_order_id}|execute",
            stage="execute",
            reason=reason,
            account_id=intent.account_id,
            signal_id=intent.signal_id,
            client_order_id=intent.client_order_id,
            code=code,
            payload=payload[:4000] if payload else None,
            stamps=stamps,
        )
        self.outbox.queue_error(error)
        execution = new_execution(
            execution_id=f"{intent.client_order_id}|reject",
            account_id=intent.account_id,
            platform=intent.platform,
            kind=kind,
            client_order_id=intent.client_order_id,
            signal_id=intent.signal_id,
            symbol=intent.symbol,
            side=intent.side,
            quantity=intent.quantity,
            reason=reason,
            request_outcome=True,
            stamps=stamps,
        )
        self.outbox.queue_execution(execution)
        self._notify(intent, error)

    async def report_skipped(self, intent: OrderIntent, reason: str) -> None:
        """A queued copy dropped by the kill switch before it was sent: said, never silent."""
        await self._fail(intent, intent.stamps, BrokerError(reason), kind="reject", code="KILL_SWITCH", record=False)

    def skip_stale_run(
        self,
        intents: Sequence[OrderIntent],
        code: str,
        reason: str,
        *,
        net_key: str | None = None,
        unknown: bool = False,
    ) -> None:
        """Copies netted instead of placed (``netting.py``), each journaled as answered with the
        netting order's key, so a redelivery knows what covers it and never places it.

        Their rows exist already (``netting.py`` begins a run's rows in one transaction): no
        await, query or log line per copy, so a netted run of N copies costs N journal updates
        (one transaction) and N outcomes in their partitions' batches."""
        if not intents:
            return
        said, state = f"{code}: {reason}", UNKNOWN if unknown else "done"
        journal = self.journal
        for intent in intents:
            key = intent.client_order_id
            self.finished.add(key)
            self.inflight.pop(key, None)
            self._report_refused(intent, intent.stamps, reason, kind="reject", code=code)
            if journal is not None:
                journal.finish(key, "reject", net_key, said, signal_id=journal_signal(intent), state=state)
        stats = self.stats.setdefault(intents[0].account_id, AccountStats())
        stats.rejects += len(intents)
        stats.last_error = reason

    @staticmethod
    def stale_skip(prior: Attempt) -> tuple[str, str, str | None] | None:
        """(code, reason, netting order key) of a copy journaled by ``skip_stale_run``, else None."""
        code, _, reason = (prior.reason or "").partition(": ")
        if prior.kind != "reject" or not code.startswith("COPY_STALE_"):
            return None
        return code, reason, prior.broker_order_id

    async def report_crash(self, intent: OrderIntent, exc: Exception) -> None:
        """A bug, not a broker answer: still say so on ``order.errors`` so the copy is not silent."""
        await self._fail(intent, intent.stamps, exc, kind="reject", code="INTERNAL", state=UNKNOWN, payload=repr(exc))

    def _notify(self, intent: OrderIntent, outcome: Execution | OrderError) -> None:
        if self.guards is not None:
            self.guards.on_outcome(intent, outcome)
        if self.on_outcome is not None:
            self.on_outcome(intent, outcome)

    # -- broker events after the ack ------------------------------------------------------
    async def on_broker_event(self, platform: str, event: object) -> None:
        """:meth:`take_broker_event`, awaitable (tests, callers that hold a coroutine)."""
        self.take_broker_event(platform, event)

    def take_broker_event(self, platform: str, event: object) -> None:
        """Fills and late order changes of follower orders → ``trade.executions``; an event
        whose values no Execution may carry (a broker's absurd quantity or id) is said on
        ``order.errors`` as BAD_BROKER_EVENT, and the next event is handled.

        Not a coroutine: the records are only queued (``DeferredOutbox``), and the fill pump
        hands over four events per copied order on the paper venue, each of which cost two
        coroutines and their awaits (#16)."""
        try:
            self._on_broker_event(platform, event)
        except RecordError as exc:
            self.outbox.queue_error(refused_broker_event("execute", platform, event, exc))

    def _on_broker_event(self, platform: str, event: object) -> None:
        if self.guards is not None:
            self.guards.on_event(event)
        if self.on_event is not None:
            self.on_event(event)
        if isinstance(event, FillEvent):
            key = event.client_order_id or ""
            flight = self.inflight.get(key)
            stamps = stamp(flight.stamps, "filled") if flight else {}
            if flight and event.leaves_quantity == 0:
                self.inflight.pop(key, None)
            self.outbox.queue_execution(
                new_execution(
                    execution_id=f"{event.account_id}|{event.broker_order_id}|fill|{event.fill_id}",
                    account_id=event.account_id,
                    platform=platform,
                    kind="partial_fill" if event.is_partial else "fill",
                    client_order_id=event.client_order_id,
                    broker_order_id=event.broker_order_id,
                    signal_id=flight.signal_id if flight else None,
                    symbol=event.symbol,
                    side=event.side.value,
                    quantity=event.quantity,
                    price=event.price,
                    cumulative_quantity=event.cumulative_quantity,
                    leaves_quantity=event.leaves_quantity,
                    occurred_at=event.timestamp,
                    stamps=stamps,
                    reference_price=flight.reference_price if flight else None,
                )
            )
        elif isinstance(event, FillCorrection):
            self.outbox.queue_execution(
                new_execution(
                    execution_id=f"{event.account_id}|{event.broker_order_id}|correction|{event.correction_id}",
                    account_id=event.account_id,
                    platform=platform,
                    kind="fill_bust" if event.busted else "fill_correction",
                    client_order_id=event.client_order_id,
                    broker_order_id=event.broker_order_id,
                    symbol=event.symbol,
                    side=event.side.value,
                    quantity=event.quantity,
                    price=event.price,
                    corrects=f"{event.account_id}|{event.broker_order_id}|fill|{event.fill_id}",
                    original_quantity=event.original_quantity,
                    original_price=event.original_price,
                    reason=f"fill {event.fill_id} {event.original_quantity}@{event.original_price} -> "
                    + ("busted" if event.busted else f"{event.quantity}@{event.price}"),
                    occurred_at=event.timestamp,
                )
            )
        elif isinstance(event, OrderEvent) and event.status in (
            OrderStatus.CANCELLED,
            OrderStatus.EXPIRED,
            OrderStatus.REJECTED,
        ):
            flight = self.inflight.pop(event.client_order_id or "", None)
            self.outbox.queue_execution(
                new_execution(
                    execution_id=f"{event.account_id}|{event.broker_order_id}|{event.status.value}",
                    account_id=event.account_id,
                    platform=platform,
                    kind="reject" if event.status is OrderStatus.REJECTED else "cancelled",
                    client_order_id=event.client_order_id,
                    broker_order_id=event.broker_order_id,
                    signal_id=flight.signal_id if flight else None,
                    symbol=event.symbol,
                    side=event.side.value,
                    quantity=event.quantity,
                    reason=event.reason,
                    occurred_at=event.timestamp,
                )
            )


_ACK_KIND = {"place": "ack", "modify": "modified", "cancel": "cancelled", "flatten": "flattened"}
#: The adapter method that carries out each command.
_METHOD_OF: dict[type, str] = {
    PlaceOrder: "place",
    ModifyOrder: "modify",
    CancelOrder: "cancel",
    FlattenPosition: "flatten",
}


class OrderRejectedFound(BrokerError):
    """A lookup found the order, and the broker had rejected it."""

    def __init__(self, ack: OrderAck) -> None:
        super().__init__(f"order {ack.broker_order_id} found at the broker, rejected", code="REJECTED")


def _lookup_for(adapter: BrokerAdapter, breaker: CircuitBreaker, command: Command) -> Lookup | None:
    """How to ask the broker whether ``command`` already took effect.

    A place or flatten: the order(s) it created carry its client id. A cancel: its target is
    cancelled already. A modify sets absolute quantity and prices, so repeating it is harmless
    and needs no lookup.
    """
    if isinstance(command, ModifyOrder):
        return None
    account_id, client_id = command.account_id, command.client_order_id

    async def lookup() -> OrderAck | None:
        return await breaker.call(adapter.lookup, account_id, client_id)

    if not isinstance(command, CancelOrder):
        return lookup

    async def cancelled() -> OrderAck | None:
        found = await lookup()
        return found if found is not None and found.status is OrderStatus.CANCELLED else None

    return cancelled


class AccountLanes:
    """One FIFO per account; ``submit`` returns at once, ``done`` runs when the intent finished."""

    def __init__(
        self,
        run: Callable[[OrderIntent, bool], Awaitable[Pending]],
        on_crash: Callable[[OrderIntent, Exception], Awaitable[None]] | None = None,
        on_skip: Callable[[OrderIntent, str], Awaitable[None]] | None = None,
        stale: StaleCopies | None = None,
    ) -> None:
        self._run = run
        self._on_crash = on_crash
        self._on_skip = on_skip
        self._stale = stale  # nets copies that reach the head too late (netting.py); None: never
        self._skipping: set[asyncio.Future[None]] = set()
        self._queues: dict[str, asyncio.Queue[Queued]] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}

    def open(self, account_id: str) -> asyncio.Queue[Queued]:
        """The account's lane, started now if it has none (the warm-up opens each follower's)."""
        queue = self._queues.get(account_id)
        if queue is None:
            queue = self._queues[account_id] = asyncio.Queue()
            self._tasks[account_id] = asyncio.ensure_future(self._drain(account_id, queue))
        return queue

    def submit(self, intent: OrderIntent, done: Done | None = None, redelivered: bool = False) -> None:
        queue = self.open(intent.account_id)
        if kill_switch.is_kill(intent.signal_id):
            self._jump_the_queue(queue, (intent, done, redelivered))
            return
        queue.put_nowait((intent, done, redelivered))

    def _jump_the_queue(self, queue: asyncio.Queue[Queued], kill: Queued) -> None:
        """The kill switch's flatten goes first; queued entries (never sent) are dropped and
        reported; queued cancels and flattens stay, after it (they only reduce exposure)."""
        waiting: list[Queued] = []
        while not queue.empty():
            waiting.append(queue.get_nowait())
            queue.task_done()
        queue.put_nowait(kill)
        for item in waiting:
            if item[0].action in ("place", "modify"):
                self._skipping.add(asyncio.ensure_future(self._skip(item)))
            else:
                queue.put_nowait(item)

    async def _skip(self, item: Queued) -> None:
        intent, done, _ = item
        try:
            if self._on_skip is not None:
                await self._on_skip(intent, "kill switch engaged before this copy was sent")
        finally:
            if done is not None:
                await done()

    async def _drain(self, account_id: str, queue: asyncio.Queue[Queued]) -> None:
        while True:
            intent, done, redelivered = await queue.get()
            run: list[Queued] = [(intent, done, redelivered)]
            pending: Pending = None
            try:
                if self._stale is not None and self._stale.is_stale(intent):
                    run = self._stale.take_from_queue(queue, run[0])
                    pending = await self._stale.settle(run)
                else:
                    pending = await self._run(intent, redelivered)
            except Exception as exc:  # noqa: BLE001 - a lane must survive one bad intent
                log.exception("lane %s: intent %s failed unexpectedly", account_id, intent.client_order_id)
                if self._on_crash is not None:
                    for each in run:
                        await self._on_crash(each[0], exc)
            finally:
                queue.task_done()
                for _, each_done, _ in run:
                    if each_done is not None and pending is not None:
                        # The lane goes on; the offset waits until the late lookup is over.
                        # A lookup cancelled by shutdown acknowledges nothing: the intent comes back.
                        pending.add_done_callback(functools.partial(_ack_unless_cancelled, each_done))
                    elif each_done is not None:
                        await each_done()

    def depth(self) -> int:
        return sum(q.qsize() for q in self._queues.values())

    async def join(self) -> None:
        await asyncio.gather(*(q.join() for q in self._queues.values()))

    async def close(self) -> None:
        for task in self._tasks.values():
            task.cancel()
        await asyncio.gather(*self._tasks.values(), return_exceptions=True)
        self._tasks.clear()
        self._queues.clear()


def _ack_unless_cancelled(done: Done, finished: asyncio.Future[None]) -> None:
    """A late lookup's done-callback: acknowledge its intent, unless shutdown cancelled it."""
    if not finished.cancelled():
        asyncio.ensure_future(done())

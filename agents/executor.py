"""The executor: OrderIntents in, broker requests out, outcomes on ``trade.executions``.

Each account gets a lane (a queue and a task): one account's orders run strictly in order,
while every account proceeds in parallel, so a slow broker never delays another account.
The Kafka offset of an intent is acknowledged only after its lane finished with it and its
outcome record was published, so a crash redelivers unfinished intents; the derived client
order id then makes the redelivery harmless (this worker's memory of finished ids first, the
broker's own client-id dedupe last).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from ..app.records import Execution, OrderError, OrderIntent, stamp
from ..brokers.base import BrokerAdapter
from ..brokers.errors import BrokerError, UnknownOrder
from ..brokers.model import (
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
from ..brokers.retry import retrying_call
from .deferred_outbox import DeferredOutbox
from .outbox import Outbox
from .sessions import SessionPool

log = logging.getLogger(__name__)

Done = Callable[[], Awaitable[object]]


def to_command(intent: OrderIntent) -> PlaceOrder | ModifyOrder | CancelOrder | FlattenPosition:
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
            intent.account_id, intent.target_client_order_id or "", quantity=intent.quantity,
            limit_price=intent.limit_price, stop_price=intent.stop_price,
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
    """

    def __init__(self, pool: SessionPool, outbox: Outbox) -> None:
        self.pool = pool
        self.outbox = DeferredOutbox(outbox)
        self.finished = RecentKeys()
        self.inflight: dict[str, InFlight] = {}
        self.stats: dict[str, AccountStats] = {}
        self.on_outcome: Callable[[OrderIntent, Execution | OrderError], None] | None = None

    async def execute(self, intent: OrderIntent) -> None:
        key = intent.client_order_id
        if key in self.finished:
            log.info("intent %s already executed here; redelivery ignored", key)
            return
        stamps = stamp(intent.stamps, "sent")
        self.inflight[key] = InFlight(intent.signal_id, stamps)
        stats = self.stats.setdefault(intent.account_id, AccountStats())
        try:
            adapter = await self.pool.adapter_for(intent.account_id)
            ack = await self._request(adapter, intent)
            acked = time.time()
        except UnknownOrder as exc:
            await self._fail(intent, stamps, exc, kind="reject", code=exc.code or "UNKNOWN_ORDER")
        except BrokerError as exc:
            await self._fail(intent, stamps, exc, kind="reject", code=exc.code or type(exc).__name__)
        except (KeyError, ValueError) as exc:
            await self._fail(intent, stamps, exc, kind="reject", code="INVALID")
        else:
            stamps = {**stamps, "acked": acked}
            flight = self.inflight.get(key)
            if flight is not None:  # a fill may have completed it during the broker call
                flight.stamps = stamps
            if not ack.duplicate:
                stats.orders_placed += 1
            stats.last_copy_ms = (stamps["acked"] - stamps.get("detected", stamps["sent"])) * 1000
            execution = Execution(
                execution_id=f"{key}|ack",
                account_id=intent.account_id,
                platform=intent.platform,
                kind=_ACK_KIND[intent.action],
                client_order_id=key,
                broker_order_id=ack.broker_order_id,
                signal_id=intent.signal_id,
                symbol=intent.symbol,
                side=intent.side,
                quantity=intent.quantity,
                duplicate=ack.duplicate,
                request_outcome=True,
                stamps=stamps,
            )
            await self.outbox.execution(execution)
            self._notify(intent, execution)
        self.finished.add(key)
        if intent.action != "place":
            self.inflight.pop(key, None)

    async def _request(self, adapter: BrokerAdapter, intent: OrderIntent) -> OrderAck:
        command = to_command(intent)
        method = {
            PlaceOrder: adapter.place, ModifyOrder: adapter.modify,
            CancelOrder: adapter.cancel, FlattenPosition: adapter.flatten,
        }[type(command)]
        breaker = self.pool.breaker(adapter.config.session_id)

        async def attempt() -> OrderAck:
            return await breaker.call(method, command)  # type: ignore[arg-type]  # command matches method by the dict above

        # A place may be retried only where the broker dedupes on our client id; modify,
        # cancel and flatten are idempotent by nature.
        if isinstance(command, PlaceOrder) and not adapter.capabilities.client_id_dedupe:
            return await attempt()
        return await retrying_call(attempt, attempts=3, deadline_s=2.0)

    async def _fail(self, intent: OrderIntent, stamps: dict[str, float], exc: Exception, *, kind: str, code: str) -> None:
        stats = self.stats.setdefault(intent.account_id, AccountStats())
        stats.rejects += 1
        reason = getattr(exc, "message", None) or str(exc)
        stats.last_error = reason
        self.inflight.pop(intent.client_order_id, None)
        error = OrderError(
            error_id=f"{intent.client_order_id}|execute",
            stage="execute",
            reason=reason,
            account_id=intent.account_id,
            signal_id=intent.signal_id,
            client_order_id=intent.client_order_id,
            code=code,
            stamps=stamps,
        )
        await self.outbox.error(error)
        execution = Execution(
            execution_id=f"{intent.client_order_id}|reject",
            account_id=intent.account_id, platform=intent.platform, kind=kind,
            client_order_id=intent.client_order_id, signal_id=intent.signal_id,
            symbol=intent.symbol, side=intent.side, quantity=intent.quantity,
            reason=reason, request_outcome=True, stamps=stamps,
        )
        await self.outbox.execution(execution)
        self._notify(intent, error)

    async def report_crash(self, intent: OrderIntent, exc: Exception) -> None:
        """A bug, not a broker answer: still say so on ``order.errors`` so the copy is not silent."""
        await self._fail(intent, intent.stamps, exc, kind="reject", code="INTERNAL")

    def _notify(self, intent: OrderIntent, outcome: Execution | OrderError) -> None:
        if self.on_outcome is not None:
            self.on_outcome(intent, outcome)

    # -- broker events after the ack ------------------------------------------------------
    async def on_broker_event(self, platform: str, event: object) -> None:
        """Fills and late order changes of follower orders → ``trade.executions``."""
        if isinstance(event, FillEvent):
            key = event.client_order_id or ""
            flight = self.inflight.get(key)
            stamps = stamp(flight.stamps, "filled") if flight else {}
            if flight and event.leaves_quantity == 0:
                self.inflight.pop(key, None)
            await self.outbox.execution(
                Execution(
                    execution_id=f"{event.account_id}|{event.broker_order_id}|fill|{event.fill_id}",
                    account_id=event.account_id, platform=platform,
                    kind="partial_fill" if event.is_partial else "fill",
                    client_order_id=event.client_order_id, broker_order_id=event.broker_order_id,
                    signal_id=flight.signal_id if flight else None, symbol=event.symbol,
                    side=event.side.value, quantity=event.quantity, price=event.price,
                    cumulative_quantity=event.cumulative_quantity, leaves_quantity=event.leaves_quantity,
                    occurred_at=event.timestamp, stamps=stamps,
                )
            )
        elif isinstance(event, FillCorrection):
            await self.outbox.execution(
                Execution(
                    execution_id=f"{event.account_id}|{event.broker_order_id}|correction|{event.correction_id}",
                    account_id=event.account_id, platform=platform,
                    kind="fill_bust" if event.busted else "fill_correction",
                    client_order_id=event.client_order_id, broker_order_id=event.broker_order_id,
                    symbol=event.symbol, side=event.side.value, quantity=event.quantity, price=event.price,
                    corrects=f"{event.account_id}|{event.broker_order_id}|fill|{event.fill_id}",
                    original_quantity=event.original_quantity, original_price=event.original_price,
                    reason=f"fill {event.fill_id} {event.original_quantity}@{event.original_price} -> "
                    + ("busted" if event.busted else f"{event.quantity}@{event.price}"),
                    occurred_at=event.timestamp,
                )
            )
        elif isinstance(event, OrderEvent) and event.status in (OrderStatus.CANCELLED, OrderStatus.EXPIRED, OrderStatus.REJECTED):
            flight = self.inflight.pop(event.client_order_id or "", None)
            await self.outbox.execution(
                Execution(
                    execution_id=f"{event.account_id}|{event.broker_order_id}|{event.status.value}",
                    account_id=event.account_id, platform=platform,
                    kind="reject" if event.status is OrderStatus.REJECTED else "cancelled",
                    client_order_id=event.client_order_id, broker_order_id=event.broker_order_id,
                    signal_id=flight.signal_id if flight else None, symbol=event.symbol,
                    side=event.side.value, quantity=event.quantity, reason=event.reason,
                    occurred_at=event.timestamp,
                )
            )


_ACK_KIND = {"place": "ack", "modify": "modified", "cancel": "cancelled", "flatten": "flattened"}


class AccountLanes:
    """One FIFO per account; ``submit`` returns at once, ``done`` runs when the intent finished."""

    def __init__(
        self,
        run: Callable[[OrderIntent], Awaitable[None]],
        on_crash: Callable[[OrderIntent, Exception], Awaitable[None]] | None = None,
    ) -> None:
        self._run = run
        self._on_crash = on_crash
        self._queues: dict[str, asyncio.Queue[tuple[OrderIntent, Done | None]]] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}

    def submit(self, intent: OrderIntent, done: Done | None = None) -> None:
        queue = self._queues.get(intent.account_id)
        if queue is None:
            queue = self._queues[intent.account_id] = asyncio.Queue()
            self._tasks[intent.account_id] = asyncio.ensure_future(self._drain(intent.account_id, queue))
        queue.put_nowait((intent, done))

    async def _drain(self, account_id: str, queue: asyncio.Queue[tuple[OrderIntent, Done | None]]) -> None:
        while True:
            intent, done = await queue.get()
            try:
                await self._run(intent)
            except Exception as exc:  # noqa: BLE001 - a lane must survive one bad intent
                log.exception("lane %s: intent %s failed unexpectedly", account_id, intent.client_order_id)
                if self._on_crash is not None:
                    await self._on_crash(intent, exc)
            finally:
                queue.task_done()
                if done is not None:
                    await done()

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

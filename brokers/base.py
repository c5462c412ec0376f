"""The one adapter contract every platform implements.

An adapter is one authenticated session with a platform. It may serve several of the user's
accounts (a Tradovate login sees all its accounts), so every command names its account.
Requests return when the broker acknowledged them (that moment is the copy's ``t_acked``);
everything that happens afterwards — fills, partial fills, cancels, position changes — arrives
as events on :meth:`BrokerAdapter.events`.
"""

from __future__ import annotations

import abc
import asyncio
from dataclasses import dataclass, field
from typing import Any, ClassVar

from .errors import UnsupportedOperation
from .model import (
    AccountSnapshot,
    BrokerEvent,
    CancelOrder,
    Capabilities,
    ConnectionEvent,
    ConnectionState,
    FlattenPosition,
    ModifyOrder,
    OrderAck,
    PlaceOrder,
    SessionHealth,
)


@dataclass(frozen=True, slots=True)
class SessionConfig:
    """How to reach one login on one platform.

    ``accounts`` maps our account id to the platform's account name; ``endpoint`` is a base
    URL or host:port override (the hook that points an adapter at a simulator);
    ``options`` carries platform settings (latency of the paper platform, app id, ...).
    Secrets arrive already resolved from the environment and are never logged.
    """

    platform: str
    session_id: str
    accounts: dict[str, str]
    endpoint: str | None = None
    username: str | None = None
    secret: str | None = field(default=None, repr=False)
    options: dict[str, Any] = field(default_factory=dict)


class Subscription:
    """One subscriber's queue; registered on creation so no event between subscribe and first read is lost.

    ``kinds`` (empty: every event) keeps only events of those classes: a subscriber that
    wants connection changes alone is not handed, and woken for, every order and fill (#16:
    four events per copied order)."""

    def __init__(self, fanout: EventFanout, kinds: tuple[type[BrokerEvent], ...] = ()) -> None:
        self._fanout = fanout
        self.queue: asyncio.Queue[BrokerEvent] = asyncio.Queue()
        self.kinds = kinds
        if kinds:
            fanout._filtered[self.queue] = kinds
        else:
            fanout._queues.add(self.queue)

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> BrokerEvent:
        return await self.queue.get()

    def close(self) -> None:
        self._fanout._queues.discard(self.queue)
        self._fanout._filtered.pop(self.queue, None)


class EventFanout:
    """Delivers each adapter event to every current subscriber's queue (no loss while subscribed)."""

    def __init__(self) -> None:
        self._queues: set[asyncio.Queue[BrokerEvent]] = set()
        self._filtered: dict[asyncio.Queue[BrokerEvent], tuple[type[BrokerEvent], ...]] = {}

    def publish(self, event: BrokerEvent) -> None:
        for queue in self._queues:
            queue.put_nowait(event)
        if self._filtered:
            for queue, kinds in self._filtered.items():
                if isinstance(event, kinds):
                    queue.put_nowait(event)

    def subscribe(self, *kinds: type[BrokerEvent]) -> Subscription:
        return Subscription(self, kinds)


class BrokerAdapter(abc.ABC):
    """Async client of one platform session. Plain asyncio: no Faust, no app imports."""

    platform: ClassVar[str]
    capabilities: ClassVar[Capabilities]

    def __init__(self, config: SessionConfig) -> None:
        self.config = config
        self._fanout = EventFanout()
        self._state = ConnectionState.DISCONNECTED
        self._last_error: str | None = None

    # -- lifecycle -------------------------------------------------------------------
    @abc.abstractmethod
    async def connect(self) -> None:
        """Open and authenticate the session; raises ``AuthenticationFailed`` on bad credentials."""

    @abc.abstractmethod
    async def disconnect(self) -> None:
        """Close the session cleanly; pending requests fail with ``BrokerUnavailable``."""

    # -- orders ----------------------------------------------------------------------
    @abc.abstractmethod
    async def place(self, command: PlaceOrder) -> OrderAck:
        """Place an order once. The broker may not refuse a repeated client order id: the
        caller looks it up (:meth:`lookup`) before any resend whose first try may have landed."""

    @abc.abstractmethod
    async def modify(self, command: ModifyOrder) -> OrderAck:
        """Modify the working order placed under ``command.client_order_id``."""

    @abc.abstractmethod
    async def cancel(self, command: CancelOrder) -> OrderAck:
        """Cancel the working order placed under ``command.client_order_id``."""

    @abc.abstractmethod
    async def flatten(self, command: FlattenPosition) -> OrderAck:
        """Cancel working orders and close the position (one symbol, or all)."""

    async def lookup(self, account_id: str, client_order_id: str) -> OrderAck | None:
        """Ask the broker (not a local cache) for the order placed under ``client_order_id``.

        The executor calls this whenever it cannot know whether an earlier attempt reached the
        broker (a redelivered intent, a timeout, a reset, a 5xx), before it places again: real
        platforms do not refuse a repeated client id, so a blind resend can double an order.
        Returns the order's ack (``duplicate=True``) when the broker holds one, ``None`` when
        the broker answered and holds none. Raises ``BrokerUnavailable`` when it cannot tell.
        A flatten's closing orders carry the flatten's client order id, so they are found too.
        The default says the platform cannot be asked, which the executor reports as unknown.
        """
        raise UnsupportedOperation(f"{self.platform}: no lookup by client order id")

    # -- state -----------------------------------------------------------------------
    @abc.abstractmethod
    async def snapshot(self, account_id: str) -> AccountSnapshot:
        """Balance, open orders and positions as the broker sees them now."""

    def events(self, *kinds: type[BrokerEvent]) -> Subscription:
        """Orders, fills, positions and connection changes of every account of this session
        (only events of ``kinds``, when given).

        Subscribe before acting: events are queued from this call on; ``close()`` ends it.
        """
        return self._fanout.subscribe(*kinds)

    def health(self) -> SessionHealth:
        return SessionHealth(platform=self.platform, state=self._state, last_error=self._last_error)

    @property
    def state(self) -> ConnectionState:
        return self._state

    # -- helpers for implementations ---------------------------------------------------
    def _emit(self, event: BrokerEvent) -> None:
        self._fanout.publish(event)

    def _set_state(self, state: ConnectionState, reason: str | None = None) -> None:
        if state is self._state:
            return
        self._state = state
        if reason:
            self._last_error = reason
        self._emit(ConnectionEvent(state=state, reason=reason))

    def broker_account(self, account_id: str) -> str:
        """The platform's name for our account; ``KeyError`` means a routing bug upstream."""
        return self.config.accounts[account_id]

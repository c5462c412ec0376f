"""Broker sessions of one worker: one adapter per configured session, connected once.

Each session has its own circuit breaker. A request on a session whose circuit is open fails
fast with ``CircuitOpen`` (reported on ``order.errors``) rather than waiting behind a dead
broker; the other sessions' accounts are untouched.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

from ...brokers.base import BrokerAdapter
from ...brokers.breaker import CircuitBreaker
from ...brokers.registry import create_adapter
from ...core.config import CopyConfig

log = logging.getLogger(__name__)
T = TypeVar("T")
AdapterFactory = Callable[[str], BrokerAdapter]


class SessionPool:
    def __init__(self, config: CopyConfig, factory: Callable[..., BrokerAdapter] = create_adapter) -> None:
        self.config = config
        self._factory = factory
        self._adapters: dict[str, BrokerAdapter] = {}
        self._breakers: dict[str, CircuitBreaker] = {}
        self._connecting: dict[str, asyncio.Task[BrokerAdapter]] = {}
        self.on_breaker_change: Callable[[str, str, str], None] | None = None
        # Reads every account record published so far (``copy.controls``): an intent for an
        # account this worker has not heard of yet may only be ahead of its account record.
        self.catch_up: Callable[[], Awaitable[object]] | None = None
        # Told about every (re)opened and closed session, so fill pumps follow connections.
        self.on_connected: Callable[[str, BrokerAdapter], None] | None = None
        self.on_closed: Callable[[str], None] | None = None

    def session_id(self, account_id: str) -> str:
        try:
            return self.config.accounts[account_id].session_id
        except KeyError:
            raise KeyError(f"unknown account {account_id!r}") from None

    def breaker(self, session_id: str) -> CircuitBreaker:
        breaker = self._breakers.get(session_id)
        if breaker is None:
            # A session serves many accounts whose lanes call it at once: five requests that
            # time out together are one stall (often this worker's own loop after a restart),
            # not five pieces of evidence, and a lost answer is settled by a lookup anyway. So
            # the circuit opens when half the calls of the last 10 s failed (20 calls at least)
            # or 20 failed in a row, and tries again after 2 s, within a copy's deadline.
            breaker = self._breakers[session_id] = CircuitBreaker(
                session_id,
                failure_threshold=20,
                reset_timeout=2.0,
                failure_ratio=0.5,
                ratio_window=10.0,
                min_calls=20,
                on_change=self._breaker_changed,
            )
        return breaker

    def _breaker_changed(self, name: str, old: str, new: str) -> None:
        log.warning("circuit %s: %s -> %s", name, old, new)
        if self.on_breaker_change:
            self.on_breaker_change(name, old, new)

    async def adapter_for(self, account_id: str) -> BrokerAdapter:
        """The connected adapter of the account's session (connects on first use, once)."""
        if account_id not in self.config.accounts and self.catch_up is not None:
            await self.catch_up()
        return await self.open(self.session_id(account_id))

    async def open(self, session_id: str) -> BrokerAdapter:
        """The session's connected adapter; concurrent callers share one connection attempt."""
        adapter = self._adapters.get(session_id)
        if adapter is not None:
            return adapter
        task = self._connecting.get(session_id)
        if task is None:
            # A fresh context: the connection is the session's, shared by every account on it,
            # so the copy deadline of whichever intent happened to open it must not bound it.
            task = self._connecting[session_id] = asyncio.get_running_loop().create_task(
                self._connect(session_id), context=contextvars.Context()
            )
        try:
            return await asyncio.shield(task)
        finally:
            if task.done():
                self._connecting.pop(session_id, None)

    async def _connect(self, session_id: str) -> BrokerAdapter:
        adapter = self._factory(self.config.sessions[session_id])
        await self.breaker(session_id).call(adapter.connect)
        self._adapters[session_id] = adapter
        if self.on_connected is not None:
            self.on_connected(session_id, adapter)
        return adapter

    async def call(self, account_id: str, fn: Callable[[BrokerAdapter], Awaitable[T]]) -> T:
        """Run one request through the session's breaker."""
        adapter = await self.adapter_for(account_id)
        return await self.breaker(self.session_id(account_id)).call(fn, adapter)

    async def reset(self, session_id: str) -> None:
        """Close a session whose settings changed; the next request opens it with the new ones."""
        task = self._connecting.pop(session_id, None)
        if task is not None:
            task.cancel()
        adapter = self._adapters.pop(session_id, None)
        if self.on_closed is not None:
            self.on_closed(session_id)
        if adapter is not None:
            try:
                await adapter.disconnect()
            except Exception:  # noqa: BLE001 - the old connection is being thrown away anyway
                log.exception("disconnect of %s failed", session_id)

    def connected(self) -> dict[str, BrokerAdapter]:
        return dict(self._adapters)

    async def connect_all(self, account_ids: list[str]) -> None:
        """Open every session the accounts need, in parallel; failures are logged, not fatal."""
        results = await asyncio.gather(*(self.adapter_for(a) for a in account_ids), return_exceptions=True)
        for account_id, result in zip(account_ids, results, strict=True):
            if isinstance(result, BaseException):
                log.error("session of %s failed to connect: %r", account_id, result)

    async def close(self) -> None:
        for adapter in self._adapters.values():
            try:
                await adapter.disconnect()
            except Exception:  # noqa: BLE001 - closing must reach every session
                log.exception("disconnect of %s failed", adapter.config.session_id)
        self._adapters.clear()

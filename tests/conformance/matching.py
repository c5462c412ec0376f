"""Matching the adapter's events against a scenario's expected patterns.

Patterns name only the fields that matter: ``{order|fill|correction|position|connection: {field: value}}``.
``ref`` names an order of the scenario (our client order id, or a broker id its ack reported);
a value may be a literal, ``{one_of: [...]}``, ``{contains: text}`` or ``{approx: p, within: d}``.
Everything not named — timestamps, fill ids — is volatile and ignored.
"""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from copytrader.brokers.base import Subscription
from copytrader.brokers.model import (
    BrokerEvent,
    ConnectionEvent,
    FillCorrection,
    FillEvent,
    OrderAck,
    OrderEvent,
    PositionEvent,
)

TIMEOUT = float(os.environ.get("CT_TIMEOUT", "5"))
QUIET = float(os.environ.get("CT_QUIET", "0.2"))


class ScenarioFailure(AssertionError):
    """A step did not behave as the scenario says; the message shows expected vs seen."""


def normalize(event: BrokerEvent) -> tuple[str, dict[str, Any]]:
    """Event → (kind, fields) with enums as their values: what patterns are compared with."""
    if isinstance(event, OrderEvent):
        return "order", {
            "client_order_id": event.client_order_id,
            "broker_order_id": event.broker_order_id,
            "symbol": event.symbol,
            "side": event.side.value,
            "type": event.order_type.value,
            "quantity": event.quantity,
            "status": event.status.value,
            "filled_quantity": event.filled_quantity,
            "limit_price": event.limit_price,
            "stop_price": event.stop_price,
            "reason": event.reason,
        }
    if isinstance(event, FillEvent):
        return "fill", {
            "client_order_id": event.client_order_id,
            "broker_order_id": event.broker_order_id,
            "symbol": event.symbol,
            "side": event.side.value,
            "quantity": event.quantity,
            "price": event.price,
            "cumulative_quantity": event.cumulative_quantity,
            "leaves_quantity": event.leaves_quantity,
            "partial": event.is_partial,
        }
    if isinstance(event, FillCorrection):
        return "correction", {
            "client_order_id": event.client_order_id,
            "broker_order_id": event.broker_order_id,
            "symbol": event.symbol,
            "side": event.side.value,
            "busted": event.busted,
            "quantity": event.quantity,
            "price": event.price,
            "original_quantity": event.original_quantity,
            "original_price": event.original_price,
        }
    if isinstance(event, PositionEvent):
        return "position", {
            "symbol": event.symbol,
            "net_quantity": event.net_quantity,
            "average_price": event.average_price,
            "realized_pnl": event.realized_pnl,
        }
    assert isinstance(event, ConnectionEvent)
    return "connection", {"state": event.state.value, "reason": event.reason}


def describe(event: BrokerEvent) -> str:
    kind, fields = normalize(event)
    shown = {k: (str(v) if isinstance(v, Decimal) else v) for k, v in fields.items() if v is not None}
    return f"{kind} {shown}"


def value_matches(expected: Any, actual: Any) -> bool:
    if isinstance(expected, Mapping):
        if "one_of" in expected:
            return any(value_matches(option, actual) for option in expected["one_of"])
        if "contains" in expected:
            return actual is not None and str(expected["contains"]).lower() in str(actual).lower()
        if "approx" in expected:  # platforms round average prices differently
            within = Decimal(str(expected.get("within", "0.01")))
            return actual is not None and abs(Decimal(str(actual)) - Decimal(str(expected["approx"]))) <= within
        raise ValueError(f"unknown matcher {expected!r}")
    if expected is None or actual is None:
        return expected is actual
    if isinstance(actual, Decimal) or isinstance(expected, float):
        try:
            return Decimal(str(expected)) == Decimal(str(actual))
        except ArithmeticError:
            return False
    if isinstance(actual, bool) or isinstance(expected, bool):
        return bool(expected) == bool(actual) and isinstance(actual, bool)
    return expected == actual or str(expected) == str(actual)


@dataclass
class Orders:
    """The scenario's order refs → our client order ids and the broker ids acks reported."""

    token: str = field(default_factory=lambda: secrets.token_hex(3))
    broker_ids: dict[str, set[str]] = field(default_factory=dict)

    def client_id(self, ref: str) -> str:
        return f"CT{self.token}{ref}"

    def remember(self, ref: str, ack: OrderAck) -> None:
        self.broker_ids.setdefault(ref, set()).add(ack.broker_order_id)

    def is_ref(self, ref: str, fields: Mapping[str, Any]) -> bool:
        if fields.get("client_order_id") == self.client_id(ref):
            return True
        return fields.get("broker_order_id") in self.broker_ids.get(ref, ())


def pattern_matches(pattern: Mapping[str, Any], event: BrokerEvent, orders: Orders) -> bool:
    ((kind, wanted),) = pattern.items()
    actual_kind, fields = normalize(event)
    if kind != actual_kind:
        return False
    for key, expected in (wanted or {}).items():
        if key == "ref":
            if not orders.is_ref(expected, fields):
                return False
        elif key not in fields:
            raise ValueError(f"{kind} events have no field {key!r}")
        elif not value_matches(expected, fields[key]):
            return False
    return True


class EventLog:
    """Every event the adapter published since the scenario subscribed, consumed by matches."""

    def __init__(self, subscription: Subscription) -> None:
        self.subscription = subscription
        self.events: list[BrokerEvent] = []
        self.consumed: set[int] = set()

    def _take_ready(self) -> None:
        while not self.subscription.queue.empty():
            self.events.append(self.subscription.queue.get_nowait())

    async def _next(self, within: float) -> bool:
        try:
            event = await asyncio.wait_for(self.subscription.queue.get(), within)
        except TimeoutError:
            return False
        self.events.append(event)
        return True

    def _find(self, patterns: list[Mapping[str, Any]], ordered: bool, orders: Orders) -> list[int] | None:
        chosen: list[int] = []
        last = -1
        for pattern in patterns:
            start = last + 1 if ordered else 0
            index = next(
                (
                    i
                    for i in range(start, len(self.events))
                    if i not in self.consumed and i not in chosen and pattern_matches(pattern, self.events[i], orders)
                ),
                None,
            )
            if index is None:
                return None
            chosen.append(index)
            last = index
        return chosen

    async def expect(self, patterns: list[Mapping[str, Any]], ordered: bool, orders: Orders, within: float) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while True:
            self._take_ready()
            found = self._find(patterns, ordered, orders)
            if found is not None:
                self.consumed.update(found)
                return
            remaining = deadline - loop.time()
            if remaining <= 0 or not await self._next(remaining):
                raise ScenarioFailure(self._diff(patterns, ordered, orders))

    async def settle(self, quiet: float = QUIET, limit: float = TIMEOUT) -> None:
        """Collect stragglers until nothing arrives for ``quiet`` seconds (bounded by ``limit``)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + limit
        while loop.time() < deadline and await self._next(quiet):
            pass

    def _diff(self, patterns: list[Mapping[str, Any]], ordered: bool, orders: Orders) -> str:
        lines = [f"expected ({'in order' if ordered else 'any order'}) within {TIMEOUT}s:"]
        lines += [f"  - {p}" for p in patterns]
        lines.append(f"events seen (client ids end with the ref; token {orders.token}):")
        lines += [f"  {'x' if i in self.consumed else ' '} {describe(e)}" for i, e in enumerate(self.events)] or [
            "  (none)"
        ]
        return "\n".join(lines)

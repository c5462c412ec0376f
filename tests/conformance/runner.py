"""Runs one conformance scenario (a YAML file in ``cases/``) against one harness.

A scenario is data: a list of steps, each one action (place, modify, cancel, flatten,
set_price, advance, fault, drop/restore connection, connect, disconnect, snapshot, kernel
check) or one expectation over the adapter's event stream. Expected events name only the
fields that matter; everything else (timestamps, broker ids, fill ids) is volatile and ignored.
Waiting is always for an event, bounded by a timeout: nothing here sleeps for a fixed time.

Event patterns: ``{order|fill|position|connection: {field: value}}``. ``ref`` names an order of
the scenario (matched by our client order id or the broker id from its ack); a value may be
``{one_of: [...]}``, ``{contains: text}`` or ``{approx: price, within: 0.01}``; prices compare
as Decimals.
"""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml

from copytrader.brokers import errors
from copytrader.brokers.base import Subscription
from copytrader.brokers.model import (
    BrokerEvent,
    Bracket,
    CancelOrder,
    Capabilities,
    ConnectionEvent,
    FillEvent,
    FlattenPosition,
    ModifyOrder,
    OrderAck,
    OrderEvent,
    OrderType,
    PlaceOrder,
    PositionEvent,
    Side,
    TimeInForce,
)

from .harness import ACCOUNT, Harness

CASES = Path(__file__).parent / "cases"
TIMEOUT = float(os.environ.get("CT_TIMEOUT", "5"))
QUIET = float(os.environ.get("CT_QUIET", "0.2"))


class ScenarioFailure(AssertionError):
    """A step did not behave as the scenario says; the message shows expected vs seen."""


@dataclass(frozen=True)
class Scenario:
    id: str
    title: str
    requires: tuple[str, ...]
    connect: bool
    steps: tuple[Mapping[str, Any], ...]
    forbid: tuple[Mapping[str, Any], ...]
    path: Path

    @classmethod
    def load(cls, path: Path) -> "Scenario":
        data = yaml.safe_load(path.read_text())
        if data.get("id") != path.stem:
            raise ValueError(f"{path.name}: id {data.get('id')!r} must match the file name")
        return cls(
            id=data["id"], title=data.get("title", ""), requires=tuple(data.get("requires", ())),
            connect=bool(data.get("connect", True)), steps=tuple(data["steps"]),
            forbid=tuple(data.get("forbid", ())), path=path,
        )


def load_scenarios(folder: Path = CASES) -> list[Scenario]:
    return [Scenario.load(path) for path in sorted(folder.glob("CT-*.yaml"))]


def missing_requirement(scenario: Scenario, capabilities: Capabilities, features: frozenset[str]) -> str | None:
    """The first requirement the platform lacks, as a skip reason, or None."""
    for requirement in scenario.requires:
        kind, _, value = requirement.partition(":")
        if kind == "order_type":
            if OrderType(value) not in capabilities.order_types:
                return f"lacks order type {value}"
        elif kind == "feature":
            if value not in features:
                return f"lacks harness feature {value}"
        elif not getattr(capabilities, requirement):
            return f"lacks capability {requirement}"
    return None


# --------------------------------------------------------------------------- matching


def normalize(event: BrokerEvent) -> tuple[str, dict[str, Any]]:
    """Event → (kind, fields) with enums as their values: what patterns are compared with."""
    if isinstance(event, OrderEvent):
        return "order", {
            "client_order_id": event.client_order_id, "broker_order_id": event.broker_order_id,
            "symbol": event.symbol, "side": event.side.value, "type": event.order_type.value,
            "quantity": event.quantity, "status": event.status.value,
            "filled_quantity": event.filled_quantity, "limit_price": event.limit_price,
            "stop_price": event.stop_price, "reason": event.reason,
        }
    if isinstance(event, FillEvent):
        return "fill", {
            "client_order_id": event.client_order_id, "broker_order_id": event.broker_order_id,
            "symbol": event.symbol, "side": event.side.value, "quantity": event.quantity,
            "price": event.price, "cumulative_quantity": event.cumulative_quantity,
            "leaves_quantity": event.leaves_quantity, "partial": event.is_partial,
        }
    if isinstance(event, PositionEvent):
        return "position", {
            "symbol": event.symbol, "net_quantity": event.net_quantity,
            "average_price": event.average_price, "realized_pnl": event.realized_pnl,
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

    async def _next(self, timeout: float) -> bool:
        try:
            event = await asyncio.wait_for(self.subscription.queue.get(), timeout)
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
                (i for i in range(start, len(self.events))
                 if i not in self.consumed and i not in chosen
                 and pattern_matches(pattern, self.events[i], orders)),
                None,
            )
            if index is None:
                return None
            chosen.append(index)
            last = index
        return chosen

    async def expect(self, patterns: list[Mapping[str, Any]], ordered: bool, orders: Orders, timeout: float) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
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
        lines += [
            f"  {'x' if i in self.consumed else ' '} {describe(e)}" for i, e in enumerate(self.events)
        ] or ["  (none)"]
        return "\n".join(lines)


# --------------------------------------------------------------------------- actions


def _decimal(value: Any) -> Decimal | None:
    return None if value is None else Decimal(str(value))


ERRORS: dict[str, type[BaseException]] = {
    name: cls for name, cls in vars(errors).items() if isinstance(cls, type) and issubclass(cls, BaseException)
}


class ScenarioRun:
    def __init__(self, scenario: Scenario, harness: Harness, timeout: float = TIMEOUT) -> None:
        self.scenario = scenario
        self.harness = harness
        self.timeout = timeout
        self.orders = Orders()
        self.log = EventLog(harness.adapter.events())

    async def run(self) -> None:
        try:
            if self.scenario.connect:
                await asyncio.wait_for(self.harness.adapter.connect(), self.timeout)
            for number, step in enumerate(self.scenario.steps, 1):
                try:
                    await self.step(step)
                except ScenarioFailure as exc:
                    raise ScenarioFailure(f"{self.scenario.id} step {number} {dict(step)}:\n{exc}") from None
            await self.check_forbidden()
        finally:
            self.log.subscription.close()

    async def step(self, step: Mapping[str, Any]) -> None:
        action = next(key for key in step if key not in ("ack", "error"))
        body = step[action]
        if action in ("expect", "expect_any_order"):
            await self.log.expect(list(body), action == "expect", self.orders, self.timeout)
            return
        handler = getattr(self, f"do_{action}", None)
        if handler is None:
            raise ValueError(f"unknown action {action!r}")
        try:
            result = await asyncio.wait_for(handler(body or {}), self.timeout)
        except errors.BrokerError as exc:
            if "error" not in step:
                raise ScenarioFailure(f"unexpected {type(exc).__name__}: {exc}") from exc
            self.check_error(step["error"], exc)
            return
        if "error" in step:
            raise ScenarioFailure(f"expected {step['error']}, got result {result!r}")
        if "ack" in step:
            self.check_ack(step["ack"], result, body)

    # -- orders ----------------------------------------------------------------------
    async def do_place(self, body: Mapping[str, Any]) -> OrderAck:
        bracket = body.get("bracket")
        command = PlaceOrder(
            account_id=ACCOUNT, client_order_id=self.orders.client_id(body["ref"]),
            symbol=body.get("symbol", self.harness.symbol), side=Side(body["side"]),
            quantity=int(body.get("quantity", 1)), order_type=OrderType(body.get("type", "market")),
            limit_price=_decimal(body.get("limit_price")), stop_price=_decimal(body.get("stop_price")),
            time_in_force=TimeInForce(body.get("tif", "day")),
            bracket=Bracket(_decimal(bracket.get("take_profit")), _decimal(bracket.get("stop_loss")))
            if bracket else None,
        )
        ack = await self.harness.adapter.place(command)
        self.orders.remember(body["ref"], ack)
        return ack

    async def do_modify(self, body: Mapping[str, Any]) -> OrderAck:
        ack = await self.harness.adapter.modify(ModifyOrder(
            account_id=ACCOUNT, client_order_id=self.orders.client_id(body["ref"]),
            quantity=body.get("quantity"), limit_price=_decimal(body.get("limit_price")),
            stop_price=_decimal(body.get("stop_price")),
        ))
        self.orders.remember(body["ref"], ack)
        return ack

    async def do_cancel(self, body: Mapping[str, Any]) -> OrderAck:
        return await self.harness.adapter.cancel(
            CancelOrder(account_id=ACCOUNT, client_order_id=self.orders.client_id(body["ref"]))
        )

    async def do_flatten(self, body: Mapping[str, Any]) -> OrderAck:
        symbol = body.get("symbol", self.harness.symbol) if not body.get("all") else None
        return await self.harness.adapter.flatten(FlattenPosition(
            account_id=ACCOUNT, client_order_id=self.orders.client_id(body.get("ref", "FLAT")), symbol=symbol,
        ))

    # -- market and faults -----------------------------------------------------------
    async def do_set_price(self, body: Any) -> None:
        self.harness.exchange.set_price(self.harness.kernel_symbol, Decimal(str(body)))

    async def do_advance(self, body: Any) -> None:
        self.harness.exchange.advance(int(body or 1))

    async def do_fault(self, body: Mapping[str, Any]) -> None:
        faults = self.harness.faults()
        for name, value in body.items():
            if not hasattr(faults, name):
                raise ValueError(f"no fault switch {name!r}")
            setattr(faults, name, value)
        self.harness.exchange.faults_changed(self.harness.kernel_account)

    # -- connection ------------------------------------------------------------------
    async def do_connect(self, body: Mapping[str, Any]) -> None:
        adapter = self.harness.adapter
        if body.get("credentials") == "bad":
            adapter = self.harness.adapter_with(dict(self.harness.bad_credentials))
        await adapter.connect()

    async def do_disconnect(self, body: Mapping[str, Any]) -> None:
        await self.harness.adapter.disconnect()

    async def do_drop_connection(self, body: Mapping[str, Any]) -> None:
        await self.harness.drop_connection(bool(body.get("hold", False)))

    async def do_restore_connection(self, body: Mapping[str, Any]) -> None:
        await self.harness.restore_connection()

    async def do_health(self, body: Mapping[str, Any]) -> None:
        health = self.harness.adapter.health()
        if "state" in body and not value_matches(body["state"], health.state.value):
            raise ScenarioFailure(f"health state {health.state.value}, expected {body['state']}")

    # -- state checks ----------------------------------------------------------------
    async def do_snapshot(self, body: Mapping[str, Any]) -> None:
        snapshot = await self.harness.adapter.snapshot(ACCOUNT)
        for key, events in (("open_orders", snapshot.open_orders), ("positions", snapshot.positions)):
            if key in body:
                kind = "order" if key == "open_orders" else "position"
                self._match_exactly(key, [{kind: p} for p in body[key]], list(events))
        if "balance" in body and not value_matches(body["balance"], snapshot.balance):
            raise ScenarioFailure(f"balance {snapshot.balance}, expected {body['balance']}")

    def _match_exactly(self, what: str, patterns: list[Mapping[str, Any]], events: list[BrokerEvent]) -> None:
        """Multiset match: every pattern one event, no event left over."""
        left = list(events)
        for pattern in patterns:
            index = next((i for i, e in enumerate(left) if pattern_matches(pattern, e, self.orders)), None)
            if index is None:
                raise ScenarioFailure(
                    f"snapshot {what}: nothing matches {pattern}; got {[describe(e) for e in events]}"
                )
            left.pop(index)
        if left:
            raise ScenarioFailure(f"snapshot {what}: unexpected {[describe(e) for e in left]}")

    async def do_kernel(self, body: Mapping[str, Any]) -> None:
        """Ask the exchange itself: what did the platform really submit?"""
        account = self.harness.exchange.account(self.harness.kernel_account)
        if "orders" in body and len(account.orders) != int(body["orders"]):
            raise ScenarioFailure(f"kernel holds {len(account.orders)} orders, expected {body['orders']}")
        if "net_quantity" in body:
            position = account.positions.get(self.harness.kernel_symbol)
            net = position.net_quantity if position else 0
            if net != int(body["net_quantity"]):
                raise ScenarioFailure(f"kernel position {net}, expected {body['net_quantity']}")

    # -- outcome checks --------------------------------------------------------------
    def check_ack(self, expected: Mapping[str, Any], ack: Any, body: Mapping[str, Any]) -> None:
        if not isinstance(ack, OrderAck):
            raise ScenarioFailure(f"expected an OrderAck, got {ack!r}")
        actual = {"status": ack.status.value, "duplicate": ack.duplicate, "client_order_id": ack.client_order_id}
        for key, value in expected.items():
            if key == "same_broker_id_as":
                if ack.broker_order_id not in self.orders.broker_ids.get(value, set()) or len(
                    self.orders.broker_ids.get(value, set())
                ) != 1:
                    raise ScenarioFailure(f"ack broker id {ack.broker_order_id} differs from {value}'s")
            elif key == "own_client_id":
                if ack.client_order_id != self.orders.client_id(body["ref"]):
                    raise ScenarioFailure(f"ack client id {ack.client_order_id!r} is not ours")
            elif not value_matches(value, actual[key]):
                raise ScenarioFailure(f"ack {key}={actual[key]!r}, expected {value!r} ({ack})")

    @staticmethod
    def check_error(expected: Mapping[str, Any], exc: errors.BrokerError) -> None:
        names = expected["type"] if isinstance(expected["type"], list) else [expected["type"]]
        if not isinstance(exc, tuple(ERRORS[name] for name in names)):
            raise ScenarioFailure(f"expected {names}, got {type(exc).__name__}: {exc}") from exc
        if "retriable" in expected and exc.retriable is not bool(expected["retriable"]):
            raise ScenarioFailure(f"{type(exc).__name__}.retriable is {exc.retriable}")
        if "message_contains" in expected and str(expected["message_contains"]).lower() not in str(exc).lower():
            raise ScenarioFailure(f"error message {str(exc)!r} lacks {expected['message_contains']!r}")

    async def check_forbidden(self) -> None:
        if not self.scenario.forbid:
            return
        await self.log.settle()
        for pattern in self.scenario.forbid:
            seen = [describe(e) for e in self.log.events if pattern_matches(pattern, e, self.orders)]
            if seen:
                raise ScenarioFailure(f"{self.scenario.id}: forbidden {pattern} happened: {seen}")

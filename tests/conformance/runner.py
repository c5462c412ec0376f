"""Runs one conformance scenario (a YAML file in ``cases/``) against one harness.

A scenario is data: a list of steps, each one action (place, modify, cancel, flatten,
set_price, advance, fault, drop/restore connection, connect, disconnect, snapshot, kernel
check) or one expectation over the adapter's event stream. Expected events name only the
fields that matter; everything else (timestamps, broker ids, fill ids) is volatile and ignored.
Waiting is always for an event, bounded by a timeout: nothing here sleeps for a fixed time.
Pattern matching lives in :mod:`.matching`; the file format is described in ``cases/README.md``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml

from copytrader.brokers import errors
from copytrader.brokers.model import (
    Bracket,
    BrokerEvent,
    CancelOrder,
    Capabilities,
    FlattenPosition,
    ModifyOrder,
    OrderAck,
    OrderType,
    PlaceOrder,
    Side,
    TimeInForce,
)

from .harness import ACCOUNT, Harness
from .matching import (
    TIMEOUT,
    EventLog,
    Orders,
    ScenarioFailure,
    describe,
    pattern_matches,
    value_matches,
)

__all__ = ["Scenario", "ScenarioFailure", "ScenarioRun", "ScenarioSkipped", "load_scenarios", "missing_requirement"]

CASES = Path(__file__).parent / "cases"


class ScenarioSkipped(Exception):
    """The platform refused a step as unsupported where the scenario allows that
    (``skip_if_unsupported: true``): refusing is honest, silently ignoring is not."""


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
    def load(cls, path: Path) -> Scenario:
        data = yaml.safe_load(path.read_text())
        if data.get("id") != path.stem:
            raise ValueError(f"{path.name}: id {data.get('id')!r} must match the file name")
        return cls(
            id=data["id"],
            title=data.get("title", ""),
            requires=tuple(data.get("requires", ())),
            connect=bool(data.get("connect", True)),
            steps=tuple(data["steps"]),
            forbid=tuple(data.get("forbid", ())),
            path=path,
        )


def load_scenarios(folder: Path = CASES) -> list[Scenario]:
    return [Scenario.load(path) for path in sorted(folder.glob("CT-*.yaml"))]


#: Steps that need order entry (an order, the broker's order/position state, the kernel's).
ORDER_ACTIONS = frozenset({"place", "modify", "cancel", "flatten", "lookup", "snapshot", "kernel"})


def missing_requirement(scenario: Scenario, capabilities: Capabilities, features: frozenset[str]) -> str | None:
    """The first requirement the platform lacks, as a skip reason, or None. A market-data
    platform (no order entry) skips every scenario with an order step, whatever it declares."""
    if not capabilities.order_entry and (
        "order_entry" in scenario.requires or any(ORDER_ACTIONS.intersection(step) for step in scenario.steps)
    ):
        return "is market data only (no order entry)"
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
        action = next(key for key in step if key not in ("ack", "error", "skip_if_unsupported"))
        body = step[action]
        if action in ("expect", "expect_any_order"):
            await self.log.expect(list(body), action == "expect", self.orders, self.timeout)
            return
        handler = getattr(self, f"do_{action}", None)
        if handler is None:
            raise ValueError(f"unknown action {action!r}")
        try:
            result = await asyncio.wait_for(handler(body or {}), self.timeout)
        except errors.UnsupportedOperation as exc:
            if step.get("skip_if_unsupported"):
                raise ScenarioSkipped(f"{self.harness.platform} does not support it: {exc}") from exc
            raise ScenarioFailure(f"unexpected UnsupportedOperation: {exc}") from exc
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
            account_id=ACCOUNT,
            client_order_id=self.orders.client_id(body["ref"]),
            symbol=body.get("symbol", self.harness.symbol),
            side=Side(body["side"]),
            quantity=int(body.get("quantity", 1)),
            order_type=OrderType(body.get("type", "market")),
            limit_price=_decimal(body.get("limit_price")),
            stop_price=_decimal(body.get("stop_price")),
            time_in_force=TimeInForce(body.get("tif", "day")),
            bracket=Bracket(
                _decimal(bracket.get("take_profit")),
                _decimal(bracket.get("stop_loss")),
                _decimal(bracket.get("reference_price")),
            )
            if bracket
            else None,
        )
        ack = await self.harness.adapter.place(command)
        self.orders.remember(body["ref"], ack)
        return ack

    async def do_modify(self, body: Mapping[str, Any]) -> OrderAck:
        ack = await self.harness.adapter.modify(
            ModifyOrder(
                account_id=ACCOUNT,
                client_order_id=self.orders.client_id(body["ref"]),
                quantity=body.get("quantity"),
                limit_price=_decimal(body.get("limit_price")),
                stop_price=_decimal(body.get("stop_price")),
            )
        )
        self.orders.remember(body["ref"], ack)
        return ack

    async def do_cancel(self, body: Mapping[str, Any]) -> OrderAck:
        return await self.harness.adapter.cancel(
            CancelOrder(account_id=ACCOUNT, client_order_id=self.orders.client_id(body["ref"]))
        )

    async def do_lookup(self, body: Mapping[str, Any]) -> OrderAck | None:
        """Ask the broker for ``ref``'s client order id; ``absent: true`` expects it holds none."""
        found = await self.harness.adapter.lookup(ACCOUNT, self.orders.client_id(body["ref"]))
        if body.get("absent"):
            if found is not None:
                raise ScenarioFailure(f"lookup of {body['ref']} found {found}, expected none")
            return None
        if found is None:
            raise ScenarioFailure(f"lookup of {body['ref']}: the broker holds no such order")
        self.orders.remember(body["ref"], found)
        return found

    async def do_flatten(self, body: Mapping[str, Any]) -> OrderAck:
        symbol = body.get("symbol", self.harness.symbol) if not body.get("all") else None
        return await self.harness.adapter.flatten(
            FlattenPosition(
                account_id=ACCOUNT,
                client_order_id=self.orders.client_id(body.get("ref", "FLAT")),
                symbol=symbol,
            )
        )

    # -- market and faults -----------------------------------------------------------
    async def do_set_price(self, body: Any) -> None:
        """One price, or a list applied in one go: a simulator with its own market clock cannot
        match at the first price again before the second is set."""
        for price in body if isinstance(body, list) else [body]:
            self.harness.exchange.set_price(self.harness.kernel_symbol, Decimal(str(price)))

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

    # -- sessions and limits (simulator hooks behind the features that require them) ---
    async def do_other_sessions(self, body: Mapping[str, Any]) -> None:
        """The same user logs in elsewhere ``count`` times (feature ``session_limit``)."""
        self.harness.simulator.open_other_sessions(int(body.get("count", 1)))

    async def do_sessions_opened(self, body: Mapping[str, Any]) -> None:
        opened = self.harness.simulator.session_count()
        if "exactly" in body and opened != int(body["exactly"]):
            raise ScenarioFailure(f"{opened} sessions opened, expected exactly {body['exactly']}")
        if "at_most" in body and opened > int(body["at_most"]):
            raise ScenarioFailure(f"{opened} sessions opened, expected at most {body['at_most']}")

    async def do_endpoint_limit(self, body: Mapping[str, Any]) -> None:
        """The platform's own per-endpoint limit, answered with penalties (feature ``penalty_tickets``)."""
        self.harness.simulator.set_endpoint_limit(str(body["class"]), int(body["requests"]), float(body["seconds"]))

    async def do_user_limit(self, body: Mapping[str, Any]) -> None:
        """The platform's per-user request window (feature ``user_rate_limit``)."""
        self.harness.simulator.set_user_limit(int(body["requests"]), float(body["seconds"]))

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
        for ref, count in (body.get("orders_with_ref") or {}).items():
            held = self.harness.exchange.orders_with_client_id(self.harness.kernel_account, self.orders.client_id(ref))
            if len(held) != int(count):
                raise ScenarioFailure(f"kernel holds {len(held)} orders tagged {ref}, expected {count}")
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
                if (
                    ack.broker_order_id not in self.orders.broker_ids.get(value, set())
                    or len(self.orders.broker_ids.get(value, set())) != 1
                ):
                    raise ScenarioFailure(f"ack broker id {ack.broker_order_id} differs from {value}'s")
            elif key == "own_client_id":
                if ack.client_order_id != self.orders.client_id(body["ref"]):
                    raise ScenarioFailure(f"ack client id {ack.client_order_id!r} is not ours")
            elif not value_matches(value, actual[key]):
                raise ScenarioFailure(f"ack {key}={actual[key]!r}, expected {value!r} ({ack})")

    def check_error(self, expected: Mapping[str, Any], exc: errors.BrokerError) -> None:
        names = expected["type"] if isinstance(expected["type"], list) else [expected["type"]]
        if not isinstance(exc, tuple(ERRORS[name] for name in names)):
            raise ScenarioFailure(f"expected {names}, got {type(exc).__name__}: {exc}") from exc
        if "retriable" in expected and exc.retriable is not bool(expected["retriable"]):
            raise ScenarioFailure(f"{type(exc).__name__}.retriable is {exc.retriable}")
        if "sent" in expected and getattr(exc, "sent", None) is not bool(expected["sent"]):
            raise ScenarioFailure(f"{type(exc).__name__}.sent is {getattr(exc, 'sent', None)}")
        reasons = self.harness.adapter.capabilities.reject_reasons
        if (
            "message_contains" in expected
            and reasons
            and str(expected["message_contains"]).lower() not in str(exc).lower()
        ):
            raise ScenarioFailure(f"error message {str(exc)!r} lacks {expected['message_contains']!r}")

    async def check_forbidden(self) -> None:
        if not self.scenario.forbid:
            return
        await self.log.settle()
        for pattern in self.scenario.forbid:
            seen = [describe(e) for e in self.log.events if pattern_matches(pattern, e, self.orders)]
            if seen:
                raise ScenarioFailure(f"{self.scenario.id}: forbidden {pattern} happened: {seen}")

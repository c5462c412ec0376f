"""The executor against a broker that refuses no repeated client order id (issue #11, item 3).

A scripted broker (``FakeBroker``) counts every order in its own books: each path below must
end with exactly one order per intent, or with an ``unknown`` report and no blind place.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import pytest

from copytrader.agents.execution.attempt_journal import DONE, UNKNOWN, AttemptJournal
from copytrader.agents.execution.router import AccountLanes, OrderRouter
from copytrader.agents.shared.outbox import MemoryOutbox
from copytrader.agents.shared.sessions import SessionPool
from copytrader.brokers.base import BrokerAdapter, SessionConfig
from copytrader.brokers.errors import BrokerError, BrokerUnavailable, OrderRejected, RateLimited, UnsupportedOperation
from copytrader.brokers.model import (
    AccountSnapshot,
    CancelOrder,
    Capabilities,
    ConnectionState,
    FlattenPosition,
    ModifyOrder,
    OrderAck,
    OrderStatus,
    PlaceOrder,
)
from copytrader.core import ids
from copytrader.core.config import parse_config
from copytrader.core.records import Execution, OrderError, OrderIntent


class UnknownAnswer(BrokerError):
    """An adapter's own error for an answer it could not read; ``raw`` is the text as sent."""

    def __init__(self, raw: str) -> None:
        super().__init__("answer not understood", code="UNKNOWN_ENUM")
        self.raw = raw


class FakeBroker(BrokerAdapter):
    """``place_script`` steps: ok, lost (placed, answer lost), timeout (not placed, TimeoutError),
    unsent (BrokerUnavailable sent=False), throttled, rejected, garbage (placed, unreadable answer),
    unknown-enum (placed, an adapter error carrying the raw answer), hang (never answers). ``lookup_script`` steps: books (answer from the books), down, unsupported."""

    platform: ClassVar[str] = "fake"
    capabilities: ClassVar[Capabilities] = Capabilities()
    books: ClassVar[dict[str, list[OrderAck]]] = {}

    def __init__(self, config: SessionConfig) -> None:
        super().__init__(config)
        self.place_script: list[str] = []
        self.lookup_script: list[str] = []
        self.cancel_script: list[str] = []
        self.calls: list[tuple[str, str]] = []
        self._ids = itertools.count(1)

    async def connect(self) -> None:
        self._set_state(ConnectionState.CONNECTED)

    async def disconnect(self) -> None:
        self._set_state(ConnectionState.DISCONNECTED)

    def orders(self, client_order_id: str) -> list[OrderAck]:
        return self.books.get(client_order_id, [])

    def _book(self, account_id: str, client_order_id: str, status: OrderStatus = OrderStatus.WORKING) -> OrderAck:
        ack = OrderAck(account_id, client_order_id, f"B{next(self._ids)}", status)
        self.books.setdefault(client_order_id, []).append(ack)
        return ack

    async def place(self, command: PlaceOrder) -> OrderAck:
        self.calls.append(("place", command.client_order_id))
        step = self.place_script.pop(0) if self.place_script else "ok"
        if step == "hang":
            await asyncio.Event().wait()
        if step == "timeout":
            raise TimeoutError("no answer")
        if step == "unsent":
            raise BrokerUnavailable("connection refused", sent=False)
        if step == "throttled":
            raise RateLimited("slow down", retry_after=0.01)
        if step == "rejected":
            self._book(command.account_id, command.client_order_id, OrderStatus.REJECTED)
            raise OrderRejected("margin", code="REJECTED")
        ack = self._book(command.account_id, command.client_order_id)
        if step == "lost":
            raise BrokerUnavailable("reset after send", sent=True)
        if step == "garbage":
            raise KeyError("orderStatus: 'Frobnicated'")
        if step == "unknown-enum":
            raise UnknownAnswer('{"orderId": 7, "commandStatus": "Frobnicated"}')
        return ack

    async def lookup(self, account_id: str, client_order_id: str) -> OrderAck | None:
        self.calls.append(("lookup", client_order_id))
        step = self.lookup_script.pop(0) if self.lookup_script else "books"
        if step == "down":
            raise BrokerUnavailable("lookup timed out", sent=True)
        if step == "unsupported":
            raise UnsupportedOperation("no lookup here")
        found = self.orders(client_order_id)
        if not found:
            return None
        first = found[0]
        return OrderAck(account_id, client_order_id, first.broker_order_id, first.status, duplicate=True)

    async def modify(self, command: ModifyOrder) -> OrderAck:
        self.calls.append(("modify", command.client_order_id))
        return self.orders(command.client_order_id)[0]

    async def cancel(self, command: CancelOrder) -> OrderAck:
        self.calls.append(("cancel", command.client_order_id))
        step = self.cancel_script.pop(0) if self.cancel_script else "ok"
        target = self.orders(command.client_order_id)[0]
        cancelled = OrderAck(target.account_id, target.client_order_id, target.broker_order_id, OrderStatus.CANCELLED)
        self.books[command.client_order_id][0] = cancelled
        if step == "lost":
            raise BrokerUnavailable("reset after send", sent=True)
        return cancelled

    async def flatten(self, command: FlattenPosition) -> OrderAck:
        self.calls.append(("flatten", command.client_order_id))
        return self._book(command.account_id, command.client_order_id, OrderStatus.FILLED)

    async def snapshot(self, account_id: str) -> AccountSnapshot:
        raise UnsupportedOperation("not needed here")


CONFIG = {
    "sessions": [{"id": "s", "platform": "paper"}],
    "accounts": [{"id": "L", "session": "s"}, {"id": "f1", "session": "s"}],
    "copy_groups": [],
}


class Executor:
    """One executor process: a router with its own journal file and its own broker session."""

    def __init__(self, journal: Path, broker: FakeBroker, deadline_s: float = 2.0) -> None:
        self.outbox = MemoryOutbox()
        self.broker = broker
        self.journal = AttemptJournal(journal)
        self.router = OrderRouter(
            SessionPool(parse_config(CONFIG, env={}), lambda _cfg: broker),
            self.outbox,
            self.journal,
            deadline_s=deadline_s,
        )
        self.router.late.delays_s = ()  # no late lookups unless a test asks for them

    async def run(self, intent: OrderIntent, redelivered: bool = False) -> None:
        await self.router.execute(intent, redelivered)
        await self.router.outbox.drained()

    def outcomes(self) -> list[Execution]:
        return [e for e in self.outbox.sent["execution"] if isinstance(e, Execution) and e.request_outcome]

    def errors(self) -> list[OrderError]:
        return [e for e in self.outbox.sent["error"] if isinstance(e, OrderError)]


@pytest.fixture
def broker() -> Iterator[FakeBroker]:
    FakeBroker.books = {}
    yield FakeBroker(parse_config(CONFIG, env={}).sessions["s"])


@pytest.fixture
def journal_path(tmp_path: Path) -> Path:
    return tmp_path / "executor" / "attempts.sqlite"


def place(signal: str = "s1", action: str = "place", target: str | None = None) -> OrderIntent:
    return OrderIntent(
        client_order_id=ids.client_order_id(signal, "f1"),
        signal_id=signal,
        account_id="f1",
        platform="paper",
        leader_account="L",
        action=action,
        symbol="ESZ6",
        side="buy",
        quantity=2,
        target_client_order_id=target,
        stamps={"detected": time.time()},
    )


async def test_a_fresh_intent_is_recorded_then_placed_without_a_lookup(broker: FakeBroker, journal_path: Path) -> None:
    executor = Executor(journal_path, broker)
    intent = place()
    await executor.run(intent)
    assert broker.calls == [("place", intent.client_order_id)]
    assert [(o.kind, o.duplicate) for o in executor.outcomes()] == [("ack", False)]
    row = executor.journal.get(intent.client_order_id, signal_id=intent.signal_id)
    assert row is not None and (row.state, row.kind) == (DONE, "ack")


async def test_a_lost_answer_is_looked_up_and_found_so_nothing_is_placed_again(
    broker: FakeBroker, journal_path: Path
) -> None:
    broker.place_script = ["lost"]
    executor = Executor(journal_path, broker)
    intent = place()
    await executor.run(intent)
    assert [c[0] for c in broker.calls] == ["place", "lookup"]
    assert len(broker.orders(intent.client_order_id)) == 1
    # placed by this very attempt: an ack, not an absorbed redelivery
    assert [(o.kind, o.duplicate, o.broker_order_id) for o in executor.outcomes()] == [("ack", False, "B1")]


async def test_a_timeout_that_placed_nothing_is_looked_up_then_placed_once(
    broker: FakeBroker, journal_path: Path
) -> None:
    broker.place_script = ["timeout"]
    executor = Executor(journal_path, broker)
    intent = place()
    await executor.run(intent)
    assert [c[0] for c in broker.calls] == ["place", "lookup", "place"]
    assert len(broker.orders(intent.client_order_id)) == 1
    assert [o.kind for o in executor.outcomes()] == ["ack"]


async def test_a_lookup_that_fails_is_retried_within_the_deadline(broker: FakeBroker, journal_path: Path) -> None:
    broker.place_script = ["lost"]
    broker.lookup_script = ["down", "down"]
    executor = Executor(journal_path, broker)
    intent = place()
    await executor.run(intent)
    assert [c[0] for c in broker.calls] == ["place", "lookup", "lookup", "lookup"]
    assert len(broker.orders(intent.client_order_id)) == 1
    assert [o.kind for o in executor.outcomes()] == ["ack"]


async def test_an_outcome_still_unknown_at_the_deadline_is_reported_unknown_never_placed_again(
    broker: FakeBroker, journal_path: Path
) -> None:
    broker.place_script = ["lost"]
    broker.lookup_script = ["down"] * 100
    executor = Executor(journal_path, broker, deadline_s=0.4)
    intent = place()
    started = time.monotonic()
    await executor.run(intent)
    assert time.monotonic() - started < 0.4 + 0.2  # one budget for the whole copy
    assert [c[0] for c in broker.calls].count("place") == 1
    assert [(e.code, e.stage) for e in executor.errors()] == [("OUTCOME_UNKNOWN", "execute")]
    assert "lookup timed out" in executor.errors()[0].reason
    assert executor.journal.get(intent.client_order_id, signal_id=intent.signal_id).state == UNKNOWN  # type: ignore[union-attr]


async def test_an_unknown_outcome_is_looked_up_again_later_and_its_ack_follows_the_report(
    broker: FakeBroker, journal_path: Path
) -> None:
    broker.place_script = ["lost"]
    executor = Executor(journal_path, broker, deadline_s=0.3)
    broker.lookup_script = ["down"] * 100  # for as long as the copy's deadline runs
    executor.router.late.delays_s = (0.2, 0.2)
    intent = place()
    await executor.run(intent)
    assert [e.code for e in executor.errors()] == ["OUTCOME_UNKNOWN"]
    broker.lookup_script = []  # the broker answers again
    give_up = time.monotonic() + 5
    while not any(o.kind == "ack" for o in executor.outcomes()) and time.monotonic() < give_up:
        await asyncio.sleep(0.02)
    await executor.router.outbox.drained()
    assert [(o.kind, o.broker_order_id) for o in executor.outcomes()] == [("reject", None), ("ack", "B1")]
    assert [c[0] for c in broker.calls].count("place") == 1  # found, never placed again
    assert executor.journal.get(intent.client_order_id, signal_id=intent.signal_id).state == DONE  # type: ignore[union-attr]
    await executor.router.late.close()


async def test_the_offset_of_an_unknown_outcome_waits_for_its_late_lookup(
    broker: FakeBroker, journal_path: Path
) -> None:
    broker.place_script = ["lost"]
    broker.lookup_script = ["down"] * 100
    executor = Executor(journal_path, broker, deadline_s=0.3)
    executor.router.late.delays_s = (0.3,)
    lanes = AccountLanes(executor.router.execute, executor.router.report_crash)
    acked_offsets: list[list[str]] = []

    async def done() -> None:  # what commits the Kafka offset
        acked_offsets.append([o.kind for o in executor.outcomes()])

    lanes.submit(place("s1"), done)
    lanes.submit(place("s2"), done)  # the lane goes on meanwhile
    await lanes.join()
    await executor.router.outbox.drained()
    assert [o.signal_id for o in executor.outcomes() if o.kind == "ack"] == ["s2"]
    assert len(acked_offsets) == 1  # s2's; s1's offset is held
    broker.lookup_script = []
    give_up = time.monotonic() + 5
    while len(acked_offsets) < 2 and time.monotonic() < give_up:
        await asyncio.sleep(0.02)
    await executor.router.outbox.drained()
    assert acked_offsets[1].count("ack") == 2  # s1 acknowledged only once its ack was found
    await lanes.close()


async def test_a_redelivered_intent_is_looked_up_first_and_reported_as_a_duplicate(
    broker: FakeBroker, journal_path: Path
) -> None:
    intent = place()
    broker._book("f1", intent.client_order_id)  # the previous owner placed it
    executor = Executor(journal_path, broker)
    await executor.run(intent, redelivered=True)
    assert [c[0] for c in broker.calls] == ["lookup"]
    assert [(o.kind, o.duplicate) for o in executor.outcomes()] == [("ack", True)]
    assert len(broker.orders(intent.client_order_id)) == 1


async def test_a_redelivered_intent_the_broker_never_saw_is_placed(broker: FakeBroker, journal_path: Path) -> None:
    executor = Executor(journal_path, broker)
    intent = place()
    await executor.run(intent, redelivered=True)
    assert [c[0] for c in broker.calls] == ["lookup", "place"]
    assert [(o.kind, o.duplicate) for o in executor.outcomes()] == [("ack", False)]


@pytest.mark.parametrize("step", ["down", "unsupported"])
async def test_a_redelivered_intent_that_cannot_be_looked_up_is_unknown_and_not_placed(
    broker: FakeBroker, journal_path: Path, step: str
) -> None:
    broker.lookup_script = [step] * 100
    executor = Executor(journal_path, broker, deadline_s=0.3)
    await executor.run(place(), redelivered=True)
    assert "place" not in [c[0] for c in broker.calls]
    assert [e.code for e in executor.errors()] == ["OUTCOME_UNKNOWN"]
    assert [o.kind for o in executor.outcomes()] == ["reject"]


async def test_after_a_crash_the_journal_on_disk_makes_the_restarted_executor_look_up(
    broker: FakeBroker, journal_path: Path
) -> None:
    broker.place_script = ["hang"]
    first = Executor(journal_path, broker)
    intent = place()
    task = asyncio.ensure_future(first.run(intent))
    while not broker.calls:
        await asyncio.sleep(0.001)
    task.cancel()  # the process dies mid-call: the request reached the broker, no answer came
    await asyncio.gather(task, return_exceptions=True)
    broker._book("f1", intent.client_order_id)  # the broker had carried it out
    first.journal._db.close()  # no clean shutdown of the journal either
    broker.calls.clear()

    restarted = Executor(journal_path, broker)
    await restarted.run(intent, redelivered=False)  # e.g. the fan-out re-sent the batch: fresh offset
    assert [c[0] for c in broker.calls] == ["lookup"]
    assert len(broker.orders(intent.client_order_id)) == 1
    assert [(o.kind, o.duplicate) for o in restarted.outcomes()] == [("ack", True)]


async def test_an_answered_intent_is_reported_again_from_the_journal_without_a_broker_call(
    broker: FakeBroker, journal_path: Path
) -> None:
    first = Executor(journal_path, broker)
    intent = place()
    await first.run(intent)
    first.journal.close()
    broker.calls.clear()
    restarted = Executor(journal_path, broker)
    await restarted.run(intent, redelivered=True)
    assert broker.calls == []
    assert [(o.execution_id, o.duplicate, o.broker_order_id) for o in restarted.outcomes()] == [
        (f"{intent.client_order_id}|ack", True, "B1")
    ]


@pytest.mark.parametrize("step", ["throttled", "unsent"])
async def test_errors_that_prove_nothing_was_sent_are_retried_without_a_lookup(
    broker: FakeBroker, journal_path: Path, step: str
) -> None:
    broker.place_script = [step]
    executor = Executor(journal_path, broker)
    await executor.run(place())
    assert [c[0] for c in broker.calls] == ["place", "place"]
    assert [o.kind for o in executor.outcomes()] == ["ack"]


async def test_an_answer_the_executor_cannot_read_lands_on_order_errors_with_its_raw_text(
    broker: FakeBroker, journal_path: Path
) -> None:
    broker.place_script = ["garbage"]
    executor = Executor(journal_path, broker)
    lanes = AccountLanes(executor.router.execute, executor.router.report_crash)
    lanes.submit(place("s1"))
    lanes.submit(place("s2"))  # the lane goes on
    await lanes.join()
    await executor.router.outbox.drained()
    await lanes.close()
    errors = executor.errors()
    assert [(e.code, e.signal_id) for e in errors] == [("BAD_ANSWER", "s1")]
    assert "Frobnicated" in (errors[0].payload or "")
    assert [(o.signal_id, o.kind) for o in executor.outcomes()] == [("s1", "reject"), ("s2", "ack")]
    # the order may exist: a redelivery must look it up, never place blindly
    assert executor.journal.get(place("s1").client_order_id, signal_id=place("s1").signal_id).state == UNKNOWN  # type: ignore[union-attr]
    executor.journal.close()
    broker.calls.clear()
    restarted = Executor(journal_path, broker)
    await restarted.run(place("s1"))
    assert [c[0] for c in broker.calls] == ["lookup"]


async def test_an_adapter_error_carrying_the_raw_answer_is_reported_with_it_and_left_unknown(
    broker: FakeBroker, journal_path: Path
) -> None:
    broker.place_script = ["unknown-enum"]
    executor = Executor(journal_path, broker)
    intent = place()
    await executor.run(intent)
    assert [(e.code, e.payload) for e in executor.errors()] == [
        ("BAD_ANSWER", '{"orderId": 7, "commandStatus": "Frobnicated"}')
    ]
    assert executor.journal.get(intent.client_order_id, signal_id=intent.signal_id).state == UNKNOWN  # type: ignore[union-attr]


async def test_a_cancel_whose_answer_was_lost_is_not_sent_twice(broker: FakeBroker, journal_path: Path) -> None:
    executor = Executor(journal_path, broker)
    target = place("s1")
    await executor.run(target)
    broker.cancel_script = ["lost"]
    await executor.run(place("s2", action="cancel", target=target.client_order_id))
    assert [c[0] for c in broker.calls] == ["place", "cancel", "lookup"]
    assert [o.kind for o in executor.outcomes()] == ["ack", "cancelled"]


async def test_a_flatten_whose_answer_was_lost_is_found_by_its_own_client_id(
    broker: FakeBroker, journal_path: Path
) -> None:
    executor = Executor(journal_path, broker)
    flatten = place("s3", action="flatten")
    broker.place_script = []
    original = broker.flatten

    async def lost_once(command):  # type: ignore[no-untyped-def]  # wraps the fake's flatten
        broker.flatten = original  # type: ignore[method-assign]  # only the first one is lost
        await original(command)
        raise TimeoutError("no answer")

    broker.flatten = lost_once  # type: ignore[method-assign]  # the fault for this test only
    await executor.run(flatten)
    assert len(broker.orders(flatten.client_order_id)) == 1
    assert [o.kind for o in executor.outcomes()] == ["flattened"]


# -- the paper platform: the kernel's own books count the orders ------------------------------


@pytest.fixture
def paper(journal_path: Path) -> Iterator[Executor]:
    from copytrader.brokers.paper.adapter import PaperAdapter, reset_venues

    reset_venues()
    config = parse_config(
        {
            "sessions": [{"id": "s", "platform": "paper", "options": {"tick_ms": 0, "venue": "exactly-once"}}],
            "accounts": [{"id": "L", "session": "s"}, {"id": "f1", "session": "s", "broker_account": "F1"}],
            "copy_groups": [],
        },
        env={},
    )
    adapter = PaperAdapter(config.sessions["s"])
    executor = Executor(journal_path, adapter)  # type: ignore[arg-type]  # any adapter will do
    executor.router.pool = SessionPool(config, lambda _cfg: adapter)
    yield executor
    reset_venues()


async def test_paper_lost_answers_on_place_and_flatten_leave_one_order_each(paper: Executor) -> None:
    adapter = paper.broker
    await paper.router.pool.adapter_for("f1")
    exchange = adapter.exchange  # type: ignore[attr-defined]  # the paper adapter's kernel
    faults = exchange.account("F1").faults
    entry, flatten = place("p1"), place("p2", action="flatten")
    faults.lose_response_next = 1
    await paper.run(entry)
    faults.lose_response_next = 1
    await paper.run(flatten)
    assert len(exchange.orders_with_client_id("F1", entry.client_order_id)) == 1
    assert len(exchange.orders_with_client_id("F1", flatten.client_order_id)) == 1
    assert exchange.account("F1").positions["ESZ6"].net_quantity == 0
    assert [(o.kind, o.duplicate) for o in paper.outcomes()] == [("ack", False), ("flattened", False)]


async def test_paper_redelivery_to_another_host_is_absorbed_by_the_lookup(paper: Executor, tmp_path: Path) -> None:
    await paper.router.pool.adapter_for("f1")
    exchange = paper.broker.exchange  # type: ignore[attr-defined]  # the paper adapter's kernel
    exchange.account("F1").faults.lose_response_rate = 1.0  # every answer lost, lookups still answer
    intent = place("p3")
    await paper.run(intent)
    exchange.account("F1").faults.lose_response_rate = 0.0
    # the partition moves to an executor on another host: no journal, only the redelivery flag
    other = Executor(tmp_path / "other-host.sqlite", paper.broker)
    other.router.pool = paper.router.pool
    await other.run(intent, redelivered=True)
    assert len(exchange.orders_with_client_id("F1", intent.client_order_id)) == 1
    assert [(o.kind, o.duplicate) for o in paper.outcomes()] == [("ack", False)]
    assert [(o.kind, o.duplicate) for o in other.outcomes()] == [("ack", True)]

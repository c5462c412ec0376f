"""The executor's outcome records: published after the orders, in order, never ahead of the offset."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable
from typing import Any

from waiting import wait_until

from copytrader.agents.execution.agent import Countdown
from copytrader.agents.shared.deferred_outbox import DeferredOutbox
from copytrader.agents.shared.outbox import RESENDABLE, MemoryOutbox
from copytrader.core.records import Execution, OrderError


def execution(n: int) -> Execution:
    return Execution(execution_id=f"e{n}", account_id="f1", platform="paper", kind="ack")


async def test_records_wait_for_the_turn_after_the_lanes_and_keep_their_order() -> None:
    memory = MemoryOutbox()
    deferred = DeferredOutbox(memory)
    published_when_lane_finished: list[int] = []

    async def lane(n: int) -> None:  # a lane queues its ack and goes on at once
        await deferred.execution(execution(n))
        published_when_lane_finished.append(len(memory.sent["execution"]))

    await asyncio.gather(lane(1), lane(2), lane(3))
    assert published_when_lane_finished == [0, 0, 0]  # every lane of the turn ran before any send
    await deferred.drained()
    assert [e.execution_id for e in memory.sent["execution"]] == ["e1", "e2", "e3"]


async def test_a_callback_after_a_record_runs_only_once_the_record_is_published() -> None:
    memory = MemoryOutbox()
    deferred = DeferredOutbox(memory)
    published_when_acked: list[int] = []

    async def ack_offset() -> None:
        published_when_acked.append(len(memory.sent["execution"]))

    await deferred.execution(execution(1))
    deferred.after(ack_offset)
    await deferred.execution(execution(2))
    await deferred.drained()
    # Record 2 rides with record 1 (earlier than its place in the queue: allowed); what
    # matters is that record 1 was out before the offset callback ran.
    assert published_when_acked == [2]


async def test_a_callback_queued_before_any_record_does_not_wait_for_later_ones() -> None:
    memory = MemoryOutbox()
    deferred = DeferredOutbox(memory)
    published_when_acked: list[int] = []

    async def ack_offset() -> None:
        published_when_acked.append(len(memory.sent["execution"]))

    deferred.after(ack_offset)
    await deferred.execution(execution(1))
    await deferred.drained()
    assert published_when_acked == [0]
    assert len(memory.sent["execution"]) == 1


async def test_executions_queued_before_their_turn_leave_in_one_call_in_order() -> None:
    class CountingOutbox(MemoryOutbox):
        calls: list[int]

        async def executions(self, executions: list[Execution]) -> None:
            self.calls.append(len(executions))
            await super().executions(executions)

    memory = CountingOutbox()
    memory.calls = []
    deferred = DeferredOutbox(memory)
    for n in range(5):
        await deferred.execution(execution(n))
    await deferred.error(OrderError(error_id="x", stage="execute", reason="r", account_id="f1"))
    await deferred.drained()
    await deferred.execution(execution(5))  # after the first step ran: a step of its own
    await deferred.drained()
    assert memory.calls == [5, 1]
    assert [e.execution_id for e in memory.sent["execution"]] == [f"e{n}" for n in range(6)]


async def test_errors_queued_before_their_turn_leave_in_one_call_in_order() -> None:
    """A netted run reports many copies at once: one ``errors`` call (one record per
    partition), not one send per copy."""

    class CountingOutbox(MemoryOutbox):
        calls: list[int]

        async def errors(self, errors: list[OrderError]) -> None:
            self.calls.append(len(errors))
            await super().errors(errors)

    memory = CountingOutbox()
    memory.calls = []
    deferred = DeferredOutbox(memory)
    for n in range(5):
        await deferred.error(OrderError(error_id=f"x{n}", stage="execute", reason="r", account_id=f"f{n}"))
    await deferred.execution(execution(1))
    await deferred.drained()
    deferred.queue_error(OrderError(error_id="x5", stage="execute", reason="r", account_id="f1"))
    await deferred.drained()
    assert memory.calls == [5, 1]
    assert [e.error_id for e in memory.sent["error"] if isinstance(e, OrderError)] == [f"x{n}" for n in range(6)]


async def test_work_is_sliced_so_other_tasks_run_between_slices() -> None:
    memory = MemoryOutbox()
    deferred = DeferredOutbox(memory, slice_s=0.001)
    done: list[int] = []
    ticks: list[int] = []

    def slow_step(n: int) -> Callable[[], Awaitable[None]]:
        async def step() -> None:
            done.append(n)
            loop = asyncio.get_running_loop()
            start = loop.time()
            while loop.time() - start < 0.002:  # a 2 ms send: longer than one slice
                pass

        return step

    async def other_task() -> None:
        for _ in range(20):
            ticks.append(len(done))
            await asyncio.sleep(0)  # one loop turn per tick: the interleaving is what is measured

    for n in range(5):
        deferred.after(slow_step(n))
    await asyncio.gather(other_task(), deferred.drained())
    assert done == [0, 1, 2, 3, 4]
    assert len(set(ticks[:6])) >= 4  # the other task saw the steps run a few at a time


async def test_a_send_that_raises_is_logged_and_made_again_and_the_rest_still_go_out(caplog) -> None:  # type: ignore[no-untyped-def]  # pytest fixture
    class FlakyOutbox(MemoryOutbox):
        failures = 1

        async def error(self, error: OrderError) -> None:
            if self.failures:
                self.failures -= 1
                raise RuntimeError("producer closed")
            await super().error(error)

    memory = FlakyOutbox()
    deferred = DeferredOutbox(memory, retry_s=0.01)
    acked: list[int] = []

    async def ack_offset() -> None:
        acked.append(len(memory.sent["error"]))

    await deferred.error(OrderError(error_id="x", stage="execute", reason="r", account_id="f1"))
    deferred.after(ack_offset)
    await deferred.execution(execution(1))
    await deferred.drained()
    assert [e.execution_id for e in memory.sent["execution"]] == ["e1"]
    assert acked == []  # the error is not out: the offset behind it waits
    await deferred.delivered()
    assert [e.error_id for e in memory.sent["error"] if isinstance(e, OrderError)] == ["x"]
    assert acked == [1]
    assert "publishing an executor record failed" in caplog.text
    await deferred.close()


class KafkaLike(MemoryOutbox):
    """Records each execution as Kafka would see it: one record per execution, with its
    delivery future and how to send it again (what ``TopicOutbox`` hands a collector)."""

    def __init__(self) -> None:
        super().__init__()
        self.records: list[tuple[str, asyncio.Future[Any]]] = []

    async def executions(self, executions: list[Execution]) -> None:
        for each in executions:
            await self._send(each)

    async def _send(self, each: Execution) -> None:
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.records.append((each.execution_id, future))
        resendable = RESENDABLE.get()
        assert resendable is not None  # the deferred outbox always collects
        resendable.append((future, functools.partial(self._send, each)))

    def answer(self, execution_id: str, error: Exception | None = None) -> None:
        """Kafka's answer to the latest send of that record."""
        future = [f for i, f in self.records if i == execution_id][-1]
        if error is None:
            future.set_result(None)
        else:
            future.set_exception(error)


async def test_a_callback_waits_for_kafka_to_acknowledge_the_records_before_it() -> None:
    kafka = KafkaLike()
    deferred = DeferredOutbox(kafka)
    acked: list[str] = []

    async def ack_offset() -> None:
        acked.append("offset")

    await deferred.execution(execution(1))
    deferred.after(ack_offset)
    await deferred.drained()
    assert [i for i, _ in kafka.records] == ["e1"] and acked == []  # handed over is not enough
    kafka.answer("e1")
    await deferred.delivered()
    assert acked == ["offset"]


async def test_a_record_kafka_did_not_take_is_sent_again_alone_and_holds_the_callbacks_behind_it() -> None:
    kafka = KafkaLike()
    deferred = DeferredOutbox(kafka, retry_s=0.01)
    acked: list[int] = []

    def ack_offset(n: int) -> Callable[[], Awaitable[None]]:
        async def ack() -> None:
            acked.append(n)

        return ack

    await deferred.execution(execution(1))
    await deferred.execution(execution(2))
    deferred.after(ack_offset(1))
    await deferred.drained()
    await deferred.execution(execution(3))  # a later step, acknowledged at once
    deferred.after(ack_offset(3))
    await deferred.drained()
    kafka.answer("e1")
    kafka.answer("e2", ConnectionError("batch expired"))
    kafka.answer("e3")
    await wait_until(lambda: len(kafka.records) == 4, timeout_s=2, what="e2 sent again")
    assert [i for i, _ in kafka.records] == ["e1", "e2", "e3", "e2"]  # e1 and e3 are not sent twice
    assert acked == []  # e2 is out again: neither offset may be committed
    kafka.answer("e2")
    await deferred.delivered()
    assert acked == [1, 3]
    await deferred.close()


async def test_a_callback_parked_behind_one_step_does_not_wait_for_later_ones() -> None:
    """Under steady traffic some records are always out: a callback waits for what was queued
    before it, not for the producer to fall idle."""
    kafka = KafkaLike()
    deferred = DeferredOutbox(kafka)
    acked: list[int] = []

    async def ack_offset() -> None:
        acked.append(1)

    await deferred.execution(execution(1))
    deferred.after(ack_offset)
    await deferred.drained()
    await deferred.execution(execution(2))
    await deferred.drained()
    kafka.answer("e1")
    await wait_until(lambda: acked, timeout_s=2, what="the callback behind e1")
    assert not kafka.records[1][1].done()  # e2 still out
    kafka.answer("e2")
    await deferred.close()


async def test_a_batch_is_acknowledged_once_its_last_intent_finished_and_kafka_took_every_outcome() -> None:
    """The executor's Countdown: intents finish in any order, each after queueing its outcome;
    the batch's offset waits for the last of them and for Kafka's answer to every record."""
    kafka = KafkaLike()
    deferred = DeferredOutbox(kafka, retry_s=0.01)
    acked: list[str] = []

    async def ack_offset() -> None:
        acked.append("batch")

    countdown = Countdown(2, ack_offset, deferred)
    await deferred.execution(execution(1))
    await countdown.one_done()
    await deferred.execution(execution(2))
    await deferred.drained()
    assert acked == []  # one intent still running
    await countdown.one_done()
    await deferred.drained()
    kafka.answer("e1")
    kafka.answer("e2", ConnectionError("batch expired"))
    await wait_until(lambda: len(kafka.records) == 3, timeout_s=2, what="e2 sent again")
    assert acked == []  # e2 is not in Kafka yet
    kafka.answer("e2")
    await deferred.delivered()
    assert acked == ["batch"]
    await deferred.close()

"""The executor's outcome records: published after the orders, in order, never ahead of the offset."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from copytrader.agents.shared.deferred_outbox import DeferredOutbox
from copytrader.agents.shared.outbox import MemoryOutbox
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


async def test_a_failed_send_is_logged_and_the_rest_still_go_out(caplog) -> None:  # type: ignore[no-untyped-def]  # pytest fixture
    class FlakyOutbox(MemoryOutbox):
        async def error(self, error: OrderError) -> None:
            raise RuntimeError("producer closed")

    memory = FlakyOutbox()
    deferred = DeferredOutbox(memory)
    await deferred.error(OrderError(error_id="x", stage="execute", reason="r", account_id="f1"))
    await deferred.execution(execution(1))
    await deferred.close()
    assert [e.execution_id for e in memory.sent["execution"]] == ["e1"]
    assert "publishing an executor record failed" in caplog.text

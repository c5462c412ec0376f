"""``common.tasks.stop_task``: a child is stopped, the caller's own cancellation is never lost."""

from __future__ import annotations

import asyncio

import pytest

from copytrader.common.tasks import stop_task


async def _forever() -> None:
    await asyncio.Event().wait()


async def test_the_child_is_cancelled_and_awaited() -> None:
    child = asyncio.ensure_future(_forever())
    await asyncio.sleep(0)
    await stop_task(child)
    assert child.cancelled()
    await stop_task(None)  # nothing to stop


async def _slow_to_stop(started: asyncio.Event) -> None:
    started.set()
    try:
        await _forever()
    except asyncio.CancelledError:
        await asyncio.sleep(0.2)  # takes its time to end
        raise


async def test_a_reconnect_loop_that_stops_its_helper_in_finally_still_stops() -> None:
    """The Tradovate socket's shape: each session runs a helper (heartbeats) and stops it in
    ``finally``; a failed session is retried. Cancelled while a failing session's ``finally``
    waited for its helper, the old ``suppress(CancelledError): await helper`` swallowed the
    cancellation, the session's error went on, and the loop started another session."""
    sessions = 0
    helper_started = asyncio.Event()

    async def loop_forever() -> None:
        nonlocal sessions
        while True:
            sessions += 1
            helper = asyncio.ensure_future(_slow_to_stop(helper_started))
            try:
                await helper_started.wait()
                raise ConnectionError("the session failed")
            except ConnectionError:
                pass  # retried
            finally:
                await stop_task(helper)
            await asyncio.sleep(0.05)

    task = asyncio.ensure_future(loop_forever())
    await helper_started.wait()
    await asyncio.sleep(0.05)  # the first session's finally is waiting for its helper
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, 2.0)
    assert sessions == 1


async def test_the_caller_cancelled_while_it_waits_is_cancelled() -> None:
    started = asyncio.Event()
    child = asyncio.ensure_future(_slow_to_stop(started))
    await started.wait()
    caller = asyncio.ensure_future(stop_task(child))
    await asyncio.sleep(0.05)
    caller.cancel()
    with pytest.raises(asyncio.CancelledError):
        await caller
    await asyncio.wait((child,))
    assert child.cancelled()


async def test_the_child_s_own_error_is_raised_unless_absorbed() -> None:
    async def failing(error: BaseException) -> None:
        try:
            await _forever()
        except asyncio.CancelledError:
            raise error from None

    child = asyncio.ensure_future(failing(ConnectionError("reset")))
    await asyncio.sleep(0)
    await stop_task(child, ConnectionError)  # absorbed
    child = asyncio.ensure_future(failing(ValueError("bug")))
    await asyncio.sleep(0)
    with pytest.raises(ValueError, match="bug"):
        await stop_task(child, ConnectionError)

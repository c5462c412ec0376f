"""Stopping a child task without losing the caller's own cancellation.

The common idiom ``task.cancel(); with suppress(CancelledError): await task`` swallows a
CancelledError meant for the *caller* when the caller is cancelled while it waits, or was
cancelled just before (Python delivers a pending cancellation at the next ``await``, and that
``await`` is the suppressed one). Seen on the Tradovate socket: its session's ``finally``
stopped the heartbeat task that way, swallowed the adapter's disconnect, and the socket task
went on reconnecting against a user locked out for an hour; ``disconnect()`` never returned.
:func:`stop_task` absorbs only the child's ending.
"""

from __future__ import annotations

import asyncio
from typing import Any


async def stop_task(task: asyncio.Task[Any] | None, *absorb: type[BaseException]) -> None:
    """Cancel ``task`` and wait until it has ended. Its cancellation, and its exceptions of the
    ``absorb`` types, are absorbed; any other exception of the task is raised here. If the
    calling task is cancelled meanwhile (or was before), that CancelledError propagates: the
    child has been told to stop either way."""
    if task is None:
        return
    task.cancel()
    await asyncio.wait((task,))  # raises the caller's own cancellation, never the child's
    if task.cancelled():
        return
    error = task.exception()
    if error is not None and not isinstance(error, absorb):
        raise error

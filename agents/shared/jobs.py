"""Faust's ``@app.task`` and ``@app.timer`` with types, for the stages, the web role and the wiring.

Why: ``App.task`` returns a union covering its three call forms and ``App.timer`` is
``@no_type_check``, so under ``mypy --strict`` each use turns the function it decorates into an
untyped one. These register exactly what the decorators register (they call them) and give the
result the type it has: a coroutine function without arguments.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import cast

import faust

Job = Callable[[], Awaitable[None]]


def task(app: faust.App) -> Callable[[Job], Job]:
    """``@task(app)``: started once when the worker is ready, as ``@app.task``."""

    def register(fun: Job) -> Job:
        # Given a function, App.task returns the wrapper it registered (one arm of its union).
        return cast(Job, app.task(fun))

    return register


def timer(app: faust.App, interval_s: float) -> Callable[[Job], Job]:
    """``@timer(app, seconds)``: run every ``interval_s`` until the worker stops, as ``@app.timer``."""

    def register(fun: Job) -> Job:
        registered: Job = app.timer(interval_s)(fun)  # App.timer is @no_type_check
        return registered

    return register

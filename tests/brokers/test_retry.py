"""retrying_call: retries only retriable errors, honours Retry-After, bounded by a deadline;
exactly_once: looks up before any resend whose first try may have landed."""

from __future__ import annotations

import time

import pytest

from copytrader.brokers.deadline import copy_deadline
from copytrader.brokers.errors import (
    BrokerUnavailable,
    CircuitOpen,
    OrderRejected,
    OutcomeUnknown,
    RateLimited,
    TokenExpired,
    UnsupportedOperation,
)
from copytrader.brokers.retry import exactly_once, is_retriable, outcome_unknown, retrying_call


class Script:
    """Raises the scripted errors in turn, then returns ``"ok"``."""

    def __init__(self, *errors: BaseException) -> None:
        self.errors = list(errors)
        self.calls = 0

    async def __call__(self) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return "ok"


class Sleeps:
    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


async def test_retries_transient_then_succeeds() -> None:
    fn, sleeps = Script(BrokerUnavailable("down"), TokenExpired("expired")), Sleeps()
    assert await retrying_call(fn, attempts=3, sleep=sleeps) == "ok"
    assert fn.calls == 3
    assert len(sleeps.waits) == 2 and all(0 < w <= 1.1 for w in sleeps.waits)


async def test_gives_up_after_attempts_with_original_error() -> None:
    fn = Script(*(BrokerUnavailable(f"down {i}") for i in range(5)))
    with pytest.raises(BrokerUnavailable, match="down 2"):
        await retrying_call(fn, attempts=3, sleep=Sleeps())
    assert fn.calls == 3


@pytest.mark.parametrize("error", [OrderRejected("no margin"), CircuitOpen("open"), ValueError("bug")])
async def test_permanent_errors_are_not_retried(error: Exception) -> None:
    fn = Script(error)
    with pytest.raises(type(error)):
        await retrying_call(fn, sleep=Sleeps())
    assert fn.calls == 1


async def test_rate_limited_waits_retry_after() -> None:
    fn, sleeps = Script(RateLimited("429", retry_after=0.75)), Sleeps()
    assert await retrying_call(fn, sleep=sleeps) == "ok"
    assert sleeps.waits == [0.75]


async def test_wait_beyond_deadline_is_not_started() -> None:
    fn, sleeps = Script(RateLimited("penalty", retry_after=30.0)), Sleeps()
    with pytest.raises(RateLimited):
        await retrying_call(fn, deadline_s=2.0, sleep=sleeps)
    assert fn.calls == 1 and sleeps.waits == []


async def test_real_sleep_default_path() -> None:
    fn = Script(RateLimited("429", retry_after=0.001))
    assert await retrying_call(fn) == "ok"


async def test_is_retriable_and_validation() -> None:
    assert is_retriable(TimeoutError())
    assert is_retriable(ConnectionResetError())
    assert not is_retriable(OrderRejected("x"))
    with pytest.raises(ValueError):
        await retrying_call(Script(), attempts=0)


# -- exactly_once: look up before any resend whose first try may have landed ---------------------


@pytest.mark.parametrize(
    ("error", "unknown"),
    [
        (BrokerUnavailable("reset after send"), True),
        (BrokerUnavailable("refused", sent=False), False),
        (TimeoutError(), True),
        (ConnectionResetError(), True),
        (RateLimited("slow down"), False),
        (TokenExpired("expired"), False),
        (OrderRejected("no"), False),
    ],
)
def test_which_failures_leave_the_outcome_open(error: BaseException, unknown: bool) -> None:
    assert outcome_unknown(error) is unknown


async def test_a_request_with_no_lookup_is_repeated_only_because_it_is_idempotent() -> None:
    send = Script(BrokerUnavailable("reset after send"))
    assert await exactly_once(send, None, sleep=Sleeps()) == "ok"
    assert send.calls == 2


async def test_the_copy_deadline_bounds_lookups_that_keep_failing() -> None:
    send = Script(BrokerUnavailable("reset after send"))
    lookups = 0

    async def lookup() -> str | None:
        nonlocal lookups
        lookups += 1
        raise BrokerUnavailable("lookup timed out")

    started = time.monotonic()
    with copy_deadline(0.3), pytest.raises(OutcomeUnknown) as caught:
        await exactly_once(send, lookup, attempts=1000, deadline_s=60)
    assert time.monotonic() - started < 0.45
    assert send.calls == 1 and lookups >= 2
    assert "lookup timed out" in caught.value.message


async def test_a_platform_that_cannot_be_asked_makes_an_uncertain_request_unknown_at_once() -> None:
    send = Script()

    async def lookup() -> str | None:
        raise UnsupportedOperation("no lookup")

    with pytest.raises(OutcomeUnknown):
        await exactly_once(send, lookup, uncertain=True, sleep=Sleeps())
    assert send.calls == 0

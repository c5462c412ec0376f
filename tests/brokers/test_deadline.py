"""The one deadline per copy: nested layers share it, and nothing extends it."""

from __future__ import annotations

import asyncio
import time

import pytest

from copytrader.brokers.deadline import copy_deadline, expired, remaining


def test_outside_a_copy_a_layer_keeps_its_own_timeout() -> None:
    assert remaining(3.0) == 3.0 and not expired()


def test_inside_a_copy_the_smaller_budget_wins() -> None:
    with copy_deadline(0.5):
        assert 0.4 < remaining(10.0) <= 0.5
        assert remaining(0.1) == 0.1


def test_a_nested_deadline_never_extends_the_outer_one() -> None:
    with copy_deadline(0.2):
        with copy_deadline(60.0):
            assert remaining(100.0) <= 0.2
        time.sleep(0.21)
        assert expired() and remaining(5.0) == 0.0


async def test_each_task_has_its_own_deadline() -> None:
    async def lane(seconds: float) -> float:
        with copy_deadline(seconds):
            await asyncio.sleep(0)
            return remaining(100.0)

    short, long = await asyncio.gather(lane(0.1), lane(50.0))
    assert short <= 0.1 < 49.0 < long


def test_a_deadline_must_be_positive() -> None:
    with pytest.raises(ValueError):
        with copy_deadline(0):
            pass

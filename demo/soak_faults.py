"""A trading week's faults, compressed: what the soak flips on the simulators while it runs.

Every ``every_s`` seconds one fault hits one follower account, in a fixed rotation so each kind
happens many times in ten minutes: a dropped connection, an expired token, a rate-limit
penalty, a reject, partial fills for a while, 2 s acks for a while, and a lost answer. Once per
run one simulator goes down entirely for ``outage_s`` (60 s by default) and comes back on the
same port, as a broker's gateway does after a restart. Every fault is counted, so the report
says what the copier survived.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..brokers.simkernel.faults import FaultSwitches

#: (kind, seconds it stays on; 0 = fires once). The order is the rotation.
ROTATION: tuple[tuple[str, float], ...] = (
    ("drop_connection", 0.0),
    ("reject_next", 0.0),
    ("slow_acks", 10.0),
    ("expire_token", 0.0),
    ("lose_response", 0.0),
    ("partial_fills", 15.0),
    ("rate_limit", 0.0),
)
SLOW_ACK_MS = 2000.0


@dataclass(slots=True)
class FaultTarget:
    """One follower's switches on its simulator, and how to make its transport act at once."""

    switches: FaultSwitches
    notify: Callable[[], None]


@dataclass(slots=True)
class FaultPlan:
    every_s: float = 5.0
    outage_s: float = 60.0
    outage_at_fraction: float = 0.3  # of the run's publishing time
    seed: int = 17


@dataclass(slots=True)
class FaultLog:
    counts: Counter[str] = field(default_factory=Counter)
    outages: list[dict[str, Any]] = field(default_factory=list)


def flip(kind: str, target: FaultTarget) -> None:
    """Turn ``kind`` on for ``target`` (every kind exists on both soak platforms)."""
    faults = target.switches
    if kind == "drop_connection":
        faults.drop_connection = True
    elif kind == "reject_next":
        faults.reject_next = "soak: rejected by the broker (risk check)"
    elif kind == "slow_acks":
        faults.ack_delay_ms = SLOW_ACK_MS
    elif kind == "expire_token":
        faults.expire_token = True
    elif kind == "lose_response":
        faults.lose_response_next = 1
    elif kind == "partial_fills":
        faults.partial_fill_lot = 1
    elif kind == "rate_limit":
        faults.rate_limit_next = 2
    else:
        raise ValueError(f"unknown fault {kind!r}")
    target.notify()


def unflip(kind: str, target: FaultTarget) -> None:
    """End a fault that stays on for a while."""
    if kind == "slow_acks":
        target.switches.ack_delay_ms = 0.0
    elif kind == "partial_fills":
        target.switches.partial_fill_lot = None


async def run_faults(
    targets: list[FaultTarget],
    plan: FaultPlan,
    publishing: asyncio.Future[None],
    outage: Callable[[float], Any] | None,
    publish_s: float,
    log: FaultLog,
) -> None:
    """Flip faults in rotation until the leader is done; one outage at ``outage_at_fraction``."""
    rng = random.Random(plan.seed)
    lingering: set[asyncio.Task[None]] = set()
    outage_task: asyncio.Task[Any] | None = None
    loop = asyncio.get_running_loop()
    started = loop.time()

    async def linger(kind: str, target: FaultTarget, seconds: float) -> None:
        await asyncio.sleep(seconds)
        unflip(kind, target)

    step = 0
    while not publishing.done() and targets:
        kind, stays = ROTATION[step % len(ROTATION)]
        step += 1
        target = rng.choice(targets)
        flip(kind, target)
        log.counts[kind] += 1
        if stays:
            task = asyncio.ensure_future(linger(kind, target, stays))
            lingering.add(task)
            task.add_done_callback(lingering.discard)
        if outage is not None and outage_task is None and loop.time() - started >= plan.outage_at_fraction * publish_s:
            outage_task = asyncio.ensure_future(outage(plan.outage_s))
        try:
            await asyncio.wait_for(asyncio.shield(publishing), plan.every_s)
        except TimeoutError:
            pass
    for task in list(lingering):
        task.cancel()
    for target in targets:  # the settle phase runs without faults
        for kind, _ in ROTATION:
            unflip(kind, target)
    if outage_task is not None:
        log.outages.append(await outage_task)


__all__ = ["ROTATION", "FaultLog", "FaultPlan", "FaultTarget", "flip", "run_faults", "unflip"]

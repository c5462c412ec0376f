"""Stale copies: a copy that could not reach the broker in time is netted, not placed late.

When a login's request budget runs out, an account's lane fills up and its copies reach the
broker seconds or minutes after the leader's trade: placed as they were, each one would trade
at a price the leader never saw, one after another. Instead, when a copy reaches its lane's
head older than its copy group's limit (``stale_copy_s``, age from the leader event's
``detected`` stamp), the lane takes every queued stale copy of the same symbol, reports each on
``order.errors`` (``COPY_STALE_NETTED``) and places ONE market order that brings the follower
from its broker-reported position to the newest copy's target: the leader's current position,
scaled by the rule (fan-out stamps it, ``agents/fanout/planner.py``).

Why the broker's position, not a sum of the skipped quantities: an earlier attempt of the same
copies (a crash, a redelivery) may already have traded, and the position says so; a sum would
trade it again. The netting order's client id is derived from the first and last copy it
replaces, and it runs through the router like any intent (attempt journal, lookup), so the
same run redelivered never places twice.

Two guards, because fan-out's target is only as good as what fan-out saw (it starts from a flat
leader after a restart): the target must agree, within one contract of rounding per copy, with
where the copies themselves would have taken the follower; if it does not, the copies' own sum
is placed instead (and the report says so). When an earlier attempt may have run, that sum
would count it twice: the target is used if the copies could have reached it, else nothing is
placed. A position that cannot be read places nothing (``COPY_STALE_UNREAD``):
never a guess. Drift beyond that is reconciliation's to report (and, if enabled, correct).

Only market copies and flattens of one symbol carry a target; working-order copies (limit and
stop placements, modifies, cancels) go as they were: their price is the leader's own, and
reconciliation expects a follower order for every working leader order.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ...brokers.deadline import copy_deadline
from ...brokers.ratebudget import Priority, urgent
from ...core import ids
from ...core.records import OrderIntent, RecordError

if TYPE_CHECKING:
    from .router import OrderRouter, Pending, Queued

log = logging.getLogger(__name__)

#: Codes on ``order.errors`` for each skipped copy.
COPY_STALE_NETTED = "COPY_STALE_NETTED"  # not placed; the netting order covers it
COPY_STALE_UNREAD = "COPY_STALE_UNREAD"  # not placed; the position could not be read, nothing placed
COPY_STALE_UNNETTED = "COPY_STALE_UNNETTED"  # not placed; no safe netting order (see the reason)
STALE_CODES = (COPY_STALE_NETTED, COPY_STALE_UNREAD, COPY_STALE_UNNETTED)
#: Signal ids of netting orders start with this (the order log shows where they came from).
NET_SIGNAL_PREFIX = "stale:"
#: Stamps a copy's age is measured from, first found wins.
AGE_STAMPS = ("detected", "published", "fanned_out")
#: An age beyond this is not a clock reading (a hand-made record, a tool's ``detected: 1.0``, a
#: broken clock): such a copy is placed as it was, as before this rule, rather than netted.
MAX_TRUSTED_AGE_S = 86_400.0


def age_of(intent: OrderIntent, now: float) -> float | None:
    """Seconds since the leader event this copy stands for was seen (None: no usable stamp)."""
    for name in AGE_STAMPS:
        at = intent.stamps.get(name)
        if at is not None:
            age = now - at
            return age if age <= MAX_TRUSTED_AGE_S else None
    return None


def nettable(intent: OrderIntent) -> bool:
    """A market copy or a flatten of one symbol whose target fan-out knew."""
    if intent.stale_after_s is None or intent.target_position is None or not intent.symbol:
        return False
    return intent.action == "flatten" or (intent.action == "place" and intent.order_type == "market")


def is_stale(intent: OrderIntent, now: float) -> bool:
    if not nettable(intent):
        return False
    age = age_of(intent, now)
    return age is not None and intent.stale_after_s is not None and age > intent.stale_after_s


def take_run(head: Queued, waiting: Sequence[Queued], now: float) -> tuple[list[Queued], list[Queued]]:
    """The head plus every waiting stale copy of its symbol (in queue order), and the rest."""
    symbol = head[0].symbol
    run: list[Queued] = [head]
    rest: list[Queued] = []
    for item in waiting:
        (run if item[0].symbol == symbol and is_stale(item[0], now) else rest).append(item)
    return run, rest


def walk(position: int, intents: Sequence[OrderIntent]) -> int:
    """Where the copies themselves would have taken a follower holding ``position``."""
    for intent in intents:
        if intent.action == "flatten":
            position = 0
        else:
            position += intent.quantity if intent.side == "buy" else -intent.quantity
    return position


@dataclass(frozen=True, slots=True)
class NetPlan:
    """What one stale run comes to: the position to reach (None: place nothing) and why."""

    held: int
    goal: int | None
    how: str

    @property
    def quantity(self) -> int:
        return 0 if self.goal is None else self.goal - self.held


def plan(held: int, intents: Sequence[OrderIntent], uncertain: bool) -> NetPlan:
    """Pure: the netting decision for a run, given the follower's broker position ``held``.

    ``uncertain``: an earlier attempt of these copies (or of their netting order) may have
    traded already, so where the copies would take ``held`` counts them twice; only the target
    is safe then, and only if the copies could have reached it at all.
    """
    target = intents[-1].target_position
    assert target is not None  # nettable() holds for every copy of a run
    walked = walk(held, intents)
    rounding = len(intents)  # one contract of rounding per copy
    if abs(target - walked) <= rounding:
        return NetPlan(held, target, f"to the leader's position scaled ({target})")
    if not uncertain:
        return NetPlan(
            held, walked, f"by the copies' own quantities ({walked}; fan-out's target {target} is out of their reach)"
        )
    reach = rounding + sum(abs(held) if i.action == "flatten" else i.quantity for i in intents)
    if abs(target - held) <= reach:
        return NetPlan(held, target, f"to the leader's position scaled ({target}; earlier attempts counted)")
    return NetPlan(
        held,
        None,
        f"fan-out's target ({target}) is out of these copies' reach from {held} and an earlier attempt "
        "may have netted them already: nothing placed, reconciliation reports the drift",
    )


Report = Callable[[OrderIntent, str, str], Awaitable[None]]


class StaleCopies:
    """The lane's side of stale copies: decides, reads the position, places one order."""

    def __init__(self, router: OrderRouter, clock: Callable[[], float] = time.time) -> None:
        self.router = router
        self.clock = clock
        self.netted = 0  # runs settled (tests, health)

    def is_stale(self, intent: OrderIntent) -> bool:
        return is_stale(intent, self.clock())

    def take_from_queue(self, queue: asyncio.Queue[Queued], head: Queued) -> list[Queued]:
        """The head and every queued stale copy of its symbol leave the lane's queue together;
        the rest stays, in order (each ``get`` is matched by a ``task_done``, as ``join`` needs)."""
        waiting: list[Queued] = []
        while not queue.empty():
            waiting.append(queue.get_nowait())
            queue.task_done()
        run, rest = take_run(head, waiting, self.clock())
        for item in rest:
            queue.put_nowait(item)
        return run

    async def settle(self, run: Sequence[Queued]) -> Pending:
        """Report every copy of ``run`` and place at most one order; returns what the offsets
        must still wait for (the netting order's late lookup), like ``OrderRouter.execute``."""
        intents = [item[0] for item in run]
        head, newest = intents[0], intents[-1]
        router = self.router
        journal = router.journal
        uncertain = any(item[2] for item in run) or (
            journal is not None and any(journal.get(i.client_order_id) is not None for i in intents)
        )
        now = self.clock()
        ages = ", ".join(f"{age_of(i, now) or 0:.1f} s" for i in intents)  # each was stale: has an age
        limit = f"{head.stale_after_s:g} s"
        key = ids.client_order_id(
            f"{NET_SIGNAL_PREFIX}{head.client_order_id}:{newest.client_order_id}", head.account_id
        )
        try:
            held = await self._position(head)
        except Exception as exc:  # noqa: BLE001 - any failure to read is "cannot tell", never a guess
            why = getattr(exc, "message", None) or str(exc) or type(exc).__name__
            reason = f"copy older than {limit} ({ages}); position unreadable ({why}): nothing placed"
            for intent in intents:
                await router.skip_stale(intent, COPY_STALE_UNREAD, reason)
            return None
        decision = plan(held, intents, uncertain)
        self.netted += 1
        order: OrderIntent | None = None
        if decision.goal is None:
            code, outcome = COPY_STALE_UNNETTED, decision.how
        elif decision.quantity == 0:
            code, outcome = COPY_STALE_NETTED, f"follower already holds {held}: no order needed"
        else:
            try:
                order = net_order(key, newest, decision)
            except RecordError as exc:  # e.g. more contracts than one order may carry
                code, outcome = COPY_STALE_UNNETTED, f"no netting order {held} → {decision.goal}: {exc}"
            else:
                code, outcome = COPY_STALE_NETTED, f"netted into {key}: {held} → {decision.goal} {decision.how}"
        reason = f"{len(intents)} copies older than {limit} ({ages}) not placed; {outcome}"
        log.warning("lane %s %s: %s", head.account_id, head.symbol, reason)
        for intent in intents:
            await router.skip_stale(intent, code, reason)
        if order is None:
            return None
        return await router.execute(order, redelivered=uncertain)

    async def _position(self, intent: OrderIntent) -> int:
        """The follower's net position in the copy's symbol, as its broker reports it now."""
        router = self.router
        with copy_deadline(router.deadline_s), urgent(Priority.EXIT):
            adapter = await router.pool.adapter_for(intent.account_id)
            snapshot = await asyncio.wait_for(adapter.snapshot(intent.account_id), router.deadline_s)
        return sum(p.net_quantity for p in snapshot.positions if p.symbol == intent.symbol)


def net_order(key: str, newest: OrderIntent, decision: NetPlan) -> OrderIntent:
    """The one market order of a run: no ``stale_after_s``, so it is never netted itself."""
    assert decision.goal is not None
    quantity = decision.quantity
    return OrderIntent(
        client_order_id=key,
        signal_id=f"{NET_SIGNAL_PREFIX}{newest.signal_id}",
        account_id=newest.account_id,
        platform=newest.platform,
        leader_account=newest.leader_account,
        action="place",
        symbol=newest.symbol,
        side="buy" if quantity > 0 else "sell",
        quantity=abs(quantity),
        leader_symbol=newest.leader_symbol,
        leader_quantity=newest.leader_quantity,
        stamps=dict(newest.stamps),
        target_position=decision.goal,
        reduces_position=abs(decision.goal) < abs(decision.held) or (decision.goal * decision.held < 0),
    )

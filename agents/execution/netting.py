"""Stale copies: a copy that could not reach the broker in time is netted, not placed late.

When a login's request budget runs out, an account's lane fills up and its copies reach the
broker seconds or minutes after the leader's trade: placed as they were, each one would trade
at a price the leader never saw, one after another. Instead, when a market copy reaches its
lane's head older than its copy group's limit (``stale_copy_s``, age from the leader event's
``detected`` stamp), the lane takes every queued stale market copy of the same symbol, reports
each on ``order.errors`` (``COPY_STALE_NETTED``) and places ONE market order for their net
quantity: the follower ends where the copies would have taken it, with one trade instead of
many, at the current price. A follower in sync before the run ends at the leader's current
position, scaled.

Why the copies' own net and not "the leader's position, scaled, minus the follower's": fan-out
learns the leader's position from the signals it sees and loses it when it restarts (a chaos
run with SIGKILLs netted every follower to a wrong target that way), and reading the follower's
position costs requests from the very budget that is short (three on ProjectX). Drift from
before the run stays reconciliation's to report and, with ``auto_correct``, to correct.

Exactly once: every copy of a run that an earlier attempt may have handled (the attempt
journal has it, or the consumer says a previous owner may have) is settled first: journaled as
answered, its outcome is reported again; journaled as netted into an order that exists, it
stays covered by that order; otherwise it is looked up at the broker by its own client id and,
found, reported as placed. Only the rest is netted. The netting order's client id is derived
from the first copy it covers and it runs through the router like any intent (journal,
lookup), so a redelivered run never places it twice. What no lookup can settle is
reported (``COPY_STALE_UNKNOWN``) and left out: never a guess.

A flatten is never netted (it resets the position whatever the copies before it did, and it is
an exit that goes first anyway): a run stops at a queued flatten of its symbol. Working-order
copies (limit and stop placements, modifies, cancels) go as they were: their price is the
leader's own, and reconciliation expects a follower order for every working leader order.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from ...brokers.deadline import copy_deadline
from ...brokers.ratebudget import Priority, urgent
from ...core import ids
from ...core.records import OrderIntent, RecordError
from .attempt_journal import DONE, Attempt

if TYPE_CHECKING:
    from .router import OrderRouter, Pending, Queued

log = logging.getLogger(__name__)

#: Codes on ``order.errors`` for each skipped copy.
COPY_STALE_NETTED = "COPY_STALE_NETTED"  # not placed; the netting order covers it
COPY_STALE_UNKNOWN = "COPY_STALE_UNKNOWN"  # not placed now; whether an earlier attempt was, nobody can tell
COPY_STALE_UNNETTED = "COPY_STALE_UNNETTED"  # not placed; the net cannot be one order (see the reason)
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


def ages_of(intents: Sequence[OrderIntent], now: float) -> str:
    """The ages of a run's copies, as a range: one reason string per run whatever its length
    (each copy's reason and journal row carry it)."""
    ages = [age_of(i, now) or 0.0 for i in intents]  # each was stale: each has an age
    low, high = min(ages), max(ages)
    return f"{low:.1f} s" if len(ages) == 1 else f"{low:.1f}–{high:.1f} s"


def nettable(intent: OrderIntent) -> bool:
    """A market copy of one symbol whose copy group set a limit (reconcile and guard orders
    carry none: they are never netted)."""
    return (
        intent.stale_after_s is not None
        and intent.action == "place"
        and intent.order_type == "market"
        and bool(intent.symbol)
    )


def is_stale(intent: OrderIntent, now: float) -> bool:
    if not nettable(intent):
        return False
    age = age_of(intent, now)
    return age is not None and intent.stale_after_s is not None and age > intent.stale_after_s


def take_run(head: Queued, waiting: Sequence[Queued], now: float) -> tuple[list[Queued], list[Queued]]:
    """The head plus every waiting stale copy of its symbol up to the first flatten of that
    symbol (in queue order), and the rest, in order."""
    symbol = head[0].symbol
    run: list[Queued] = [head]
    rest: list[Queued] = []
    open_run = True
    for item in waiting:
        intent = item[0]
        if intent.action == "flatten" and intent.symbol in (symbol, ""):
            open_run = False
        (run if open_run and intent.symbol == symbol and is_stale(intent, now) else rest).append(item)
    return run, rest


def net_quantity(intents: Sequence[OrderIntent]) -> int:
    """What the copies together would have bought (positive) or sold (negative)."""
    return sum(i.quantity if i.side == "buy" else -i.quantity for i in intents)


def journal_signal(intent: OrderIntent) -> str | None:
    """What keys an intent's journal row with its client id: its signal; None (the client id
    alone) for a netting order, whose signal is its newest copy's, so it may differ between
    attempts, while its client id (its first copy's) does not."""
    signal = intent.signal_id
    return None if signal.startswith(NET_SIGNAL_PREFIX) else signal


def net_key(intents: Sequence[OrderIntent]) -> str:
    """The netting order's idempotency key, from the first copy it covers: a redelivered run
    starts at the same copy, so it plans the same key even when more copies joined it since.
    Then the order is found and not placed again; the copies that joined are short until
    reconciliation sees it (under-trading, never a second order)."""
    first = intents[0]
    return ids.client_order_id(f"{NET_SIGNAL_PREFIX}{first.client_order_id}", first.account_id)


def net_order(intents: Sequence[OrderIntent], quantity: int) -> OrderIntent:
    """The one market order of a run: no ``stale_after_s``, so it is never netted itself."""
    newest = intents[-1]
    return OrderIntent(
        client_order_id=net_key(intents),
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
        reduces_position=all(i.reduces_position for i in intents),
    )


class StaleCopies:
    """The lane's side of stale copies: settles what may have been done, places one order."""

    def __init__(self, router: OrderRouter, clock: Callable[[], float] = time.time) -> None:
        self.router = router
        self.clock = clock

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
        must still wait for (the netting order's late lookup), like ``OrderRouter.execute``.

        The run's journal rows are begun together (one read of what was there, one write) and
        its netted copies reported together (:meth:`OrderRouter.skip_stale_run`): a lane that
        fell behind nets hundreds of copies at once, and one await, query or log line per
        copy made netting cost more than placing (#18's soak).
        """
        router = self.router
        now = self.clock()
        head = run[0][0]
        limit = f"{head.stale_after_s:g} s"
        copies: dict[str, tuple[OrderIntent, bool]] = {}
        for intent, _, redelivered in run:  # the same copy twice (a restarted fan-out sent it again): once
            if intent.client_order_id not in router.finished:  # finished here: its outcome was said
                copies.setdefault(intent.client_order_id, (intent, redelivered))
        priors = await self._begin(list(copies.values()))
        fresh: list[OrderIntent] = []
        uncertain = False
        for (intent, redelivered), prior in zip(copies.values(), priors, strict=True):
            earlier = "new" if prior is None and not redelivered else await self._earlier(intent, prior)
            if earlier == "new":
                fresh.append(intent)
            elif earlier == "again":
                uncertain = True
                fresh.append(intent)
            elif earlier == "unknown":
                why = "an earlier attempt may have placed it and no lookup could tell: not netted"
                router.skip_stale_run([intent], COPY_STALE_UNKNOWN, f"copy older than {limit}; {why}", unknown=True)
        if not fresh:
            return None
        quantity = net_quantity(fresh)
        key = net_key(fresh)
        order: OrderIntent | None = None
        code = COPY_STALE_NETTED
        if quantity == 0:
            outcome = "together they net to nothing: no order"
        else:
            try:
                order = net_order(fresh, quantity)
            except RecordError as exc:  # e.g. more contracts than one order may carry
                code, outcome = COPY_STALE_UNNETTED, f"their net ({quantity:+d}) is not one order: {exc}"
            else:
                outcome = f"netted into {key}: {order.side} {order.quantity} (their net, at market, now)"
        reason = f"{len(fresh)} copies older than {limit} ({ages_of(fresh, now)}) not placed; {outcome}"
        log.warning("lane %s %s: %s", head.account_id, head.symbol, reason)
        router.skip_stale_run(fresh, code, reason, net_key=key if order is not None else None)
        if order is None:
            return None
        return await router.execute(order, redelivered=uncertain)

    async def _begin(self, copies: list[tuple[OrderIntent, bool]]) -> list[Attempt | None]:
        """Each copy's journal row begun (the row ``skip_stale_run`` finishes), all in the
        journal's next group commit; returns what each row held before (None: fresh)."""
        journal = self.router.journal
        if journal is None:
            return [None] * len(copies)
        return list(
            await asyncio.gather(
                *(
                    journal.begin(i.client_order_id, i.account_id, i.action, signal_id=journal_signal(i))
                    for i, _ in copies
                )
            )
        )

    async def _earlier(self, intent: OrderIntent, prior: Attempt | None) -> str:
        """What an earlier attempt did with a copy that may have been handled (journaled, or
        redelivered): ``new`` (nothing, surely), ``again`` (nothing found; it may have been
        netted before), ``done`` (answered or covered, and reported again now) or ``unknown``
        (nobody can tell). A row begun just now by this settle counts as not answered."""
        router = self.router
        key = intent.client_order_id
        if prior is not None and prior.state == DONE:
            skipped = router.stale_skip(prior)
            if skipped is None:  # answered before (placed or refused): said again, no call
                await router.execute(intent, redelivered=True)
                return "done"
            code, said, netted_into = skipped
            covered = True if netted_into is None else await self._placed(intent.account_id, netted_into, None)
            if covered is None:
                return "unknown"
            if covered:  # skipped before, and what covers it exists: said again
                router.skip_stale_run([intent], code, said, net_key=netted_into)
                return "done"
            return "again"
        found = await self._placed(intent.account_id, key, journal_signal(intent))
        if found is None:
            return "unknown"
        if found:  # an earlier attempt placed it: the router's lookup reports it, places nothing
            await router.execute(intent, redelivered=True)
            return "done"
        return "again"

    async def _placed(self, account_id: str, client_order_id: str, signal_id: str | None) -> bool | None:
        """Whether an order with this client id exists (journal first, then the broker).
        ``signal_id`` keys its journal row (None: a netting order's, see ``journal_signal``)."""
        router = self.router
        journal = router.journal
        known = journal.get(client_order_id, signal_id=signal_id) if journal is not None else None
        if known is not None and known.state == DONE:
            return known.kind == "ack"
        try:
            with copy_deadline(router.deadline_s), urgent(Priority.EXIT):
                adapter = await router.pool.adapter_for(account_id)
                breaker = router.pool.breaker(adapter.config.session_id)
                found = await breaker.call(adapter.lookup, account_id, client_order_id)
        except Exception as exc:  # noqa: BLE001 - any failure to look is "cannot tell", never a guess
            log.warning("stale copy lookup of %s failed: %r", client_order_id, exc)
            return None
        return found is not None

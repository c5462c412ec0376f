"""Slippage of a copy: how much worse a follower filled than its leader, and than the market.

Two benchmarks per follower fill: the leader's (average) fill price of the order the follower
copied, and the reference price (the fresh quote's mid, else last) fan-out saw when it planned
the copy (``OrderIntent.reference_price``). Each is given in ticks per contract (the follower
instrument's tick size) and in money for the fill's quantity (its point value, in the
instrument's currency). Signed so that **positive is always worse for the follower**: a buy
filled above the benchmark, a sell filled below it. A benchmark that is unknown (no leader fill
seen, no fresh quote at fan-out, an instrument we do not know) gives ``None``, never 0: "no
slippage" and "cannot tell" are different answers.

Pure functions, shared by the storage sink (the ``executions`` table), the web worker's live
order log and the reports.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal

from ..brokers.instruments import instrument_for

__all__ = [
    "CopySlippage",
    "FillSlippage",
    "SlippageSummary",
    "average_price",
    "fill_slippage",
    "key_splits",
    "leader_fill_key",
    "leader_order_key",
    "slippage",
    "summarize",
]

FILL_KINDS = ("fill", "partial_fill")
SIX_PLACES = Decimal("0.000001")  # what the database keeps (Numeric(18, 6))
_FLATTEN = re.compile(r":flatten:[^:]*$")


@dataclass(frozen=True, slots=True)
class Slippage:
    ticks: Decimal  # per contract; positive = worse for the follower
    amount: Decimal  # for the whole quantity, in the instrument's currency


def slippage(
    side: str, price: Decimal | None, benchmark: Decimal | None, quantity: int, symbol: str
) -> Slippage | None:
    """The follower's fill against one benchmark, or ``None`` when either price is unknown."""
    if price is None or benchmark is None or side not in ("buy", "sell"):
        return None
    try:
        instrument = instrument_for(symbol)
    except (KeyError, ValueError):
        return None
    worse = (price - benchmark) if side == "buy" else (benchmark - price)
    return Slippage(worse / instrument.tick_size, worse * instrument.point_value * quantity)


def average_price(fills: Iterable[tuple[int, Decimal | None]]) -> Decimal | None:
    """Quantity-weighted average price of (quantity, price) fills; ``None`` when there is none."""
    quantity, notional = 0, Decimal(0)
    for qty, price in fills:
        if price is None or qty <= 0:
            continue
        quantity += qty
        notional += qty * price
    return notional / quantity if quantity else None


@dataclass(frozen=True, slots=True)
class FillSlippage:
    """One follower fill against both benchmarks (each part ``None`` when unknown)."""

    leader_price: Decimal | None
    vs_leader: Slippage | None
    vs_reference: Slippage | None

    def columns(self) -> dict[str, Decimal | None]:
        """As the ``executions`` table (``Numeric(18, 6)``) and the live order log name them."""
        values = {
            "leader_price": self.leader_price,
            "slippage_leader_ticks": self.vs_leader.ticks if self.vs_leader else None,
            "slippage_leader_amount": self.vs_leader.amount if self.vs_leader else None,
            "slippage_ref_ticks": self.vs_reference.ticks if self.vs_reference else None,
            "slippage_ref_amount": self.vs_reference.amount if self.vs_reference else None,
        }
        return {name: None if v is None else v.quantize(SIX_PLACES) for name, v in values.items()}


def fill_slippage(
    side: str,
    price: Decimal | None,
    quantity: int,
    symbol: str,
    leader_price: Decimal | None,
    reference_price: Decimal | None,
) -> FillSlippage:
    return FillSlippage(
        leader_price,
        slippage(side, price, leader_price, quantity, symbol),
        slippage(side, price, reference_price, quantity, symbol),
    )


# ----------------------------------------------------------------- which leader order a copy copies


def leader_order_key(signal_id: str | None) -> str | None:
    """``leader:order`` of the signal a follower order copies (``core.ids.signal_id`` of a
    ``new`` or ``flatten`` signal); ``None`` for anything else (a webhook's own signal id).

    Kept as one string because account ids may contain ``:``; compare it with
    :func:`leader_fill_key` of the leader's fills instead of splitting it.
    """
    if not signal_id:
        return None
    if signal_id.endswith(":new"):
        return signal_id[: -len(":new")] or None
    match = _FLATTEN.search(signal_id)
    if match:
        return signal_id[: match.start()] or None
    return None


def leader_fill_key(leader_account: str, leader_order_id: str) -> str:
    """The key of a leader execution (its account and broker order id), as :func:`leader_order_key`."""
    return f"{leader_account}:{leader_order_id}"


def key_splits(key: str) -> list[tuple[str, str]]:
    """Every (account, order id) a key could stand for, to look the leader's fills up by."""
    return [(key[:i], key[i + 1 :]) for i, char in enumerate(key) if char == ":" and 0 < i < len(key) - 1]


# ------------------------------------------------------------------------------------ reports


@dataclass(frozen=True, slots=True)
class CopySlippage:
    """One follower order (a copy), its fills averaged: ticks weighted by quantity, money summed."""

    client_order_id: str
    account_id: str
    group_id: str | None
    quantity: int
    leader_ticks: Decimal | None
    leader_amount: Decimal | None
    ref_ticks: Decimal | None
    ref_amount: Decimal | None

    @classmethod
    def of_fills(
        cls, client_order_id: str, account_id: str, group_id: str | None, fills: Sequence[tuple[int, FillSlippage]]
    ) -> CopySlippage:
        """A part is known only when it is known for every fill (a half-known copy is unknown)."""
        quantity = sum(qty for qty, _ in fills)

        def part(pick: Callable[[FillSlippage], Slippage | None]) -> tuple[Decimal | None, Decimal | None]:
            values = [(qty, pick(f)) for qty, f in fills]
            if not values or quantity <= 0 or any(v is None for _, v in values):
                return None, None
            known = [(qty, v) for qty, v in values if v is not None]
            ticks = sum((qty * v.ticks for qty, v in known), Decimal(0)) / quantity
            return ticks, sum((v.amount for _, v in known), Decimal(0))

        leader = part(lambda f: f.vs_leader)
        ref = part(lambda f: f.vs_reference)
        return cls(client_order_id, account_id, group_id, quantity, *leader, *ref)


@dataclass(frozen=True, slots=True)
class SlippageSummary:
    """Average and worst slippage of the copies of one account or one copy group.

    ``*_known`` counts the copies that have the benchmark; averages and worsts are over those
    only, and are empty (never 0) when none has it.
    """

    scope: str  # "account" or "group"
    key: str
    copies: int
    leader_known: int
    leader_avg_ticks: Decimal | None
    leader_worst_ticks: Decimal | None
    leader_total_amount: Decimal | None
    leader_worst_amount: Decimal | None
    ref_known: int
    ref_avg_ticks: Decimal | None
    ref_worst_ticks: Decimal | None
    ref_total_amount: Decimal | None
    ref_worst_amount: Decimal | None


_Stats = tuple[int, Decimal | None, Decimal | None, Decimal | None, Decimal | None]


def _stats(known: list[tuple[Decimal, Decimal]]) -> _Stats:
    """(count, average ticks, worst ticks, total amount, worst amount) of (ticks, amount) pairs."""
    if not known:
        return 0, None, None, None, None
    ticks = [t for t, _ in known]
    amounts = [a for _, a in known]
    return len(known), sum(ticks, Decimal(0)) / len(ticks), max(ticks), sum(amounts, Decimal(0)), max(amounts)


def summarize(copies: Iterable[CopySlippage]) -> list[SlippageSummary]:
    """Per account, then per copy group (copies whose group is unknown count for the account only)."""
    scopes: dict[tuple[str, str], list[CopySlippage]] = defaultdict(list)
    for copy in copies:
        scopes[("account", copy.account_id)].append(copy)
        if copy.group_id is not None:
            scopes[("group", copy.group_id)].append(copy)
    out = []
    for (scope, key), items in sorted(scopes.items()):
        leader = [
            (c.leader_ticks, c.leader_amount)
            for c in items
            if c.leader_ticks is not None and c.leader_amount is not None
        ]
        ref = [(c.ref_ticks, c.ref_amount) for c in items if c.ref_ticks is not None and c.ref_amount is not None]
        out.append(SlippageSummary(scope, key, len(items), *_stats(leader), *_stats(ref)))
    return out

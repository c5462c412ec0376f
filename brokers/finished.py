"""Bounded memory of finished orders, for adapters whose resync replays the broker's history.

An adapter keeps per-order state (last status, cumulative fill quantity, fill ids) so that the
resync after a reconnect, which replays the day's orders or fills, reports each fill once. Kept
forever, that state grows with every order of a long run (#18, the soak). This module lets an
adapter forget a finished order in two steps, without ever reporting its fills again:

1. **In full** for the ``keep`` most recently finished orders: the adapter's own maps hold
   them as before (lookups, late pushes, corrections read them).
2. **As a fingerprint** after that: just the order id and the fill quantity already reported
   (a small int per order). A replay that shows the order again with that quantity is
   recognised as old news; one showing more reports only the difference.

A fingerprint is dropped only when the broker can no longer replay its order: after a
*complete* replay (every page of the day's orders or fills was read) that did not list it. A
broker's replay window only moves forward (the trading day ends, its history is trimmed), so
an order absent from one complete replay is absent from every later one. Fingerprints made
after the replay was requested are kept whatever it said (the answer may predate them). So
the memory is bounded by what the broker itself keeps, never by the length of the run.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable

__all__ = ["KEEP_IN_FULL", "FinishedOrders", "Replay"]

#: Finished orders an adapter keeps in full before they shrink to a fingerprint.
KEEP_IN_FULL = 1000


class Replay:
    """One resync's reading of the broker's history: which fingerprints it still lists."""

    __slots__ = ("generation", "listed")

    def __init__(self, generation: int) -> None:
        self.generation = generation
        self.listed: set[str] = set()


class FinishedOrders:
    """The finished orders an adapter remembers, oldest first, in full then as fingerprints."""

    def __init__(self, reported: Callable[[str], int], keep: int = KEEP_IN_FULL) -> None:
        """``reported(order_id)``: the fill quantity the adapter has reported for an order,
        read when the order shrinks to a fingerprint (fills may still arrive after its end)."""
        if keep < 0:
            raise ValueError(f"keep must be at least 0, got {keep}")
        self.keep = keep
        self._reported = reported
        self._recent: OrderedDict[str, None] = OrderedDict()  # held in full, oldest first
        self._fingerprints: dict[str, tuple[int, int]] = {}  # order id → (filled, generation)
        self._generation = 0

    def __len__(self) -> int:
        return len(self._recent) + len(self._fingerprints)

    @property
    def fingerprint_count(self) -> int:
        return len(self._fingerprints)

    def finished(self, order_id: str) -> list[str]:
        """``order_id`` ended; returns the orders that must now leave the adapter's maps (the
        oldest beyond ``keep``), each kept from here on as a fingerprint."""
        self._fingerprints.pop(order_id, None)
        self._recent[order_id] = None
        self._recent.move_to_end(order_id)
        evicted: list[str] = []
        while len(self._recent) > self.keep:
            old, _ = self._recent.popitem(last=False)
            self._fingerprints[old] = (self._reported(old), self._generation)
            evicted.append(old)
        return evicted

    def reopened(self, order_id: str) -> None:
        """A finished order changed again (a bust reopened it): it is live, held in full."""
        self._recent.pop(order_id, None)
        self._fingerprints.pop(order_id, None)

    def forgotten(self, order_id: str) -> int | None:
        """The fill quantity reported for an order kept only as a fingerprint, else None."""
        fingerprint = self._fingerprints.get(order_id)
        return fingerprint[0] if fingerprint is not None else None

    # -- replays -------------------------------------------------------------------------------
    def begin_replay(self) -> Replay:
        """Call before requesting the broker's history; fingerprints made from here on survive."""
        self._generation += 1
        return Replay(self._generation)

    def listed(self, replay: Replay, order_id: str) -> None:
        """The replay listed ``order_id`` (call for every order or fill it carried)."""
        if order_id in self._fingerprints:
            replay.listed.add(order_id)

    def end_replay(self, replay: Replay) -> list[str]:
        """The replay was read in full: drop the fingerprints it no longer lists (the broker
        forgot those orders and will not replay them again), and return their order ids.
        Never call this for a replay that failed or was cut short."""
        gone = [
            order_id
            for order_id, (_, generation) in self._fingerprints.items()
            if generation < replay.generation and order_id not in replay.listed
        ]
        for order_id in gone:
            del self._fingerprints[order_id]
        return gone

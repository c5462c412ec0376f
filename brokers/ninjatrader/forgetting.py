"""How the NinjaTrader book forgets finished orders without reporting a fill twice (#18).

The ATI has no history request: what the adapter can learn again is what NinjaTrader still
*lists*. Over TCP that is each account's ``Orders|<acct>`` value (every order of the account in
this NinjaTrader run, pushed on connect and on every change) with each order's ``OrderStatus``,
``Filled`` and ``AvgFillPrice``; over files it is the outgoing folder, one ``<id>.txt`` per order
placed with an ORDER ID, kept until NinjaTrader restarts (N-tk, N-out). So a "replay" here is:

* TCP: the ``Orders`` lists of every configured account, received after the replay began (one
  begins when a connection is opened, and while it lasts one every ``REPLAY_EVERY_S``);
* files: the first complete listing of the outgoing folder after NinjaTrader wiped it (a
  restart, seen by the sentinel file of ``oif.py``). Outgoing files are deleted only then
  (N-out), so a file merely missing from a listing proves nothing, and the folder, which
  NinjaTrader keeps for its whole run, bounds what is kept.

The book keeps the latest ``keep`` finished orders in full (:class:`..finished.FinishedOrders`);
older ones shrink to an :class:`Ended` (the order's terms and cost reported, for a late fill; its
final state, for a lookup or a repeated cancel) plus the fingerprint's quantity. A
fingerprint goes when a replay begun after it no longer lists its ORDER ID: NinjaTrader forgot
the order (it restarted, or trimmed its list) and will not push it again. From then on the
adapter cannot prove that an ORDER ID it does not know was never sent, so its lookup says
"cannot tell" for unknown ids instead of "none" (``orders._cannot_tell``).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from decimal import Decimal

from ..finished import KEEP_IN_FULL, FinishedOrders, Replay
from ..model import OrderType, Side
from .states import NtState

__all__ = ["KEEP_IN_FULL", "REPLAY_EVERY_S", "Ended", "Forgetting"]

#: Seconds between two TCP replays on one connection (a new connection always starts one).
REPLAY_EVERY_S = 30.0


@dataclass(frozen=True, slots=True)
class Ended:
    """What stays of a finished order shrunk to a fingerprint (no report, no waiters, no prices):
    enough to report a fill NinjaTrader still shows after the order's end (nothing says its
    final states cannot change again) under the order's own fill ids, and to answer a lookup or
    a repeated cancel."""

    account_id: str
    client_order_id: str
    symbol: str
    side: Side
    order_type: OrderType
    quantity: int
    instance: int
    state: NtState
    cost: Decimal


class Forgetting:
    """The finished orders of one book, in full then as fingerprints, and the running replay."""

    def __init__(self, finished: FinishedOrders, accounts: list[str]) -> None:
        self.finished = finished
        self.accounts = frozenset(accounts)  # NinjaTrader names whose lists make a TCP replay
        self.ended: dict[str, Ended] = {}
        self.dropped = 0  # fingerprints dropped: unknown ORDER IDs can no longer be called "none"
        self._replay: Replay | None = None
        self._lists_in_replay: set[str] = set()
        self.replay_every_s = REPLAY_EVERY_S
        self._clock = time.monotonic
        self._ended_at = -math.inf

    def shrink(self, nt_id: str, ended: Ended) -> None:
        self.ended[nt_id] = ended

    def reopen(self, nt_id: str) -> None:
        """``nt_id`` is held in full again (a re-sent ORDER ID, a late fill)."""
        self.finished.reopened(nt_id)
        self.ended.pop(nt_id, None)

    def filled(self, nt_id: str) -> int | None:
        """The quantity reported for a fingerprinted order, else None."""
        return self.finished.forgotten(nt_id)

    # -- replays --------------------------------------------------------------------------
    def begin(self) -> None:
        """A TCP replay begins: a connection is about to be opened (a replay cut short by the lost
        one is dropped unread), or ``replay_every_s`` passed since the last one ended. Only the
        lists received from now on count."""
        self._replay = self.finished.begin_replay()
        self._lists_in_replay = set()

    def account_listed(self, account: str, ids: list[str]) -> None:
        """``Orders|<account>`` arrived: once every account's list arrived in this replay, the
        fingerprints none listed go. NinjaTrader pushes a list on every new order, and reading
        one costs a pass over the whole day's ids, so while a connection lasts the next replay
        begins only ``replay_every_s`` after the last one ended (from the next list on)."""
        if self._replay is None:
            if self._clock() - self._ended_at >= self.replay_every_s:
                self.begin()
            return
        if self.finished.fingerprint_count:  # else there is nothing to look for in the list
            for nt_id in ids:
                self.finished.listed(self._replay, nt_id)
        if account in self.accounts:
            self._lists_in_replay.add(account)
        if self._lists_in_replay >= self.accounts:
            self._end()

    def folder_wiped(self, ids: set[str]) -> None:
        """The first complete listing of the outgoing folder after a wipe: a fingerprint whose
        file it lacks goes. Every fingerprint was made from a file read before the wipe, and
        after a restart NinjaTrader no longer knows that ORDER ID, so it writes no file of it
        again. Without a wipe a missing file proves nothing (NinjaTrader deletes order files
        only on a restart [N-out], and might rewrite one by deleting it first)."""
        replay = self.finished.begin_replay()
        for nt_id in ids:
            self.finished.listed(replay, nt_id)
        self._forget(self.finished.end_replay(replay))

    def _end(self) -> None:
        assert self._replay is not None
        self._forget(self.finished.end_replay(self._replay))
        self._replay = None
        self._ended_at = self._clock()

    def _forget(self, gone: list[str]) -> None:
        for nt_id in gone:
            self.ended.pop(nt_id, None)
        self.dropped += len(gone)

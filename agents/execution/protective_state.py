"""What the protective-stop watcher (``protective.py``) knows per follower symbol: the
position, the copies of the leader's stops it should carry, and the orders it sent itself."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from ...core.records import OrderIntent


class Timer(Protocol):
    def cancel(self) -> None: ...


@dataclass(slots=True)
class StopCopy:
    """One follower copy of one leader stop: what to place again if it goes missing."""

    intent: OrderIntent  # the copy as last planned (a leader modify updates it)
    live_id: str  # client id of the follower order standing for it now (original or replacement)
    state: str = "pending"  # pending | working | missing
    replacements: int = 0
    maybe_live: bool = False  # its outcome was unknown: it may yet be working at the broker

    @property
    def sign(self) -> int:
        return 1 if self.intent.side == "buy" else -1


@dataclass(slots=True)
class Book:
    """One follower's symbol: its position and the leader stops it should carry."""

    account_id: str
    symbol: str
    position: int | None = None  # None: not known (since start or a reconnect) until the broker says
    reported: bool = False  # the adapter reports positions: they, not our sum of fills, count
    stops: dict[str, StopCopy] = field(default_factory=dict)  # by the original copy's client id
    deadline_s: float = 2.0
    naked_since: float | None = None
    timer: Timer | None = None
    acting: bool = False  # a verification or our own order is under way: no second action
    flattens: int = 0
    reported_down: bool = False
    gave_up: bool = False  # every flatten failed: said; a person must look (until it changes)
    covered_elsewhere: bool = False  # the broker showed a protective stop we did not send

    def protective(self) -> list[StopCopy]:
        """Stops opposite to the position (every stop while the position is unknown)."""
        if self.position is None:
            return list(self.stops.values())
        return [s for s in self.stops.values() if s.sign * self.position < 0]

    def naked(self) -> bool:
        if self.position == 0 or self.covered_elsewhere:
            return False
        guarding = self.protective()
        return bool(guarding) and not any(s.state == "working" for s in guarding)


@dataclass(slots=True)
class Mine:
    """An order the watcher itself sent, so its outcome is read as ours."""

    kind: str  # replace | flatten | cancel | forward
    book: Book
    stop: StopCopy | None = None

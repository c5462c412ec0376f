"""What the risk guards must not forget when an executor restarts: each guarded account's
realised P&L (the day's and since tracking began), the drawdown's peak and the breaches in force.

Why a file in the data dir and not Kafka: the figures are this executor's own bookkeeping (like
its attempt journal beside it), read once at start; positions are not kept here because the
broker's snapshot at connect is the better source. Written by the guards' one-second monitor
when something changed (a few hundred bytes, atomically: temporary file, then rename), never on
the copy path. A file that does not read back (truncated, edited, another version) is reported
and ignored: the guards then start from zero, as they did before this file existed.
"""

from __future__ import annotations

import logging
import os
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Annotated

import msgspec

from ...core.guard_state import AccountGuard, Refusal
from ...core.schemas.bounds import MAX_CONFIG_ITEMS, MAX_TEXT_LEN

log = logging.getLogger(__name__)
#: Larger than any real P&L; a value beyond it means the file is not ours.
MAX_MONEY = Decimal(10) ** 15


class SavedBreach(msgspec.Struct, forbid_unknown_fields=True):
    code: Annotated[str, msgspec.Meta(max_length=64)]
    message: Annotated[str, msgspec.Meta(max_length=4 * MAX_TEXT_LEN)]
    flatten: bool = False


class SavedGuard(msgspec.Struct, forbid_unknown_fields=True):
    day: Annotated[str, msgspec.Meta(pattern=r"^\d{4}-\d{2}-\d{2}$")] | None
    realised_today: Decimal
    realised_total: Decimal
    peak: Decimal
    last_equity: Decimal
    breached: Annotated[list[SavedBreach], msgspec.Meta(max_length=16)] = msgspec.field(default_factory=list)

    def __post_init__(self) -> None:
        for name in ("realised_today", "realised_total", "peak", "last_equity"):
            value: Decimal = getattr(self, name)
            if not value.is_finite() or abs(value) > MAX_MONEY:
                raise ValueError(f"{name}: not a finite amount within bounds")


class SavedGuards(msgspec.Struct, forbid_unknown_fields=True):
    version: Annotated[int, msgspec.Meta(ge=1, le=1)] = 1
    accounts: Annotated[dict[str, SavedGuard], msgspec.Meta(max_length=MAX_CONFIG_ITEMS)] = msgspec.field(
        default_factory=dict
    )


def saved(guard: AccountGuard) -> SavedGuard:
    return SavedGuard(
        day=guard.day.isoformat() if guard.day is not None else None,
        realised_today=guard.realised_today,
        realised_total=guard.realised_total,
        peak=guard.peak,
        last_equity=guard.last_equity,
        breached=[SavedBreach(b.code, b.message, b.flatten) for b in guard.breached.values()],
    )


def restore(guard: AccountGuard, state: SavedGuard) -> None:
    """Back as it was; the next check or monitor round turns the day over if it has passed
    (the daily figures reset, an end-of-day peak takes the saved closing equity)."""
    guard.day = date.fromisoformat(state.day) if state.day is not None else None
    guard.realised_today = state.realised_today
    guard.realised_total = state.realised_total
    guard.peak = state.peak
    guard.last_equity = state.last_equity
    guard.breached = {b.code: Refusal(b.code, b.message, breach=True, flatten=b.flatten) for b in state.breached}


class GuardStore:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._written: bytes | None = None
        self._loaded: dict[str, SavedGuard] = {}

    def load(self, accounts: dict[str, AccountGuard]) -> int:
        """Restore the accounts the file knows; how many were restored."""
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return 0
        except OSError as exc:
            log.error("guards: %s unreadable (%s); starting from zero", self.path, exc)
            return 0
        try:
            state = msgspec.json.decode(raw, type=SavedGuards)
        except (msgspec.ValidationError, msgspec.DecodeError, ValueError) as exc:
            log.error("guards: %s refused (%s); starting from zero", self.path, exc)
            return 0
        self._loaded = dict(state.accounts)
        restored = 0
        for account_id, guard in accounts.items():
            if account_id in self._loaded:
                restore(guard, self._loaded.pop(account_id))
                restored += 1
        self._written = raw
        return restored

    def restore_one(self, guard: AccountGuard) -> bool:
        """An account that became guarded after the start (a dashboard edit replayed or new):
        its figures as this file had them when the worker started, if it had them."""
        state = self._loaded.pop(guard.account_id, None)
        if state is None:
            return False
        restore(guard, state)
        return True

    def save(self, accounts: dict[str, AccountGuard]) -> bool:
        """Write when something changed; True when written."""
        raw = msgspec.json.encode(SavedGuards(accounts={a: saved(g) for a, g in sorted(accounts.items())}))
        if raw == self._written:
            return False
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_suffix(".tmp")
        temporary.write_bytes(raw)
        os.replace(temporary, self.path)
        self._written = raw
        return True

"""What the risk guards must not forget when an executor restarts: each guarded account's
realised P&L (the day's and since tracking began), the drawdown's peak and the breaches in force.

Why a file in the data dir and not Kafka: the figures are this executor's own bookkeeping (like
its attempt journal beside it), read once at start; positions are not kept here because the
broker's snapshot at connect is the better source. Written by the guards' one-second monitor
when something changed (a few hundred bytes, atomically: temporary file, then rename), never on
the copy path. A file that does not read back (truncated, edited, another version) is reported,
kept aside (``<name>.refused-<UTC time>``, never overwritten by the next save) and not trusted;
and since the figures it held are unknown, every account with a loss or drawdown rule starts
with ``GUARD_STATE_LOST`` in force: entries refused (exits never), until the trader edits that
account's guards on the dashboard (an edit made after the refusal: the start's replay of
earlier edits lifts nothing). Starting from zero instead would give a funded account a
fresh daily loss allowance, and a trailing drawdown a lower peak, after any restart. It also
keeps the rules the dashboard last set per account (``edits``), so that a restarted executor
checks its first copies against them and not against the config file's.
"""

from __future__ import annotations

import logging
import os
import time
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Annotated

import msgspec

from ...common.bounds import MAX_CONFIG_ITEMS, MAX_STAMP_S, MAX_TEXT_LEN
from ...core import guards as g
from ...core.guard_state import AccountGuard, Refusal
from ...core.schemas.guards import GuardsIn

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


class SavedEdit(msgspec.Struct, forbid_unknown_fields=True):
    """The dashboard's last guards record for an account, as this executor applied it."""

    guards: GuardsIn | None
    by: Annotated[str, msgspec.Meta(max_length=MAX_TEXT_LEN)] = ""
    at: Annotated[float, msgspec.Meta(ge=0, le=MAX_STAMP_S)] = 0.0


class SavedGuards(msgspec.Struct, forbid_unknown_fields=True):
    version: Annotated[int, msgspec.Meta(ge=1, le=1)] = 1
    accounts: Annotated[dict[str, SavedGuard], msgspec.Meta(max_length=MAX_CONFIG_ITEMS)] = msgspec.field(
        default_factory=dict
    )
    # Why the rules too: a restarted executor checks its first copies (the backlog of its
    # restart) before its replay of ``copy.controls`` is done; with these it checks them against
    # the dashboard's rules, not the file's. The replay then brings any newer record.
    edits: Annotated[dict[str, SavedEdit], msgspec.Meta(max_length=MAX_CONFIG_ITEMS)] = msgspec.field(
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
        self.edits: dict[str, SavedEdit] = {}
        self._state: SavedGuards | None = None  # the file as read at start
        #: Why the file was refused at start, and where it was kept; None when it read back.
        self.refused: str | None = None
        self.refused_at = 0.0  # when (epoch s): only a dashboard edit made after it lifts the state

    def _read(self) -> SavedGuards | None:
        if self._state is not None:
            return self._state
        if self.refused is not None:
            return None  # refused once: not read (nor moved aside) again
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            self._refuse(f"unreadable: {exc}")
            return None
        try:
            state = msgspec.json.decode(raw, type=SavedGuards)
        except (msgspec.ValidationError, msgspec.DecodeError, ValueError) as exc:
            self._refuse(f"refused: {exc}")
            return None
        self._written = raw
        self._state = state
        return state

    def _refuse(self, why: str) -> None:
        """Keep the file aside for the trader to look at; say so once, loudly."""
        aside = self.path.with_name(f"{self.path.name}.refused-{datetime.now(UTC):%Y%m%dT%H%M%SZ}")
        try:
            os.replace(self.path, aside)
            kept = f"kept as {aside.name}"
        except OSError as exc:
            kept = f"could not be moved aside: {exc}"
        self.refused, self.refused_at = f"{self.path.name} {why}; {kept}", time.time()
        log.error("guards: %s; loss and drawdown figures unknown: entries refused (GUARD_STATE_LOST)", self.refused)

    def load_edits(self) -> dict[str, SavedEdit]:
        """The dashboard's rules as this executor last applied them (read before :meth:`load`,
        so that the guards are built with them)."""
        state = self._read()
        self.edits = dict(state.edits) if state is not None else {}
        return dict(self.edits)

    def remember(self, account_id: str, edit: SavedEdit) -> None:
        """A dashboard edit applied: written with the figures at the next :meth:`save`."""
        self.edits[account_id] = edit

    def load(self, accounts: dict[str, AccountGuard]) -> int:
        """Restore the accounts the file knows; how many were restored."""
        state = self._read()
        if state is None:
            if self.refused is not None:
                for guard in accounts.values():
                    self.mark_lost(guard)
            return 0
        self._loaded = dict(state.accounts)
        restored = 0
        for account_id, guard in accounts.items():
            if account_id in self._loaded:
                restore(guard, self._loaded.pop(account_id))
                restored += 1
        return restored

    def mark_lost(self, guard: AccountGuard) -> bool:
        """``GUARD_STATE_LOST`` in force on an account whose loss or drawdown the refused file
        may have counted (other rules need no saved figures); True when set."""
        if self.refused is None or not guard.rules.needs_marks:
            return False
        guard.breached[g.STATE_LOST] = Refusal(
            g.STATE_LOST,
            f"risk-guard figures lost at start ({self.refused}): today's loss and the drawdown's"
            " peak are unknown; entries refused until this account's guards are edited",
            breach=True,
        )
        return True

    def acknowledged(self, guard: AccountGuard, edited_at: float) -> bool:
        """A dashboard edit made after the refusal lifts ``GUARD_STATE_LOST``: the trader has
        seen the figures are gone and set the account's guards again. True when lifted."""
        if self.refused is None or edited_at <= self.refused_at:
            return False
        return guard.breached.pop(g.STATE_LOST, None) is not None

    def restore_one(self, guard: AccountGuard) -> bool:
        """An account that became guarded after the start (a dashboard edit replayed or new):
        its figures as this file had them when the worker started, if it had them."""
        state = self._loaded.pop(guard.account_id, None)
        if state is None:
            self.mark_lost(guard)  # a refused file may have held its figures too
            return False
        restore(guard, state)
        return True

    def save(self, accounts: dict[str, AccountGuard]) -> bool:
        """Write when something changed; True when written."""
        raw = msgspec.json.encode(
            SavedGuards(
                accounts={a: saved(g) for a, g in sorted(accounts.items())},
                edits=dict(sorted(self.edits.items())),
            )
        )
        if raw == self._written:
            return False
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_suffix(".tmp")
        temporary.write_bytes(raw)
        os.replace(temporary, self.path)
        self._written = raw
        return True

"""The FIX adapter's write-ahead journal of ClOrdIDs (``orders.jsonl`` beside the FileStore).

Why a journal: a line is flushed and fsynced *before* its request is handed to the engine, so
after a restart a report resent for an old order is still traced to our id, a cancel or replace
never reuses one of our ClOrdIDs (``<id>-R<n>``/``<id>-C<n>`` number on from the journaled
count), and an id with no line was never sent (what lookup answers when the counterparty cannot
be asked).

Why it does not grow with the run (#18): appending alone would keep a line for every order
ever sent. Once the file holds more than twice as many lines as the book still remembers
orders (and more than ``floor`` lines), it is rewritten with one line per remembered order:
live orders, finished ones in full and finished ones shrunk to a fingerprint. An order leaves
the book, and so the journal, only when the counterparty answered an OrderStatusRequest for it
with "unknown order" (``tracking.py``): from then on it can trace no report to it, lookup
would hear "unknown" from the counterparty anyway, and a ClOrdID of ours can collide with no
order it holds. Every other order keeps everything exactly once needs: its ClOrdIDs, its
request count (the next ClOrdID's number), whether it ended and the quantity reported filled.

Crash-safe rule: the new file is written beside the journal under another name, flushed and
fsynced, then renamed over the journal (``os.replace``: atomic on POSIX) and the directory
fsynced. A crash before the rename leaves the old journal whole (the half-written file is
ignored and overwritten next time); after it, the new one is whole. Compaction runs in one
synchronous call on the event loop, so no append can slip in between reading the book and the
rename, and nothing the old file held is lost unless the book had already let it go.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from decimal import Decimal
from pathlib import Path
from typing import Any

from ..model import OrderType, Side, TimeInForce
from .messages import OrderTerms

__all__ = ["COMPACT_FLOOR", "JOURNAL", "OrderJournal", "quantities", "strings", "terms_entry", "terms_of"]

JOURNAL = "orders.jsonl"
#: A journal shorter than this is never compacted (a rewrite costs a pass over the book).
COMPACT_FLOOR = 1000


class OrderJournal:
    """Append-only lines of JSON, fsynced one by one, compacted by an atomic rewrite."""

    def __init__(self, path: Path | None, floor: int = COMPACT_FLOOR) -> None:
        self.path = path
        self.floor = floor
        self.lines = 0  # lines in the file now (read at load, counted on append)
        self.compactions = 0

    @property
    def _spare(self) -> Path | None:
        return self.path.with_name(self.path.name + ".compacting") if self.path is not None else None

    def read(self) -> list[dict[str, Any]]:
        """The entries a previous run left, in order (a torn last line is skipped)."""
        if self.path is None or not self.path.exists():
            return []
        entries: list[dict[str, Any]] = []
        text = self.path.read_text()
        for line in text.splitlines():
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            if isinstance(entry, dict):
                entries.append(entry)
        self.lines = len(text.splitlines())
        return entries

    def append(self, entry: dict[str, object]) -> None:
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a") as out:
            out.write(json.dumps(entry) + "\n")
            out.flush()
            os.fsync(out.fileno())
        self.lines += 1

    def due(self, remembered: int) -> bool:
        """Is the file more than half dead lines (and past the floor)?"""
        return self.path is not None and self.lines > max(self.floor, 2 * remembered)

    def rewrite(self, entries: Iterable[dict[str, object]]) -> None:
        """Replace the journal with ``entries``, crash-safe (see the module's docstring)."""
        spare = self._spare
        if self.path is None or spare is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        count = 0
        with spare.open("w") as out:
            for entry in entries:
                out.write(json.dumps(entry) + "\n")
                count += 1
            out.flush()
            os.fsync(out.fileno())
        os.replace(spare, self.path)
        directory = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)
        self.lines = count
        self.compactions += 1


def terms_entry(terms: OrderTerms) -> dict[str, object]:
    """An order's terms as a journal line holds them (what a cancel or replace repeats)."""
    return {
        "account": terms.account,
        "symbol": terms.symbol,
        "side": terms.side.value,
        "quantity": terms.quantity,
        "type": terms.order_type.value,
        "limit": str(terms.limit_price) if terms.limit_price is not None else None,
        "stop": str(terms.stop_price) if terms.stop_price is not None else None,
        "tif": terms.time_in_force.value,
    }


def quantities(value: object) -> dict[str, int]:
    """A journaled OrderID → quantity map (absent in lines older than #18)."""
    if not isinstance(value, dict):
        return {}
    return {str(oid): int(str(quantity)) for oid, quantity in value.items()}


def strings(value: object) -> list[str]:
    """A journaled list of ids (absent in lines older than #18)."""
    return [str(item) for item in value] if isinstance(value, list) else []


def terms_of(entry: dict[str, object]) -> OrderTerms:
    """The terms a journal line holds (``terms_entry`` read back)."""
    return OrderTerms(
        account=str(entry["account"]),
        symbol=str(entry["symbol"]),
        side=Side(str(entry["side"])),
        quantity=int(str(entry["quantity"])),
        order_type=OrderType(str(entry["type"])),
        limit_price=Decimal(str(entry["limit"])) if entry.get("limit") else None,
        stop_price=Decimal(str(entry["stop"])) if entry.get("stop") else None,
        time_in_force=TimeInForce(str(entry.get("tif", "day"))),
    )

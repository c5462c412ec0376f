"""One decode per record for the consumers of one worker that read the same topic.

Why: the watching worker (roles ``track``, ``store``, ``web``) reads every ``trade.executions``
record three times, in three consumers of its own (the tracker's Faust agent, the database
sink's consumer, the dashboard feed), and each decoded it: three times the same few dozen
``Execution`` records per record, about 6 % of the worker's CPU at 200 followers
(``scripts/watcher_cost.py``, py-spy). Here the first reader's decoding is kept until every
other reader registered for that topic has taken it.

Nothing depends on it for correctness: a reader that finds no entry (it is the first, or it
fell so far behind that the entry was dropped) decodes the record itself, exactly as before.
An entry is used only for the same decoder, the same place (topic, partition, offset) and the
same bytes, compared whole, so a topic deleted and made again cannot hand out another
record's values. A record that does not decode is not kept: each reader meets the error and
reports it as it always did. The consumers run in the worker's event loop, one at a time, so
the book needs no lock. Values are shared, not copied: ``Execution`` and the other records are
not changed by any reader (each gets a list of its own).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

T = TypeVar("T")

#: Raw bytes of the records kept for readers still to come. Readers of one worker run a few
#: fetches apart (their fetch waits are 0.25–0.5 s): at 200 followers ``trade.executions``
#: brings ≈ 0.35 MB a second. Decoded, a record takes 2.7 times its bytes (tracemalloc, a
#: 200-follower bench's records), so this bounds what is kept to ≈ 15 MB; a reader further behind (catching up after a restart, or
#: the database sink behind a slow disk) decodes for itself.
MAX_KEPT_BYTES = 4 * 1024 * 1024


@dataclass(slots=True)
class _Kept:
    decode: Callable[[bytes], Any]
    raw: bytes
    value: Any
    readers_left: int


class DecodedRecords:
    """Decoded records of the topics that several consumers of this worker read."""

    def __init__(self, max_kept_bytes: int = MAX_KEPT_BYTES) -> None:
        self.max_kept_bytes = max_kept_bytes
        self.readers: dict[str, int] = {}
        self.hits = 0
        self._kept: OrderedDict[tuple[str, int, int], _Kept] = OrderedDict()
        self._kept_bytes = 0

    def add_reader(self, topic: str) -> None:
        """One more consumer of this worker reads ``topic`` (and decodes it through here)."""
        self.readers[topic] = self.readers.get(topic, 0) + 1

    def decode(self, decode: Callable[[bytes], T], topic: str, partition: int, offset: int, raw: bytes) -> T:
        """``decode(raw)``, or what another reader's ``decode`` of the same record gave (a
        list of its own when that is a list)."""
        place = (topic, partition, offset)
        kept = self._kept.get(place)
        if kept is not None and kept.decode is decode and kept.raw == raw:
            self.hits += 1
            kept.readers_left -= 1
            if kept.readers_left <= 0:
                self._drop(place)
            value: T = _own(kept.value)
            return value
        value = decode(raw)  # raises for a record that does not decode: nothing is kept
        others = self.readers.get(topic, 0) - 1
        if others > 0 and len(raw) <= self.max_kept_bytes:
            if kept is not None:
                self._drop(place)
            self._kept[place] = _Kept(decode, raw, _own(value), others)
            self._kept_bytes += len(raw)
            while self._kept_bytes > self.max_kept_bytes:
                self._drop(next(iter(self._kept)))
        return value

    def _drop(self, place: tuple[str, int, int]) -> None:
        self._kept_bytes -= len(self._kept.pop(place).raw)

    @property
    def kept(self) -> int:
        """Records decoded and kept for readers still to come."""
        return len(self._kept)


def _own(value: T) -> T:
    """A list the caller may keep or change without touching another reader's."""
    return list(value) if isinstance(value, list) else value  # type: ignore[return-value]  # a list of the same items

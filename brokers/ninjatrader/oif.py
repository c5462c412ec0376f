"""The file route: order instruction files in, information update files out (N-oif, N-out).

Writing: each batch of lines becomes one ``oif<n>.txt``, written under a temporary name that
NinjaTrader ignores (it reads only ``oif*.txt``) and then linked to its final name, so
NinjaTrader never reads half a file and a name is never reused (the help guide warns that a
reused name can be skipped). ``<n>`` is the time in nanoseconds and a counter; ``os.link``
refuses an existing name, so two writers cannot overwrite each other. A full disk (ENOSPC), a
read-only or missing folder is ``BrokerUnavailable(sent=False)`` with the reason: the file was
not written, so the copy is surely not placed, and no temporary file is left behind.

Reading: the outgoing folder is polled every ``poll_s`` (20 ms). Polling rather than inotify:
no inotify library is installed here, the folder may be a network share inotify cannot watch,
and one listing per poll costs little. A file is read again only when its size or mtime
changed; one that cannot be parsed yet (NinjaTrader may be writing it) is tried on the next
poll and reported once if it stays unreadable.

Restarts: NinjaTrader wipes the outgoing folder when it starts (N-out). A sentinel file of our
own in that folder tells a wipe apart from "nothing happened": when it is gone, every order file
read before may be gone too, and :attr:`OifFolders.generation` moves on (``orders.lookup``).

Memory: what is remembered of a file goes with the file (an outgoing file wiped or deleted, an
instruction file NinjaTrader took), and the first complete listing after a wipe tells the adapter
which order files NinjaTrader kept (its replay, ``forgetting.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import itertools
import logging
import os
import time
from pathlib import Path

from ...common.tasks import stop_task
from ..errors import BrokerUnavailable
from .feed import FeedListener
from .states import (
    read_connection_file,
    read_order_file,
    read_position_file,
    split_position_file_name,
)

log = logging.getLogger(__name__)
SENTINEL = ".copytrader-alive"
SWEEP_AT_LEAST = 64  # instruction files remembered before the first sweep of those taken
MAX_FILE_BYTES = 4096  # an outgoing file holds one short line; anything bigger is not NinjaTrader's
_FOLDER_ERRORS = {
    errno.ENOSPC: "the disk holding it is full",
    errno.EDQUOT: "the disk quota is used up",
    errno.EROFS: "it is on a read-only file system",
    errno.EACCES: "it is not writable",
    errno.EPERM: "it is not writable",
    errno.ENOENT: "it does not exist",
}


def folder_error(folder: Path, exc: OSError) -> BrokerUnavailable:
    why = _FOLDER_ERRORS.get(exc.errno or 0, exc.strerror or str(exc))
    code = "OIF_FOLDER_FULL" if exc.errno in (errno.ENOSPC, errno.EDQUOT) else "OIF_FOLDER_UNWRITABLE"
    return BrokerUnavailable(
        f"ninjatrader: cannot write an order instruction file into {folder}: {why} ({exc}); nothing was placed",
        code=code,
        sent=False,
    )


def _read_text(path: str) -> str:
    """A file's text by its plain path: ``pathlib`` would intern every order file's name."""
    with open(path, encoding="ascii") as handle:
        return handle.read()


class OifFolders:
    def __init__(
        self, incoming: Path, outgoing: Path, accounts: list[str], listener: FeedListener, poll_s: float
    ) -> None:
        self.incoming, self.outgoing = incoming, outgoing
        self.accounts = accounts
        self.listener = listener
        self.poll_s = poll_s
        self.generation = 0
        self.sentinel_was_there = False  # the folder was not wiped since an earlier session began
        self._wipe_untold = False  # a wipe seen that no complete listing has told the listener of
        self._seen: dict[str, tuple[int, int]] = {}
        self._unreadable: dict[str, tuple[int, int]] = {}
        self._counter = itertools.count(1)
        self._task: asyncio.Task[None] | None = None
        self.written: dict[str, Path] = {}  # ORDER ID → the instruction file that carried it
        self._sweep_at = SWEEP_AT_LEAST

    async def open(self) -> None:
        for folder in (self.incoming, self.outgoing):
            if not folder.is_dir():
                raise BrokerUnavailable(
                    f"ninjatrader: folder {folder} does not exist; is NinjaTrader 8's documents folder right?",
                    sent=False,
                )
        sentinel = self.outgoing / SENTINEL
        self.sentinel_was_there = sentinel.exists()
        self._wipe_untold = not self.sentinel_was_there  # NinjaTrader may have restarted meanwhile
        self._touch_sentinel()
        self.scan()
        self._task = asyncio.get_running_loop().create_task(self._poll(), name="oif-outgoing")

    async def close(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            await stop_task(task)

    def _touch_sentinel(self) -> None:
        try:
            (self.outgoing / SENTINEL).write_text("written by CopyTrader to notice NinjaTrader restarts\n")
        except OSError as exc:
            self.listener.on_bad_input(f"cannot write {SENTINEL} into {self.outgoing}: {exc}")

    # -- writing -------------------------------------------------------------------------
    def write(self, lines: list[str], order_ids: list[str]) -> Path:
        """One instruction file holding ``lines``; ``BrokerUnavailable(sent=False)`` if it
        could not be written whole."""
        text = "".join(f"{line}\r\n" for line in lines)
        name = f"oif{time.time_ns()}{next(self._counter):06d}.txt"
        temp = self.incoming / f".{name}.tmp"
        final = self.incoming / name
        try:
            try:
                with open(temp, "x", encoding="ascii", newline="") as handle:
                    handle.write(text)
                    handle.flush()
                    os.fsync(handle.fileno())
                os.link(temp, final)
            finally:
                with contextlib.suppress(OSError):
                    os.unlink(temp)
        except OSError as exc:
            raise folder_error(self.incoming, exc) from exc
        for order_id in order_ids:
            self.written[order_id] = final
        if len(self.written) >= self._sweep_at:
            self._sweep_written()
        return final

    def _sweep_written(self) -> None:
        """Forget instruction files NinjaTrader took: once gone, a file never comes back (names
        are never reused), so ``pending`` would say False for them anyway. Swept when the map
        doubled, so the cost per write stays constant."""
        for order_id in [order_id for order_id, path in self.written.items() if not path.exists()]:
            del self.written[order_id]
        self._sweep_at = max(SWEEP_AT_LEAST, 2 * len(self.written))

    def pending(self, order_id: str) -> bool:
        """Is the instruction file that carried ``order_id`` still waiting in incoming?"""
        path = self.written.get(order_id)
        return path is not None and path.exists()

    # -- reading -------------------------------------------------------------------------
    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(self.poll_s)
            try:
                self.scan()
            except Exception:  # one odd file must not stop the reader
                log.exception("ninjatrader: reading %s failed", self.outgoing)

    def scan(self) -> None:
        if not (self.outgoing / SENTINEL).exists():
            self.generation += 1
            self._wipe_untold = True
            self._seen.clear()
            self._touch_sentinel()
        try:
            entries = list(os.scandir(self.outgoing))
        except OSError as exc:
            self.listener.on_bad_input(f"cannot read {self.outgoing}: {exc}")
            return
        entries = [entry for entry in entries if entry.name.endswith(".txt") and not entry.name.startswith(".")]
        if len(self._seen) > len(entries) or self._unreadable:  # files went (by hand: a wipe clears)
            names = {entry.name for entry in entries}
            for gone in [name for name in self._seen if name not in names]:
                del self._seen[gone]
            for gone in [name for name in self._unreadable if name not in names]:
                del self._unreadable[gone]
        for entry in entries:
            try:
                stat = entry.stat()
            except OSError:
                continue
            mark = (stat.st_mtime_ns, stat.st_size)
            if self._seen.get(entry.name) == mark:
                continue
            if stat.st_size > MAX_FILE_BYTES:
                self._seen[entry.name] = mark
                self.listener.on_bad_input(f"outgoing file {entry.name!r} has {stat.st_size} bytes; not read")
                continue
            try:
                text = _read_text(entry.path)
            except (OSError, UnicodeDecodeError):
                continue
            if self._read(entry.name, text, mark):
                self._seen[entry.name] = mark
        if self._wipe_untold:  # the first complete listing since a wipe: what NinjaTrader kept
            self._wipe_untold = False
            self.listener.on_order_files({entry.name[: -len(".txt")] for entry in entries})

    def read_order(self, order_id: str) -> bool:
        """Read ``<order_id>.txt`` now (a lookup asks fresher than the poll); True if it exists."""
        name = f"{order_id}.txt"
        path = os.path.join(self.outgoing, name)
        try:
            stat = os.stat(path)
            if stat.st_size > MAX_FILE_BYTES:
                return False
            text = _read_text(path)
        except (OSError, UnicodeDecodeError):
            return False
        return self._read(name, text, (stat.st_mtime_ns, stat.st_size))

    def _read(self, name: str, text: str, mark: tuple[int, int]) -> bool:
        """Hand one file's fact to the listener; False when it cannot be parsed (yet)."""
        try:
            position = split_position_file_name(name, self.accounts)
            if position is not None:
                self.listener.on_position(position[1], position[0], read_position_file(text))
                return True
            if text.strip().upper() in ("CONNECTED", "DISCONNECTED"):
                self.listener.on_connection(read_connection_file(text))
                return True
            if name.endswith("_Position.txt"):
                return True  # another account's position: not ours to read
            self.listener.on_order(name[: -len(".txt")], read_order_file(text))
            return True
        except ValueError as exc:
            if self._unreadable.get(name) != mark:  # once per content, not every poll
                self._unreadable[name] = mark
                self.listener.on_bad_input(f"outgoing file {name!r} not understood: {exc}")
            return False

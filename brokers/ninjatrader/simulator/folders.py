"""The simulated file interface: NinjaTrader's ``incoming`` and ``outgoing`` folders.

NinjaTrader processes ``oif*.txt`` files in ``incoming`` as they are written, one command per
line, and deletes them (N-oif); it writes ``outgoing`` files (N-out): ``<orderId>.txt`` on each
state change of an order placed with an ORDER ID, ``<Instrument Exchange>_<Account>_Position.txt``
on each position change, ``<Connection>.txt`` on each connection change; the folder is wiped
when NinjaTrader restarts (:meth:`FolderService.wipe`). This simulator writes each outgoing
file under a temporary name and renames it, so a reader never sees half a file; NinjaTrader
does not promise that, so the adapter reads a file it cannot parse again on its next poll.

Polling, not inotify: the folders live on the same disk as the process, a poll every
``poll_s`` (20 ms) costs one directory listing, and it needs no dependency.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
from pathlib import Path

from ...simkernel.latency import Latency
from ..states import OrderReport, PositionReport, position_file_name
from .desk import NtDesk

log = logging.getLogger(__name__)
_OIF_NAME = re.compile(r"^oif.*\.txt$", re.IGNORECASE)
EXCHANGE = "Globex"


def write_atomically(folder: Path, name: str, text: str) -> None:
    """Plain ``os.path`` strings, not ``Path`` objects: ``pathlib`` interns every name it parses,
    and a new file name per order grew Python's interned-string table by about 1 MB within a
    few thousand orders (a one-off step, but it hid the adapter's memory per order, #18)."""
    path = os.path.join(folder, name)
    temp = os.path.join(folder, f".{name}.{os.getpid()}.tmp")
    with open(temp, "w", encoding="ascii", newline="") as handle:
        handle.write(text)
    os.replace(temp, path)


def _take(path: str) -> bytes:
    """Read a small instruction file and delete it, as NinjaTrader does with what it processed."""
    with open(path, "rb") as handle:
        data = handle.read()
    os.unlink(path)
    return data


class FolderService:
    def __init__(
        self, desk: NtDesk, incoming: Path, outgoing: Path, latency: Latency, *, connection_name: str, poll_s: float
    ) -> None:
        self.desk = desk
        self.incoming, self.outgoing = incoming, outgoing
        self.latency = latency
        self.connection_name = connection_name
        self.poll_s = poll_s
        self.files_taken = 0
        self.paused = False  # test hook: NinjaTrader is busy (files wait in incoming)
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self.incoming.mkdir(parents=True, exist_ok=True)
        self.outgoing.mkdir(parents=True, exist_ok=True)
        self.write_connection(self.desk.connected)
        self._task = asyncio.get_running_loop().create_task(self._watch(), name="nt-sim-incoming")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _watch(self) -> None:
        while True:
            if not self.paused:
                try:
                    await self.take_files()
                except Exception:  # one unreadable file must not stop the watcher
                    log.exception("NinjaTrader simulator: reading the incoming folder failed")
            await asyncio.sleep(self.poll_s)

    async def take_files(self) -> None:
        """Process every ``oif*.txt`` now in ``incoming``, oldest first, and delete it."""
        try:
            entries = [e for e in os.scandir(self.incoming) if e.is_file() and _OIF_NAME.match(e.name)]
        except FileNotFoundError:
            return
        entries.sort(key=lambda e: (e.stat().st_mtime_ns, e.name))
        for entry in entries:
            try:
                data = _take(entry.path)
            except OSError:
                continue  # still being written or gone: next poll
            self.files_taken += 1
            try:
                text = data.decode("ascii")
            except UnicodeDecodeError:
                self.desk._refuse(repr(data[:200]), "file is not ASCII text")
                continue
            for line in text.splitlines():
                if line.strip():
                    await self.latency.wait()
                    self.desk.execute(line)

    # -- outgoing ------------------------------------------------------------------------
    def write_order(self, account: str, nt_id: str, report: OrderReport, tagged: bool) -> None:
        if tagged:  # only orders placed with an ORDER ID get a file (N-out)
            self._write(f"{nt_id}.txt", report.line())

    def write_position(self, account: str, instrument: str, report: PositionReport) -> None:
        self._write(position_file_name(instrument, EXCHANGE, account), report.line())

    def write_connection(self, connected: bool) -> None:
        self._write(f"{self.connection_name}.txt", "CONNECTED" if connected else "DISCONNECTED")

    def _write(self, name: str, text: str) -> None:
        try:
            write_atomically(self.outgoing, name, text + "\r\n")
        except OSError:
            log.exception("NinjaTrader simulator: cannot write %s", name)

    def wipe(self) -> None:
        """NinjaTrader restarted: the outgoing folder is emptied (N-out)."""
        for entry in os.scandir(self.outgoing):
            if entry.is_file():
                with contextlib.suppress(OSError):
                    os.unlink(entry.path)
        self.write_connection(self.desk.connected)

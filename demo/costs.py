"""What a copy costs the machine, from the operating system's own accounting.

The bench samples ``/proc/<pid>/stat`` (user + system CPU time, in clock ticks) and
``/proc/<pid>/status`` (resident memory) for every worker, its own process (the observer and the
in-process simulators) and the Kafka broker, at the start and the end of the measured window.
Each process's background rate (heartbeats, fetch polls, timers, the price feed) is measured
twice: for ``IDLE_BEFORE_S`` before the first leader action, with every worker ready, and for
``IDLE_WINDOW_S`` after the window; the lower of the two is taken, since either may hold work that
is not idle (start-up's tail before, catching up after). The window ends when every worker is
back within ``QUIET_MARGIN_MS_PER_S`` of that background rate, so work that runs behind (the
niced tracker, the database sink) is counted. The CPU used over the window minus the background
rate times its length, divided by the copies placed in it, is the marginal cost per copy —
what the difference of two runs of different lengths gives — and the sum over the workers is
``cpu_ms_per_copy``. The raw figure is printed beside it. Kafka's bytes per copy come from the sizes of the run's topic
segments in the broker's log directories (this machine's broker only; ``None`` elsewhere).
Resident memory is also sampled every ``RSS_EVERY_S`` through the window: each process reports
its peak and its growth (MiB per minute over the window's second half), so a long run shows
whether memory levels off.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
KIB_PER_MIB = 1024  # VmRSS is printed in kB
KAFKA_MAIN = "kafka.Kafka"
#: Ending the window: every worker under this CPU rate over one step (10 % of a core), and
#: within ``QUIET_MARGIN_MS_PER_S`` of its background rate when that was measured before. A
#: fixed limit alone let a niced tracker still catching up at 93 ms/s (background 37) count
#: as quiet, and its catching up then counted as background (#16, session 31).
QUIET_MS_PER_S = 100.0
QUIET_MARGIN_MS_PER_S = 25.0
#: One step of the quiet check: a second, so the rate's resolution (a clock tick, 10 ms, per
#: step) is finer than the margin.
QUIET_STEP_S = 1.0
QUIET_TIMEOUT_S = 60.0
#: Before the first leader action and after the window, each process's background rate is
#: measured over these spans.
IDLE_BEFORE_S = 3.0
IDLE_WINDOW_S = 3.0
#: Resident memory is sampled this often while the window is open (a 10-minute run: 60 points).
RSS_EVERY_S = 10.0
#: Growth is a slope over the window's second half (the first holds start-up and warm caches),
#: given once that half has at least this many samples.
RSS_MIN_SAMPLES = 4


@dataclass(frozen=True, slots=True)
class ProcessSample:
    """One process's CPU time (ms, user + system) and resident memory (MiB) at ``at``."""

    cpu_ms: float
    rss_mib: float
    at: float


def sample(pid: int) -> ProcessSample | None:
    """The process's counters now; ``None`` when it is gone (a killed worker, a stopped broker)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: split after its last ')'.
    fields = stat[stat.rindex(")") + 2 :].split()
    utime, stime = int(fields[11]), int(fields[12])
    rss_kib = next((int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:")), 0)
    return ProcessSample(
        cpu_ms=(utime + stime) * 1000 / CLOCK_TICKS, rss_mib=rss_kib / KIB_PER_MIB, at=time.monotonic()
    )


def sample_all(pids: Mapping[str, int]) -> dict[str, ProcessSample]:
    samples = {name: sample(pid) for name, pid in pids.items()}
    return {name: s for name, s in samples.items() if s is not None}


def kafka_broker_pid(bootstrap: str | None = None) -> int | None:
    """The local Kafka broker's pid (its JVM runs ``kafka.Kafka``) — the one listening on
    ``bootstrap``'s port when given, as a machine may run more than one."""
    port = bootstrap.rsplit(":", 1)[-1].split(",")[0] if bootstrap else None
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if KAFKA_MAIN.encode() not in argv:
            continue
        if port is None or _listens_on(argv, port):
            return int(entry.name)
    return None


def _listens_on(argv: list[bytes], port: str) -> bool:
    """Does the broker's server.properties (its last argument) list a listener on ``port``?"""
    try:
        properties = Path(next(a for a in reversed(argv) if a).decode()).read_text()
    except (OSError, StopIteration, UnicodeDecodeError):
        return False
    for line in properties.splitlines():
        key, _, value = line.partition("=")
        if key.strip() == "listeners":
            return any(listener.strip().endswith(f":{port}") for listener in value.split(","))
    return False


def _kafka_log_dirs(pid: int) -> list[Path]:
    """``log.dirs`` of the broker's server.properties (the last argument of its command line)."""
    try:
        argv = [a.decode() for a in Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0") if a]
        properties = Path(argv[-1]).read_text()
    except (OSError, IndexError, UnicodeDecodeError):
        return []
    for line in properties.splitlines():
        key, _, value = line.partition("=")
        if key.strip() in ("log.dirs", "log.dir"):
            return [Path(d.strip()) for d in value.split(",") if d.strip()]
    return []


def topic_bytes(prefixes: Iterable[str], broker_pid: int | None) -> int | None:
    """Bytes in the segments of every topic whose name starts with one of ``prefixes``."""
    if broker_pid is None:
        return None
    dirs = _kafka_log_dirs(broker_pid)
    if not dirs:
        return None
    wanted = tuple(prefixes)
    total = 0
    for log_dir in dirs:
        try:
            partitions = [p for p in log_dir.iterdir() if p.is_dir() and p.name.startswith(wanted)]
        except OSError:
            continue
        for partition in partitions:
            try:
                total += sum(f.stat().st_size for f in partition.glob("*.log"))
            except OSError:
                continue  # a partition deleted under us: the run's own topics are not
    return total


@dataclass(slots=True)
class CostMeter:
    """``start()`` when the measured actions begin; ``stop_when_quiet()`` ends the window once
    every worker has caught up, then measures each process's background rate while idle."""

    pids: dict[str, int]
    workers: tuple[str, ...]
    topic_prefixes: tuple[str, ...]
    broker_pid: int | None = None
    _start: dict[str, ProcessSample] | None = None
    _end: dict[str, ProcessSample] | None = None
    _idle_end: dict[str, ProcessSample] | None = None
    _idle_before: dict[str, float] = field(default_factory=dict)
    _bytes_start: int | None = None
    _bytes_end: int | None = None
    rss_every_s: float = RSS_EVERY_S
    _rss: dict[str, list[tuple[float, float]]] = field(default_factory=dict)
    _rss_task: asyncio.Task[None] | None = None

    async def measure_background(self, seconds: float = IDLE_BEFORE_S) -> None:
        """Each process's CPU rate over ``seconds`` with nothing to copy (call it with every
        worker ready, before the first leader action)."""
        before = sample_all(self.pids)
        await asyncio.sleep(seconds)
        after = sample_all(self.pids)
        self._idle_before = {name: _rate(before.get(name), after.get(name)) for name in after}

    def start(self) -> None:
        self._start = sample_all(self.pids)
        self._bytes_start = topic_bytes(self.topic_prefixes, self.broker_pid)
        self._note_rss(self._start)
        try:
            self._rss_task = asyncio.get_running_loop().create_task(self._track_rss())
        except RuntimeError:  # no loop (a unit test driving the meter by hand): start and end only
            self._rss_task = None

    def stop(self) -> None:
        self._end = sample_all(self.pids)
        self._bytes_end = topic_bytes(self.topic_prefixes, self.broker_pid)
        self._note_rss(self._end)
        if self._rss_task is not None:
            self._rss_task.cancel()
            self._rss_task = None

    def _note_rss(self, samples: Mapping[str, ProcessSample]) -> None:
        for name, s in samples.items():
            self._rss.setdefault(name, []).append((s.at, s.rss_mib))

    async def _track_rss(self) -> None:
        """Resident memory every ``rss_every_s`` while the window is open: a process that
        grows with the run shows as a slope, which start and end alone cannot tell from
        caches filling once."""
        while self._end is None:
            await asyncio.sleep(self.rss_every_s)
            if self._end is None:
                self._note_rss(sample_all(self.pids))

    async def stop_when_quiet(
        self, timeout: float = QUIET_TIMEOUT_S, step: float = QUIET_STEP_S, idle_s: float = IDLE_WINDOW_S
    ) -> None:
        """End the window once every worker is quiet (the niced tracker runs behind the copy
        path, and its catching up is part of what the copies cost), then sample ``idle_s``
        of nothing to do: the background rate that is not a cost of the copies."""
        deadline = time.monotonic() + timeout
        previous = sample_all(self.pids)
        while time.monotonic() < deadline:
            await asyncio.sleep(step)
            now = sample_all(self.pids)
            if all(_rate(previous.get(n), now.get(n)) <= self._quiet_limit(n) for n in self.workers):
                break
            previous = now
        self.stop()
        if idle_s > 0:
            await asyncio.sleep(idle_s)
            self._idle_end = sample_all(self.pids)

    def _quiet_limit(self, name: str) -> float:
        """The CPU rate under which a worker counts as done with the window's copies."""
        background = self._idle_before.get(name)
        if background is None:
            return QUIET_MS_PER_S
        return min(QUIET_MS_PER_S, background + QUIET_MARGIN_MS_PER_S)

    def _idle_after(self, name: str) -> float | None:
        if not (self._end and self._idle_end):
            return None
        return _rate(self._end.get(name), self._idle_end.get(name))

    def _idle_rate(self, name: str) -> float:
        """CPU ms per second the process spent with nothing to copy: the lower of the rates
        measured before and after the window (0 when neither was)."""
        rates = [r for r in (self._idle_before.get(name), self._idle_after(name)) if r is not None]
        return min(rates) if rates else 0.0

    @property
    def started(self) -> bool:
        return self._start is not None

    @property
    def finished(self) -> bool:
        return self._end is not None

    def report(self, copies: int) -> dict[str, object]:
        """Per process: CPU ms per copy, idle CPU ms per second, RSS at start and end, its peak
        (MiB) and its growth over the window's second half (MiB per minute)."""
        if not (self._start and self._end) or copies <= 0:
            return {"cpu_ms_per_copy": None, "processes": {}, "kafka_bytes_per_copy": None}
        processes: dict[str, dict[str, Any]] = {}
        for name, end in self._end.items():
            begin = self._start.get(name)
            if begin is None:
                continue
            idle_rate = self._idle_rate(name)
            used = end.cpu_ms - begin.cpu_ms
            # Marginal cost, as the difference of two runs would give it: the background rate
            # (heartbeats, metadata refreshes) over the window is not a cost of the copies.
            marginal = max(0.0, used - idle_rate * (end.at - begin.at))
            processes[name] = {
                "cpu_ms_per_copy": round(marginal / copies, 4),
                "cpu_ms_per_copy_raw": round(used / copies, 4),
                "idle_cpu_ms_per_s": round(idle_rate, 2),
                "idle_cpu_ms_per_s_before": _rounded(self._idle_before.get(name)),
                "idle_cpu_ms_per_s_after": _rounded(self._idle_after(name)),
                "rss_mib_start": round(begin.rss_mib, 1),
                "rss_mib_end": round(end.rss_mib, 1),
                **rss_trend(self._rss.get(name, [])),
            }
        worker_total = sum(float(processes[n]["cpu_ms_per_copy"] or 0.0) for n in self.workers if n in processes)
        kafka_bytes = None
        if self._bytes_start is not None and self._bytes_end is not None:
            kafka_bytes = round((self._bytes_end - self._bytes_start) / copies, 1)
        return {
            "cpu_ms_per_copy": round(worker_total, 4),
            "window_s": round(next(iter(self._end.values())).at - next(iter(self._start.values())).at, 3),
            "processes": processes,
            "kafka_bytes_per_copy": kafka_bytes,
        }


def rss_trend(points: Sequence[tuple[float, float]]) -> dict[str, Any]:
    """Peak resident memory, its growth in MiB per minute (the least-squares slope over the
    second half of the samples; ``None`` with fewer than ``RSS_MIN_SAMPLES`` there) and the
    curve minute by minute."""
    if not points:
        return {"rss_mib_peak": None, "rss_growth_mib_per_min": None, "rss_mib_by_minute": []}
    peak = round(max(rss for _, rss in points), 1)
    by_minute = _by_minute(points)
    half = list(points[len(points) // 2 :])
    if len(half) < RSS_MIN_SAMPLES:
        return {"rss_mib_peak": peak, "rss_growth_mib_per_min": None, "rss_mib_by_minute": by_minute}
    mean_t = sum(t for t, _ in half) / len(half)
    mean_r = sum(r for _, r in half) / len(half)
    spread_t = sum((t - mean_t) ** 2 for t, _ in half)
    if spread_t <= 0:
        return {"rss_mib_peak": peak, "rss_growth_mib_per_min": None, "rss_mib_by_minute": by_minute}
    slope_per_s = sum((t - mean_t) * (r - mean_r) for t, r in half) / spread_t
    return {
        "rss_mib_peak": peak,
        "rss_growth_mib_per_min": round(slope_per_s * 60.0, 3),
        "rss_mib_by_minute": by_minute,
    }


def _by_minute(points: Sequence[tuple[float, float]]) -> list[float]:
    """The first sample of each whole minute since the window opened, then the last one: a
    curve short enough to read in the JSON line (an hour's run gives about 60 numbers)."""
    start = points[0][0]
    curve: dict[int, float] = {}
    for at, rss in points:
        curve.setdefault(int((at - start) // 60), round(rss, 1))
    return [*curve.values(), round(points[-1][1], 1)]


def _rounded(rate: float | None) -> float | None:
    return None if rate is None else round(rate, 2)


def _rate(before: ProcessSample | None, after: ProcessSample | None) -> float:
    """CPU ms per second between two samples of one process (0 when either is missing)."""
    if before is None or after is None or after.at <= before.at:
        return 0.0
    return (after.cpu_ms - before.cpu_ms) / (after.at - before.at)


__all__ = [
    "IDLE_WINDOW_S",
    "CostMeter",
    "ProcessSample",
    "kafka_broker_pid",
    "rss_trend",
    "sample",
    "sample_all",
    "topic_bytes",
]

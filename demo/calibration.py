"""A yardstick for the machine a benchmark ran on.

Latency figures from a shared 2-core VM and from a quiet workstation are not comparable on their
own. Each bench run therefore also measures two things that depend only on the machine: how late
a 2 ms ``asyncio.sleep`` wakes up (the scheduler's jitter, which sets the floor of every
percentile), and how long a fixed pure-Python workload takes (the CPU's speed for our kind of
code). Two runs' figures are comparable when their calibrations are.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import time

from ..common.stats import latency_summary

SLEEP_MS = 2.0
SLEEP_ROUNDS = 250
#: A fixed workload shaped like the copy path's own (dict/str work and hashing), about 40 ms on a quiet 2-core VM.
WORK_ROUNDS = 2_000


async def sleep_jitter(rounds: int = SLEEP_ROUNDS, sleep_ms: float = SLEEP_MS) -> dict[str, float | None]:
    """How late each 2 ms sleep wakes up, in ms (p50/p95/p99/max of the overshoot)."""
    late = []
    for _ in range(rounds):
        begin = time.perf_counter()
        await asyncio.sleep(sleep_ms / 1000)
        late.append(max(0.0, (time.perf_counter() - begin) * 1000 - sleep_ms))
    return latency_summary(late)


def cpu_workload_ms(rounds: int = WORK_ROUNDS) -> float:
    """Wall time of a fixed CPU-bound workload, best of three (ms)."""
    best = float("inf")
    for _ in range(3):
        begin = time.perf_counter()
        digest = b""
        for n in range(rounds):
            record = {"account": f"F{n % 200:04d}", "qty": n % 7, "side": "buy" if n & 1 else "sell"}
            digest = hashlib.sha256(repr(sorted(record.items())).encode() + digest).digest()
        best = min(best, (time.perf_counter() - begin) * 1000)
    return round(best, 2)


async def calibrate() -> dict[str, object]:
    """The machine's yardstick, measured while nothing of the run is busy yet."""
    jitter = await sleep_jitter()
    return {
        "sleep_2ms_late_ms": {k: jitter[k] for k in ("p50", "p99", "max")},
        "cpu_workload_ms": await asyncio.to_thread(cpu_workload_ms),
        "cpus": _cpu_count(),
        "load_1m": _load(),
    }


async def broker_census(bootstrap_servers: str) -> dict[str, int] | None:
    """How many topics and partitions the Kafka broker holds before the run adds its own.

    Why: a broker's idle CPU grows with its partitions (checkpoints, log and index upkeep for
    each), and it shares the run's two cores. A development broker that kept every test's and
    bench's topics (1,784 topics here once) idled at 155 ms of CPU a second against 69 after
    they were deleted, so two runs' Kafka and latency figures compare only with this too.
    None when the broker cannot be asked (the run reports that elsewhere).
    """
    from aiokafka.client import AIOKafkaClient

    client = AIOKafkaClient(bootstrap_servers=bootstrap_servers)
    try:
        await client.bootstrap()
        metadata = await client.fetch_all_metadata()
        topics = [t for t in metadata.topics() if not t.startswith("__")]
        return {"topics": len(topics), "partitions": sum(len(metadata.partitions_for_topic(t) or ()) for t in topics)}
    except Exception:  # noqa: BLE001 - a yardstick, never a reason to fail the run
        return None
    finally:
        await client.close()


def _cpu_count() -> int:
    return len(os.sched_getaffinity(0))


def _load() -> float | None:
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return None


__all__ = ["broker_census", "calibrate", "cpu_workload_ms", "sleep_jitter"]

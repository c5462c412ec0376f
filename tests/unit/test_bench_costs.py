"""The bench's cost accounting (/proc), its calibration and the median of repeated runs."""

from __future__ import annotations

import asyncio
import hashlib
import mmap
import os
from pathlib import Path

import pytest

from copytrader.demo import costs
from copytrader.demo.calibration import cpu_workload_ms, sleep_jitter
from copytrader.demo.costs import CostMeter, ProcessSample, sample
from copytrader.demo.repeats import median_of, readable, spread


def test_sample_reads_this_process_cpu_and_memory() -> None:
    before = sample(os.getpid())
    assert before is not None
    digest = b""
    for _ in range(200_000):  # burn some CPU so the counter must move
        digest = hashlib.sha256(digest).digest()
    after = sample(os.getpid())
    assert after is not None
    assert after.cpu_ms > before.cpu_ms
    assert after.rss_mib > 1.0


def test_sample_of_a_gone_process_is_none() -> None:
    assert sample(2**22 + 12345) is None


def _meter() -> CostMeter:
    return CostMeter({"front": 1, "back": 2, "observer": 3}, ("front", "back"), ("run.",))


def test_cost_per_copy_is_marginal_over_the_idle_rate() -> None:
    meter = _meter()
    # window from t=10 to t=20; then 2 idle seconds in which front uses 10 ms (5 ms/s).
    meter._start = {
        n: ProcessSample(cpu, 50.0, 10.0) for n, cpu in (("front", 150.0), ("back", 200.0), ("observer", 0))
    }
    meter._end = {n: ProcessSample(cpu, 60.0, 20.0) for n, cpu in (("front", 350.0), ("back", 400.0), ("observer", 90))}
    meter._idle_end = {
        n: ProcessSample(cpu, 60.0, 22.0) for n, cpu in (("front", 360.0), ("back", 400.0), ("observer", 90))
    }
    report = meter.report(copies=100)
    front = report["processes"]["front"]  # type: ignore[index]
    # 200 ms used, 50 ms of it the idle rate over 10 s → 150 ms / 100 copies.
    assert front["cpu_ms_per_copy"] == pytest.approx(1.5)
    assert front["cpu_ms_per_copy_raw"] == pytest.approx(2.0)
    assert front["idle_cpu_ms_per_s"] == pytest.approx(5.0)
    assert front["rss_mib_end"] == 60.0
    # The observer is reported but is not a worker: the sum is front + back only.
    assert report["cpu_ms_per_copy"] == pytest.approx(1.5 + 2.0)
    assert report["processes"]["observer"]["cpu_ms_per_copy"] == pytest.approx(0.9)  # type: ignore[index]


def test_background_is_the_lower_of_the_rates_before_and_after_the_window() -> None:
    """Right after start-up a worker may still be busy (before), a niced one may still catch
    up (after): neither is idle, and the lower rate is the closer to it."""
    meter = _meter()
    meter._idle_before = {"front": 40.0, "back": 2.0}
    meter._start = {n: ProcessSample(0.0, 50.0, 10.0) for n in ("front", "back", "observer")}
    meter._end = {n: ProcessSample(1000.0, 50.0, 20.0) for n in ("front", "back", "observer")}
    meter._idle_end = {n: ProcessSample(1000.0 + 20.0, 50.0, 22.0) for n in ("front", "back", "observer")}
    processes = meter.report(copies=100)["processes"]
    front, back, observer = (processes[n] for n in ("front", "back", "observer"))  # type: ignore[index]
    assert (front["idle_cpu_ms_per_s_before"], front["idle_cpu_ms_per_s_after"]) == (40.0, 10.0)
    assert front["idle_cpu_ms_per_s"] == 10.0  # (1000 - 10 ms/s × 10 s) / 100 copies
    assert front["cpu_ms_per_copy"] == pytest.approx(9.0)
    assert back["idle_cpu_ms_per_s"] == 2.0  # the rate before was the lower one
    assert back["cpu_ms_per_copy"] == pytest.approx(9.8)
    assert observer["idle_cpu_ms_per_s_before"] is None and observer["idle_cpu_ms_per_s"] == 10.0


def test_a_worker_still_catching_up_under_the_fixed_limit_keeps_the_window_open(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The tracker's background is 30 ms/s; at 90 ms/s (under the fixed 100) it is still
    writing the window's copies, so the window stays open until it is back near 30."""
    rates = iter([90.0, 90.0, 90.0, 45.0, 45.0])
    clock = {"at": 0.0, "cpu": 0.0}

    def scripted(pids: object) -> dict[str, ProcessSample]:
        clock["cpu"] += next(rates, 45.0) if clock["at"] else 0.0
        clock["at"] += 1.0
        return {"tracker": ProcessSample(clock["cpu"], 10.0, clock["at"])}

    monkeypatch.setattr(costs, "sample_all", scripted)
    meter = CostMeter({"tracker": 1}, ("tracker",), ("run.",))
    meter._idle_before = {"tracker": 30.0}
    assert meter._quiet_limit("tracker") == 30.0 + costs.QUIET_MARGIN_MS_PER_S
    meter.start()
    asyncio.run(meter.stop_when_quiet(timeout=5.0, step=0.0, idle_s=0.0))
    # Samples one a second: start, then 90, 90, 90 ms/s (open), 45 (quiet), and stop's own.
    assert meter._end is not None and meter._end["tracker"].at == 6.0
    # Without a background measured first, the fixed limit alone would have ended it at once.
    assert CostMeter({"x": 1}, ("x",), ("run.",))._quiet_limit("x") == costs.QUIET_MS_PER_S


def test_background_is_measured_over_real_time() -> None:
    meter = CostMeter({"me": os.getpid()}, ("me",), ("run.",))
    asyncio.run(meter.measure_background(seconds=0.05))
    assert meter._idle_before["me"] >= 0.0


def test_no_copies_means_no_figure() -> None:
    meter = _meter()
    meter._start = meter._end = {"front": ProcessSample(1.0, 1.0, 1.0)}
    assert meter.report(copies=0)["cpu_ms_per_copy"] is None


def test_window_ends_when_workers_are_back_at_idle() -> None:
    meter = CostMeter({"me": os.getpid()}, ("me",), ("run.",))
    meter.start()
    asyncio.run(meter.stop_when_quiet(timeout=2.0, step=0.05, idle_s=0.1))
    assert meter.finished
    assert meter._idle_rate("me") >= 0.0


def test_topic_bytes_counts_only_the_runs_segments(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, size in (("run.orders.requests-0", 1000), ("run-front-positions-changelog-3", 24), ("other.x-0", 999)):
        partition = tmp_path / name
        partition.mkdir()
        (partition / "00000000000000000000.log").write_bytes(b"x" * size)
        (partition / "00000000000000000000.index").write_bytes(b"\0" * 4096)  # preallocated: not data
    monkeypatch.setattr(costs, "_kafka_log_dirs", lambda pid: [tmp_path])
    assert costs.topic_bytes(("run.", "run-"), broker_pid=1) == 1024
    assert costs.topic_bytes(("run.",), broker_pid=None) is None


def test_median_line_has_every_runs_spread() -> None:
    runs = [
        {
            "followers": 20,
            "internal_ms": {"p50": p50, "p99": p99},
            "cpu_ms_per_copy": cpu,
            "missing": 0,
            "duplicates": 0,
        }
        for p50, p99, cpu in ((10.0, 20.0, 0.5), (12.0, 40.0, 0.7), (11.0, 25.0, 0.6))
    ]
    runs[1]["costs"] = {"processes": {"back": {"cpu_ms_per_copy": 0.3, "rss_mib_end": 110.0}}}
    line = median_of(runs)
    assert line["median_of"] == 3
    assert line["internal_p50_ms"] == {"median": 11.0, "min": 10.0, "max": 12.0}
    assert line["internal_p99_ms"] == {"median": 25.0, "min": 20.0, "max": 40.0}
    assert line["cpu_ms_per_copy"] == {"median": 0.6, "min": 0.5, "max": 0.7}
    assert line["processes"]["back"]["cpu_ms_per_copy"] == {"median": 0.3, "min": 0.3, "max": 0.3}
    assert line["kafka_bytes_per_copy"] is None  # no run had it
    assert "internal p50 11 [10–12] ms" in readable(line)


def test_missing_and_duplicates_are_summed_not_medianed() -> None:
    runs = [{"followers": 2, "missing": m, "duplicates": d} for m, d in ((0, 0), (3, 1), (0, 0))]
    line = median_of(runs)
    assert (line["missing"], line["duplicates"]) == (3, 1)
    assert spread([]) is None


def test_calibration_measures_sleep_lateness_and_cpu_time() -> None:
    jitter = asyncio.run(sleep_jitter(rounds=20))
    assert jitter["n"] == 20
    assert jitter["p50"] is not None and jitter["p50"] >= 0.0
    assert cpu_workload_ms(rounds=200) > 0.0


def test_the_broker_is_found_by_its_listener_port(tmp_path: Path) -> None:
    properties = tmp_path / "server.properties"
    properties.write_text("node.id=1\nlisteners=PLAINTEXT://127.0.0.1:19092,CONTROLLER://127.0.0.1:19093\n")
    argv = [b"java", b"kafka.Kafka", str(properties).encode(), b""]
    assert costs._listens_on(argv, "19092")
    assert not costs._listens_on(argv, "9092")


def test_replicas_join_the_groups_of_back_and_front() -> None:
    from copytrader.demo.runner import worker_layout

    assert worker_layout(3) == [
        ("front", "ingest,fanout", "front"),
        ("back", "execute", "back"),
        ("tracker", "track,store,web", "tracker"),
    ]
    layout = worker_layout(3, executors=3, fanouts=2)
    assert [(n, g) for n, r, g in layout if r == "execute"] == [
        ("back", "back"),
        ("back-2", "back"),
        ("back-3", "back"),
    ]
    assert [(n, g) for n, r, g in layout if "fanout" in r] == [("front", "front"), ("fanout-2", "front")]
    assert sum("ingest" in r for _, r, _ in layout) == 1  # one leader watcher
    with pytest.raises(ValueError, match="3-process"):
        worker_layout(2, executors=2)
    with pytest.raises(ValueError, match="at most"):
        worker_layout(3, fanouts=4)


def test_the_five_process_layout_runs_each_watching_role_alone() -> None:
    """``bench --processes 5``: the tracker's roles apart, so the costs name the one that spends."""
    from copytrader.demo.runner import worker_layout

    layout = worker_layout(5)
    roles = [r for _, r, _ in layout]
    assert roles[2:] == ["track", "store", "web"]
    assert sorted(",".join(roles).split(",")) == sorted(["ingest", "fanout", "execute", "track", "store", "web"])
    assert len({g for _, _, g in layout}) == 5  # each its own consumer group


def test_rss_trend_tells_a_leak_from_a_level() -> None:
    level = [(float(t), 100.0 + (5.0 if t < 30 else 0.0)) for t in range(0, 600, 10)]
    leak = [(float(t), 100.0 + t * 0.5) for t in range(0, 600, 10)]  # 0.5 MiB/s = 30 MiB/min
    assert costs.rss_trend(level)["rss_growth_mib_per_min"] == pytest.approx(0.0)
    assert costs.rss_trend(level)["rss_mib_peak"] == 105.0
    assert costs.rss_trend(leak)["rss_growth_mib_per_min"] == pytest.approx(30.0)
    assert costs.rss_trend(leak)["rss_mib_by_minute"] == [100.0 + 30.0 * m for m in range(10)] + [395.0]
    short = costs.rss_trend([(0.0, 1.0), (1.0, 2.0)])
    assert short == {"rss_mib_peak": 2.0, "rss_growth_mib_per_min": None, "rss_mib_by_minute": [1.0, 2.0]}
    assert costs.rss_trend([]) == {"rss_mib_peak": None, "rss_growth_mib_per_min": None, "rss_mib_by_minute": []}


def test_meter_samples_memory_through_the_window() -> None:
    async def run() -> dict[str, object]:
        meter = CostMeter({"front": os.getpid()}, ("front",), ("run.",), rss_every_s=0.02)
        meter.start()
        hold = []
        for _ in range(12):
            # 2 MiB more at each step, on pages of its own: a bytearray may reuse memory the
            # allocator already holds (after other tests freed theirs), and not grow the RSS.
            pages = mmap.mmap(-1, 2 * 1024 * 1024)
            pages.write(b"x" * len(pages))
            hold.append(pages)
            await asyncio.sleep(0.03)
        meter.stop()
        assert len(meter._rss["front"]) >= 8  # start, end and the samples between
        return meter.report(copies=10)

    report = asyncio.run(run())
    front = report["processes"]["front"]  # type: ignore[index]
    assert front["rss_mib_peak"] >= front["rss_mib_start"] + 15  # type: ignore[operator]
    assert front["rss_growth_mib_per_min"] > 0  # type: ignore[operator]

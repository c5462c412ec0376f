"""Process-level tuning: a worker's logging level, fetch waits, frozen start-up heap; the local broker's JVM and index files."""

from __future__ import annotations

import contextlib
import gc
import logging
from collections.abc import Iterator
from pathlib import Path

import faust
import pytest

from copytrader.app.gc_tuning import IdleCollector, freeze_startup_heap
from copytrader.app.kafka_local import INDEX_BYTES, LocalKafka, index_bytes_for, index_entries
from copytrader.app.worker import CopyTraderWorker
from copytrader.core.settings import Settings


@pytest.fixture
def root_logger() -> Iterator[logging.Logger]:
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    root.handlers = [logging.StreamHandler()]
    yield root
    root.setLevel(level)
    root.handlers = handlers


@pytest.mark.parametrize("worker_class, debug_enabled", [(faust.Worker, True), (CopyTraderWorker, False)])
def test_a_warn_level_worker_builds_no_debug_records(
    root_logger: logging.Logger, worker_class: type, debug_enabled: bool
) -> None:
    worker = worker_class.__new__(worker_class)  # only the logging hook is exercised
    worker.spinner = object()  # what faust.Worker.__init__ sets up
    worker_class.on_setup_root_logger(worker, root_logger, logging.WARN)
    # faust's own worker turns the root to DEBUG for its spinner (the trap this class avoids)
    assert logging.getLogger("aiokafka.conn").isEnabledFor(logging.DEBUG) is debug_enabled


def test_only_workers_that_produce_intents_send_without_a_linger() -> None:
    assert Settings(roles=("ingest", "fanout"), background_linger_ms=5).faust_linger_ms == 0
    assert Settings(roles=("fanout", "execute", "track"), background_linger_ms=5).faust_linger_ms == 0
    assert Settings(roles=("execute",), background_linger_ms=7).faust_linger_ms == 7
    for roles in (("track", "store", "web"), ("web",)):  # nothing waits on them (session 26)
        assert Settings(roles=roles, background_linger_ms=7, watch_linger_ms=30).faust_linger_ms == 30


@pytest.mark.parametrize("value", ["-1", "nan", "inf", "1e999", "5000"])
def test_a_linger_outside_0_to_a_second_is_refused(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("COPYTRADER_BACKGROUND_LINGER_MS", value)
    with pytest.raises(ValueError, match="COPYTRADER_BACKGROUND_LINGER_MS"):
        Settings.from_env()


def test_the_copy_path_fetch_wait_applies_only_where_a_faust_consumer_carries_copies() -> None:
    fast, slow = 5, 250
    assert (
        Settings(
            roles=("ingest", "fanout"), fanout_consumer="faust", fetch_max_wait_ms=fast, background_fetch_wait_ms=slow
        ).faust_fetch_wait_ms
        == fast
    )
    # the fan-out's direct consumer has the signals, so the worker's Faust consumer is background
    assert (
        Settings(roles=("ingest", "fanout"), fetch_max_wait_ms=fast, background_fetch_wait_ms=slow).faust_fetch_wait_ms
        == slow
    )
    assert (
        Settings(
            roles=("execute",), executor_consumer="faust", fetch_max_wait_ms=fast, background_fetch_wait_ms=slow
        ).faust_fetch_wait_ms
        == fast
    )
    # the direct consumer has the intents, so the executor's Faust consumer is background
    assert (
        Settings(roles=("execute",), fetch_max_wait_ms=fast, background_fetch_wait_ms=slow).faust_fetch_wait_ms == slow
    )
    assert (
        Settings(
            roles=("track", "store", "web"), fetch_max_wait_ms=fast, background_fetch_wait_ms=slow
        ).faust_fetch_wait_ms
        == slow
    )


def test_the_start_up_heap_is_frozen_out_of_collections() -> None:
    try:
        frozen = freeze_startup_heap()
        assert frozen > 10_000 and gc.get_freeze_count() == frozen
        assert sum(gc.get_count()) < 100  # a collection just ran: nothing young is left over
    finally:
        gc.unfreeze()


def test_the_local_broker_takes_kafka_s_own_jvm_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("KAFKA_HEAP_OPTS", "KAFKA_JVM_PERFORMANCE_OPTS", "KAFKA_OPTS"):
        monkeypatch.delenv(name, raising=False)
    broker = LocalKafka(heap="256m")
    assert broker.jvm_options()[:2] == ["-Xms256m", "-Xmx256m"]
    assert "-XX:MaxGCPauseMillis=20" in broker.jvm_options()  # what kafka-run-class.sh sets
    monkeypatch.setenv("KAFKA_HEAP_OPTS", "-Xmx1g")
    monkeypatch.setenv("KAFKA_JVM_PERFORMANCE_OPTS", "-XX:+UseZGC")
    monkeypatch.setenv("KAFKA_OPTS", "-Xlog:gc")
    assert broker.jvm_options() == ["-Xmx1g", "-XX:+UseZGC", "-Xlog:gc"]


def _properties(rendered: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in rendered.splitlines() if line and not line.startswith("#"))


def test_the_local_broker_maps_small_index_files_and_rolls_segments_before_they_fill(tmp_path: Path) -> None:
    """The first index entry of a fresh 10 MiB index stalled a produce ~5 ms per partition
    (docs/benchmarks.md): the local broker creates them at 64 KiB. A segment must roll before
    its rebuilt index could overflow it (Kafka then refuses to start): every entry a segment
    can need, one per 4 KiB appended, fits in the time index's 12-byte entries."""
    props = _properties(LocalKafka(port=19092).server_properties(tmp_path / "data"))
    index_bytes = int(props["log.index.size.max.bytes"])
    segment_bytes = int(props["log.segment.bytes"])
    interval = int(props["log.index.interval.bytes"])
    assert index_bytes <= 64 * 1024
    assert (segment_bytes // interval + 2) * 12 <= index_bytes
    assert segment_bytes >= 8 * 1024 * 1024  # not a file per few seconds of trading
    assert props["log.dirs"] == str(tmp_path / "data") and props["listeners"].startswith("PLAINTEXT://")


def test_a_data_directory_with_larger_segments_gets_an_index_that_holds_them(tmp_path: Path) -> None:
    """A local broker from before the small index wrote segments up to 1 GiB; Kafka resizes the
    active one's index to the configured bound on load and refused to start ("newPosition >
    limit", seen on a development broker after the upgrade). The bound grows to fit the largest."""
    data = tmp_path / "data"
    (data / "trade.signals-0").mkdir(parents=True)
    (data / "trade.signals-0" / "00000000000000000000.log").write_bytes(b"x" * 1000)
    assert index_bytes_for(data) == INDEX_BYTES  # small segments: the small index
    with open(data / "trade.signals-0" / "00000000000000000000.log", "r+b") as big:
        big.truncate(40 * 1024 * 1024)  # sparse: 40 MiB of size, no disk
    grown = int(_properties(LocalKafka(port=19092).server_properties(data))["log.index.size.max.bytes"])
    assert grown % INDEX_BYTES == 0 and grown // 12 >= index_entries(40 * 1024 * 1024) >= 40 * 256
    assert index_bytes_for(tmp_path / "absent") == INDEX_BYTES


@contextlib.contextmanager
def collections_counted() -> Iterator[list[int]]:
    """The generations Python collects meanwhile; thresholds restored afterwards."""
    collected: list[int] = []

    def note(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            collected.append(info["generation"])

    thresholds = gc.get_threshold()
    gc.callbacks.append(note)
    try:
        yield collected
    finally:
        gc.callbacks.remove(note)
        gc.set_threshold(*thresholds)


def test_a_burst_of_copies_sets_off_no_collection_once_the_collector_is_installed() -> None:
    """A 200-follower signal makes about 9,000 container objects: under Python's thresholds
    that was 13 young and one or two middle collections inside the burst (#16)."""
    burst = 9_000
    with collections_counted() as collected:
        gc.collect()
        kept = [{"copy": n} for n in range(burst)]
        assert collected[1:]  # Python's own thresholds: collections inside the burst
        IdleCollector([]).install()
        gc.collect()
        collected.clear()
        kept += [{"copy": n} for n in range(burst)]
        assert collected == []
        del kept


def test_the_idle_collector_collects_between_bursts_as_python_would() -> None:
    busy = [True]
    collector = IdleCollector([lambda: busy[0]], min_young=500)
    with collections_counted() as collected:
        collector.install()
        gc.collect()
        collected.clear()
        kept = [{"copy": n} for n in range(1_000)]
        assert collector.step() is None and collected == []  # a copy in flight: later
        busy[0] = False
        assert collector.step() == 0 and collected == [0]
        assert collector.step() is None  # nothing young left worth a collection
        generations = []
        for _ in range(10):
            kept += [{"copy": n} for n in range(600)]
            generations.append(collector.step())
        assert generations[:9] == [0] * 9 and generations[9] == 1  # the tenth is a middle one, as Python's rule
        assert collector.collections == [10, 1, 0]
        del kept


def test_the_idle_collector_runs_a_full_collection_at_most_once_a_minute() -> None:
    now = [0.0]
    collector = IdleCollector([], min_young=100, full_every_s=60.0, clock=lambda: now[0])
    with collections_counted():
        collector.install()
        gc.collect()
        kept: list[object] = []
        for second in range(0, 300, 2):  # five minutes of bursts, a young collection after each
            now[0] = float(second)
            kept += [{"copy": n} for n in range(200)]
            collector.step()
        del kept
    young, middle, full = collector.collections
    assert young > 100 and middle >= 1
    assert 1 <= full <= 5  # Python's own rule would allow one every tenth middle collection


def test_the_idle_collector_checks_less_often_while_there_is_nothing_to_collect() -> None:
    """Twenty wake-ups a second in every idle worker (#16, session 31); back at once on work."""
    busy = [False]
    collector = IdleCollector([lambda: busy[0]], interval_s=0.05, max_interval_s=0.4, min_young=500)
    with collections_counted():
        collector.install()
        gc.collect()
        waits = []
        for _ in range(6):
            collector.step()  # nothing young worth a collection
            waits.append(collector.next_check_s)
        assert waits == [0.1, 0.2, 0.4, 0.4, 0.4, 0.4]
        kept = [{"copy": n} for n in range(1_000)]
        busy[0] = True
        assert collector.step() is None and collector.next_check_s == 0.05  # work waiting: soon again
        busy[0] = False
        assert collector.step() == 0 and collector.next_check_s == 0.05
        del kept


@pytest.mark.parametrize("roles", [("ingest", "fanout"), ("execute",)])
def test_a_faust_consumer_off_the_copy_path_polls_at_most_twice_a_second(roles: tuple[str, ...]) -> None:
    """With the direct consumers it holds only Faust's leader topic: nothing waits on it, and
    at a 100 ms wait it cost ten empty fetches a second in each worker (#16, session 31)."""
    settings = Settings(roles=roles)
    assert not settings.faust_consumer_on_copy_path
    assert settings.faust_fetch_wait_ms >= 500
    assert Settings.from_env().background_fetch_wait_ms == settings.background_fetch_wait_ms

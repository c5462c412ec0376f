"""Process-level tuning: a worker's logging level, fetch waits, frozen start-up heap; the local broker's JVM."""

from __future__ import annotations

import gc
import logging
from collections.abc import Iterator

import faust
import pytest

from copytrader.app.gc_tuning import freeze_startup_heap
from copytrader.app.kafka_local import LocalKafka
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

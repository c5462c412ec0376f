"""Process-level tuning of a worker: logging level, fetch waits, frozen start-up heap."""

from __future__ import annotations

import gc
import logging
from collections.abc import Iterator

import faust
import pytest

from copytrader.app.gc_tuning import freeze_startup_heap
from copytrader.app.settings import Settings
from copytrader.app.worker import CopyTraderWorker


@pytest.fixture
def root_logger() -> Iterator[logging.Logger]:
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    root.handlers = [logging.StreamHandler()]
    yield root
    root.setLevel(level)
    root.handlers = handlers


@pytest.mark.parametrize("worker_class, debug_enabled", [(faust.Worker, True), (CopyTraderWorker, False)])
def test_a_warn_level_worker_builds_no_debug_records(root_logger: logging.Logger, worker_class: type, debug_enabled: bool) -> None:
    worker = worker_class.__new__(worker_class)  # only the logging hook is exercised
    worker.spinner = object()  # what faust.Worker.__init__ sets up
    worker_class.on_setup_root_logger(worker, root_logger, logging.WARN)
    # faust's own worker turns the root to DEBUG for its spinner (the trap this class avoids)
    assert logging.getLogger("aiokafka.conn").isEnabledFor(logging.DEBUG) is debug_enabled


def test_only_a_worker_whose_faust_consumer_carries_copies_polls_fast() -> None:
    assert Settings(roles=("ingest", "fanout")).faust_fetch_wait_ms == 5
    assert Settings(roles=("execute",), executor_consumer="faust").faust_fetch_wait_ms == 5
    assert Settings(roles=("execute",)).faust_fetch_wait_ms == 100  # the direct consumer has the intents
    assert Settings(roles=("track", "store", "web")).faust_fetch_wait_ms == 100


def test_the_start_up_heap_is_frozen_out_of_collections() -> None:
    try:
        frozen = freeze_startup_heap()
        assert frozen > 10_000 and gc.get_freeze_count() == frozen
        assert sum(gc.get_count()) < 100  # a collection just ran: nothing young is left over
    finally:
        gc.unfreeze()

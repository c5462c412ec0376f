"""Shared fixtures: the real Kafka broker for the tests marked ``kafka``."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from copytrader.app.kafka_local import LocalKafka, local_kafka_for


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A serving broker: the one at COPYTRADER_KAFKA_BROKER (CI starts it), else one started here."""
    bootstrap = os.environ.get("COPYTRADER_KAFKA_BROKER", "kafka://127.0.0.1:9092").split("://")[-1]
    kafka: LocalKafka = local_kafka_for(bootstrap, Path(tmp_path_factory.mktemp("kafka-home")))
    started = False
    if not kafka.serving():
        kafka.start()
        started = True
    yield bootstrap
    if started:
        kafka.stop()


# --------------------------------------------------------------------------- CI cannot pass by skipping
from ci_skips import CAPABILITY_SKIP_PREFIX, CAPABILITY_SUITE, MARK, in_ci, require  # noqa: E402 - tests/ is on sys.path for its conftest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", f"{MARK}(tool, reason, available): made by ci_skips.needs()")


def pytest_runtest_setup(item: pytest.Item) -> None:
    for mark in item.iter_markers(MARK):
        require(mark.kwargs["tool"], mark.kwargs["reason"], available=mark.kwargs["available"])


def _skip_reason(longrepr: object) -> str:
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2]).removeprefix("Skipped: ")
    return str(longrepr)


def _refuse_skip(report: pytest.TestReport | pytest.CollectReport, path: Path) -> None:
    """Under CI=true any skip but a conformance capability skip is a failure: ci_skips.require()
    already fails for a missing tool; this catches a bare ``pytest.skip`` that went around it."""
    if not (in_ci() and report.skipped) or getattr(report, "wasxfail", None) is not None:
        return
    reason = _skip_reason(report.longrepr)
    if reason.startswith(CAPABILITY_SKIP_PREFIX) and CAPABILITY_SUITE in path.as_posix() + "/":
        return
    report.outcome = "failed"
    report.longrepr = f"skipped under CI=true, which only accepts conformance capability skips: {reason}"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    _refuse_skip(outcome.get_result(), item.path)


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector: pytest.Collector) -> Iterator[None]:
    outcome = yield
    _refuse_skip(outcome.get_result(), collector.path)

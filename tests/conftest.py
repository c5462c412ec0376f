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

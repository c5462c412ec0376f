"""The app inside Faust's test context (real Faust streams, no Kafka), shared by the agent tests.

Outbound records go to a MemoryOutbox (Faust's test context would otherwise try to reach Kafka
on an unpatched ``topic.send``), so each test asserts exactly what an agent published.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from copytrader.agents.shared.outbox import MemoryOutbox
from copytrader.app.factory import CopyTraderApp, create_app
from copytrader.brokers.paper.adapter import reset_venues
from copytrader.core.config import parse_config
from copytrader.core.settings import Settings

MakeApp = Callable[[dict[str, Any], tuple[str, ...]], CopyTraderApp]


@pytest.fixture
def outbox() -> MemoryOutbox:
    return MemoryOutbox()


@pytest.fixture
def make_app(tmp_path: Path, outbox: MemoryOutbox) -> Iterator[MakeApp]:
    """``make_app(config, roles)``: the app with those roles on a fresh paper venue; the
    executor and the fan-out (when among the roles) are the Faust agents, since the test context
    runs agents."""
    reset_venues()

    def build(config: dict[str, Any], roles: tuple[str, ...]) -> CopyTraderApp:
        settings = Settings(
            app_id=f"agents-{uuid.uuid4().hex[:8]}",
            kafka_broker="kafka://127.0.0.1:1",
            data_dir=tmp_path,
            roles=roles,
            executor_consumer="faust",
            fanout_consumer="faust",
        )
        app = create_app(settings, parse_config(config, env={}), outbox=outbox)
        app.finalize()
        app.conf.store = "memory://"
        app.flow_control.resume()
        return app

    yield build
    reset_venues()

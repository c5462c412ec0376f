"""One ``copy.controls`` consumer per worker, shared by every stage that applies its records.

Each stage used to follow the topic with a consumer of its own; an idle executor then polled the
broker six times a second for one tiny topic (#16, session 31).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from copytrader.agents.shared.controls_feed import Command, ControlsFeed
from copytrader.agents.shared.outbox import MemoryOutbox
from copytrader.app.factory import create_app
from copytrader.core.config import parse_config
from copytrader.core.control_records import ControlCommand
from copytrader.core.settings import Settings

CONFIG = {
    "sessions": [{"id": "p", "platform": "paper", "options": {"tick_ms": 0, "venue": "shared-controls-test"}}],
    "accounts": [{"id": "L", "session": "p"}, {"id": "f1", "session": "p"}],
    "copy_groups": [{"leader": "L", "followers": [{"account": "f1"}]}],
}


def _app(tmp_path: Path, roles: tuple[str, ...]) -> Any:
    settings = Settings(kafka_broker="kafka://127.0.0.1:1", data_dir=tmp_path, roles=roles)
    return create_app(settings, parse_config(CONFIG, env={}), outbox=MemoryOutbox())


@pytest.mark.parametrize(
    ("roles", "stages"),
    [
        (("execute",), 3),  # dashboard accounts, guard edits, follower reconciliation
        (("ingest", "fanout"), 2),  # the switches and rules, the leader's snapshot requests
    ],
)
def test_a_worker_follows_copy_controls_with_one_feed(tmp_path: Path, roles: tuple[str, ...], stages: int) -> None:
    app = _app(tmp_path, roles)
    feed = app.runtime.controls
    assert isinstance(feed, ControlsFeed)
    assert len(feed.subscribers) == stages
    # Every stage that kept a handle on its feed holds this one.
    if app.runtime.execution is not None:
        assert app.runtime.execution.controls_feed is feed
        assert app.runtime.pool.catch_up == feed.sync
    if app.runtime.reconcile is not None:
        assert app.runtime.reconcile.controls is feed


def test_a_worker_without_such_stages_has_no_feed(tmp_path: Path) -> None:
    assert _app(tmp_path, ("track", "store")).runtime.controls is None


async def test_every_subscriber_gets_the_record_even_when_one_refuses_it() -> None:
    seen: list[tuple[str, str]] = []
    refused: list[tuple[str, int, str]] = []

    def reporter(name: str) -> Any:
        async def on_refused(offset: int, reason: str) -> None:
            refused.append((name, offset, reason))

        return on_refused

    def picky(command: Command) -> None:
        raise ValueError("not for me")

    async def eager(command: Command) -> None:
        assert isinstance(command, ControlCommand)
        seen.append(("eager", command.account_id))

    feed = ControlsFeed("unused:9092", "")
    feed.subscribe(picky, reporter("picky")).subscribe(eager, reporter("eager"))
    assert not await feed.handle(7, ControlCommand("c1", "f1", True).encode())
    assert seen == [("eager", "f1")]
    assert refused == [("picky", 7, "not for me")]

    # A record nobody can read is refused once per subscriber, each through its own report.
    assert not await feed.handle(8, b"\xff not json")
    assert [(name, offset) for name, offset, _ in refused[1:]] == [("picky", 8), ("eager", 8)]
    assert await ControlsFeed("unused:9092", "", lambda command: None).handle(
        9, ControlCommand("c2", "f1", False).encode()
    )


async def test_a_stage_cannot_subscribe_once_the_replay_has_begun() -> None:
    feed = ControlsFeed("127.0.0.1:1", "")  # nothing listens there: the feed keeps retrying
    feed.subscribe(lambda command: None)
    running = asyncio.ensure_future(feed.run())
    try:
        await asyncio.sleep(0)
        with pytest.raises(RuntimeError, match="before the feed runs"):
            feed.subscribe(lambda command: None)
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)
    assert len(feed.subscribers) == 1

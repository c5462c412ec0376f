"""What every stage of one worker shares, built once by the wiring (``app/factory.py``).

Stages receive it explicitly (``install(app, ctx)``) rather than reaching for the Faust app's
attributes, so a stage never imports the wiring and a test can hand a stage a context of its
own. What a stage creates for itself (the planner, the router, the storage sink, …) it
returns from ``install``; the wiring keeps it in named fields of its ``Runtime``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from ...core.config import CopyConfig
from ...core.quotes import QuoteBook
from ...core.settings import Settings
from ...core.topics import Topics
from .controls_feed import ControlsFeed
from .decoded_records import DecodedRecords
from .outbox import Outbox
from .sessions import SessionPool

ShutdownHook = Callable[[], Awaitable[None]]


@dataclass(slots=True)
class StageContext:
    """The worker's settings, copy config, topics, outbox and broker sessions, plus the
    the latest market prices, and the registries stages add to: shutdown hooks (close sessions before Faust stops), Faust tables,
    and the partitions and lag of consumers that run outside Faust (readiness, lag metric)."""

    settings: Settings
    config: CopyConfig
    topics: Topics
    outbox: Outbox
    pool: SessionPool
    #: Latest market prices, fed by the worker's price feed; ``None`` when no market-data
    #: source is configured (stages then do without: no price band, no marks, no slippage).
    quotes: QuoteBook | None = None
    tables: dict[str, Any] = field(default_factory=dict)
    shutdown_hooks: list[ShutdownHook] = field(default_factory=list)
    assignments: list[Callable[[], set[Any]]] = field(default_factory=list)
    lags: list[Callable[[], dict[Any, int]]] = field(default_factory=list)
    #: Whether a consumer of the copy path has work in flight (an intent, a signal): Python's
    #: collections wait for a moment when none has (``app/gc_tuning.py``).
    busy: list[Callable[[], bool]] = field(default_factory=list)
    #: Records decoded once for this worker's consumers of the same topic (the tracker, the
    #: database sink and the dashboard feed all read ``trade.executions``).
    decoded: DecodedRecords = field(default_factory=DecodedRecords)
    #: The worker's one follower of ``copy.controls`` (``controls_feed.worker_feed``), shared by
    #: every stage that applies its records.
    controls: ControlsFeed | None = None

"""Tracker: fills → ``positions`` table → ``positions.updates``; health → ``broker_health`` →
``account.status``. Tables are changelog-backed, so a restarted worker resumes where it was."""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable, MutableMapping
from functools import partial

import faust

from ...core import metrics
from ...core.records import CORRECTION_KINDS, AccountStatus, Execution, OrderError, Position, executions_of
from ...tables.health import health_table
from ...tables.positions import apply_fill, position_key, positions_table
from ..shared.context import StageContext
from ..shared.refused_events import unreadable_record

log = logging.getLogger(__name__)
#: Executions that change a position: fills, and busts/corrections of fills (apply_fill routes those).
FILL_KINDS = ("fill", "partial_fill", *CORRECTION_KINDS)


def unreadable(raw: object, exc: Exception) -> OrderError:
    """A ``trade.executions`` record nobody can read: said on ``order.errors``, never silent."""
    return unreadable_record("track", "trade.executions", raw, exc)


def uncounted(execution: Execution, exc: Exception) -> OrderError:
    """A fill the tracker cannot count (a correction of a fill it never saw, a position that
    would leave its bounds): reported, and the next fill is counted."""
    return OrderError(
        error_id=f"{execution.execution_id}|track",
        stage="track",
        reason=str(exc)[:300] or type(exc).__name__,
        account_id=execution.account_id,
        client_order_id=execution.client_order_id,
        code="BAD_FILL",
    )


def published(position: Position) -> Position:
    """A position as ``positions.updates`` carries it: without its ``fill_window``.

    Why: the window (up to 256 fills per position, 3 KB) is the tracker's own duplicate-fill
    check; it is kept in the ``positions`` table and its changelog, which is what a restarted
    tracker restores. No reader of ``positions.updates`` uses it (the database sink, the
    dashboard and the observer), yet every one of them would fetch and decode it on every
    fill (docs/benchmarks.md, session 26).
    """
    if not position.fill_window:
        return position
    shown = copy.copy(position)  # the other fields are immutable values: a shallow copy is whole
    shown.fill_window = ""
    return shown


class FillAccounting:
    """The tracker's step for one ``trade.executions`` record, without Faust: decode, count each
    fill into ``positions`` (the table, or a dict in tests), say what moved and what failed.

    Why a class of its own: :meth:`step` never raises, so no record, however hostile, ends the
    tracker's stream (Faust does not restart an agent whose loop raised): an unreadable record
    is one ``BAD_RECORD``, a fill that cannot be counted one ``BAD_FILL``, and the next record
    is counted as if nothing happened.
    """

    def __init__(self, positions: MutableMapping[str, Position]) -> None:
        self.positions = positions

    def step(
        self, raw: object, decode: Callable[[bytes], list[Execution]] = executions_of
    ) -> tuple[list[Position], list[OrderError]]:
        """(positions moved, each once and latest, as published; errors to report) for one
        record. The table keeps each position whole; what is published (:func:`published`)
        leaves out the duplicate-fill window. ``decode``: :func:`executions_of`, or the same
        through the worker's :class:`DecodedRecords`."""
        moved: dict[str, Position] = {}
        errors: list[OrderError] = []
        try:
            batch = decode(raw)  # type: ignore[arg-type]  # Faust hands bytes; anything else is refused below
        except Exception as exc:  # noqa: BLE001 - ValueError/RecordError, or a value that is not even bytes
            return [], [unreadable(raw, exc)]
        try:
            for execution in batch:
                if execution.kind in FILL_KINDS:
                    updated = self._count(execution, errors)
                    if updated is not None:
                        moved[position_key(updated.account_id, updated.symbol)] = updated
        except Exception as exc:  # noqa: BLE001 - a bug must cost one record, not the stream
            log.exception("tracker: record not fully counted")
            errors.append(unreadable(raw, exc))
        return [published(position) for position in moved.values()], errors

    def _count(self, execution: Execution, errors: list[OrderError]) -> Position | None:
        """Apply one fill to the table; the position it moved to (None: a duplicate or bad)."""
        key = position_key(execution.account_id, execution.symbol)
        try:
            updated, applied = apply_fill(self.positions.get(key), execution)
        except Exception as exc:  # noqa: BLE001 - ValueError, RecordError (a bound), InvalidOperation...
            errors.append(uncounted(execution, exc))
            return None
        if not applied:
            log.info("duplicate fill %s ignored", execution.execution_id)
            return None
        self.positions[key] = updated
        if execution.kind in CORRECTION_KINDS:
            metrics.count_fill_correction(execution.platform, execution.kind)
        else:
            metrics.count_fill(execution.platform)
        stamps = execution.stamps  # validated: finite times (core/records.py)
        if "filled" in stamps and "detected" in stamps:
            metrics.observe_stage("fill", stamps["filled"] - stamps["detected"])
        return updated


class HealthBook:
    """The health agent's step: the latest *different* status per account in ``broker_health``
    (the table, or a dict in tests); a status that differs from the one kept (its time aside)
    is returned for ``account.status``.

    Why only on a change: sessions report their health on every heartbeat, and a table write
    is a changelog record, produced, stored and (for the worker's own standby partitions) read
    back, for a value that differs from the kept one only in ``updated_at`` (docs/benchmarks.md,
    session 26). The table's ``updated_at`` is therefore the time of the last change; nothing
    reads it but ``copytrader table``.
    """

    def __init__(self, table: MutableMapping[str, AccountStatus]) -> None:
        self.table = table

    def step(self, status: AccountStatus) -> AccountStatus | None:
        previous = self.table.get(status.account_id)
        if previous is not None and previous.as_dict() | _NO_TIME == status.as_dict() | _NO_TIME:
            return None
        self.table[status.account_id] = status
        return status


_NO_TIME = {"updated_at": None}


def install(app: faust.App, ctx: StageContext, position_partitions: int, health_partitions: int) -> None:
    """Role ``track``: the positions and broker-health tables and their agents."""
    runtime = ctx
    positions = positions_table(app, position_partitions)
    health = health_table(app, health_partitions)
    runtime.tables.update(positions=positions, broker_health=health)
    accounting = FillAccounting(positions)
    book = HealthBook(health)

    # Raw bytes: the tracker decodes each record itself, so a record it cannot read is
    # reported and skipped instead of crashing the agent (Faust's decode error ends the stream).
    executions = app.topic(
        runtime.topics.executions.get_topic_name(), key_type=str, value_serializer="raw", internal=False
    )
    runtime.decoded.add_reader(runtime.topics.executions.get_topic_name())

    @app.agent(executions, name="tracker")
    async def track_positions(stream: faust.StreamT[bytes]) -> None:
        """Fills → positions table (duplicates ignored) → positions.updates: one record per
        incoming record, with each position it moved once (the latest)."""
        async for raw in stream:
            event = stream.current_event
            decode: Callable[[bytes], list[Execution]] = executions_of
            if event is not None:  # always, inside the loop: the record's place, for the shared decoding
                message = event.message
                decode = partial(
                    runtime.decoded.decode, executions_of, message.topic, message.partition, message.offset
                )
            moved, errors = accounting.step(raw, decode)
            for error in errors:
                await runtime.outbox.error(error)
            if moved:
                await runtime.outbox.positions(moved)

    @app.agent(runtime.topics.health, name="health")
    async def track_health(stream: faust.StreamT[AccountStatus]) -> None:
        """Session health → broker_health table → account.status, each when it changed."""
        async for status in stream:
            changed = book.step(status)
            if changed is not None:
                await runtime.outbox.status(changed)

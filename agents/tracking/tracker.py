"""Tracker: fills → ``positions`` table → ``positions.updates``; health → ``broker_health`` →
``account.status``. Tables are changelog-backed, so a restarted worker resumes where it was."""

from __future__ import annotations

import hashlib
import logging

import faust

from ...core import metrics
from ...core.records import CORRECTION_KINDS, AccountStatus, Execution, OrderError, Position, executions_of
from ...tables.health import health_table
from ...tables.positions import apply_fill, position_key, positions_table
from ..shared.context import StageContext

log = logging.getLogger(__name__)
#: Executions that change a position: fills, and busts/corrections of fills (apply_fill routes those).
FILL_KINDS = ("fill", "partial_fill", *CORRECTION_KINDS)


def unreadable(raw: object, exc: Exception) -> OrderError:
    """A ``trade.executions`` record nobody can read: said on ``order.errors``, never silent."""
    raw = raw if isinstance(raw, bytes) else repr(raw).encode()  # Faust hands a raw topic bytes; be sure
    digest = hashlib.sha256(raw).hexdigest()[:16]
    return OrderError(
        error_id=f"track|unreadable|{digest}",
        stage="track",
        reason=f"unreadable trade.executions record: {str(exc)[:300] or type(exc).__name__}",
        code="BAD_RECORD",
        payload=raw[:500].decode("utf-8", "replace"),
    )


def install(app: faust.App, ctx: StageContext, position_partitions: int, health_partitions: int) -> None:
    """Role ``track``: the positions and broker-health tables and their agents."""
    runtime = ctx
    positions = positions_table(app, position_partitions)
    health = health_table(app, health_partitions)
    runtime.tables.update(positions=positions, broker_health=health)

    # Raw bytes: the tracker decodes each record itself, so a record it cannot read is
    # reported and skipped instead of crashing the agent (Faust's decode error ends the stream).
    executions = app.topic(
        runtime.topics.executions.get_topic_name(), key_type=str, value_serializer="raw", internal=False
    )

    @app.agent(executions, name="tracker")
    async def track_positions(stream: faust.StreamT[bytes]) -> None:
        """Fills → positions table (duplicates ignored) → positions.updates: one record per
        incoming record, with each position it moved once (the latest)."""
        async for raw in stream:
            try:
                batch = executions_of(raw)
            except ValueError as exc:
                await runtime.outbox.error(unreadable(raw, exc))
                continue
            moved: dict[str, Position] = {}  # one update per position per record
            for execution in batch:
                if execution.kind in FILL_KINDS:
                    updated = await track_fill(execution)
                    if updated is not None:
                        moved[position_key(updated.account_id, updated.symbol)] = updated
            if moved:
                await runtime.outbox.positions(list(moved.values()))

    async def track_fill(execution: Execution) -> Position | None:
        """Apply one fill to the table; the position it moved to (None: a duplicate or bad)."""
        key = position_key(execution.account_id, execution.symbol)
        try:
            updated, applied = apply_fill(positions.get(key), execution)
        except (KeyError, ValueError, ArithmeticError) as exc:
            # ArithmeticError: decimal's InvalidOperation is not a ValueError; a fill the
            # tracker cannot count is reported and the next one is counted.
            await runtime.outbox.error(
                OrderError(
                    error_id=f"{execution.execution_id}|track",
                    stage="track",
                    reason=str(exc) or type(exc).__name__,
                    account_id=execution.account_id,
                    client_order_id=execution.client_order_id,
                    code="BAD_FILL",
                )
            )
            return None
        if not applied:
            log.info("duplicate fill %s ignored", execution.execution_id)
            return None
        positions[key] = updated
        if execution.kind in CORRECTION_KINDS:
            metrics.count_fill_correction(execution.platform, execution.kind)
        else:
            metrics.count_fill(execution.platform)
        if "filled" in execution.stamps and "detected" in execution.stamps:
            metrics.observe_stage("fill", execution.stamps["filled"] - execution.stamps["detected"])
        return updated

    @app.agent(runtime.topics.health, name="health")
    async def track_health(stream: faust.StreamT[AccountStatus]) -> None:
        """Session health → broker_health table → account.status when it changed."""
        async for status in stream:
            previous = health.get(status.account_id)
            health[status.account_id] = status
            if previous is None or previous.as_dict() | {"updated_at": None} != status.as_dict() | {"updated_at": None}:
                await runtime.outbox.status(status)

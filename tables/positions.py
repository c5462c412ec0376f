"""Positions from fills: net quantity, average price and realised P&L per (account, symbol).

Pure functions over the ``Position`` record; the tracker agent keeps the results in the Faust
table ``positions``. A fill id seen recently (one of the last :data:`RECENT_FILLS`, kept as
digests in ``Position.fill_window``: ``core/fill_window.py``) is ignored, so a broker that
reports one fill twice, or a redelivered record, does not double a position.
"""

from __future__ import annotations

from decimal import Decimal

import faust
from faust.types import TableT

from ..brokers.instruments import instrument_for
from ..brokers.positions import apply_fill as apply_position_fill
from ..brokers.positions import undo_fill
from ..common.clock import utcnow
from ..core import fill_window
from ..core.records import CORRECTION_KINDS, Execution, Position

#: Fills a position remembers to ignore a repeat (the record's bound, ``MAX_RECENT_FILL_IDS``).
RECENT_FILLS = fill_window.WINDOW


def position_key(account_id: str, symbol: str) -> str:
    return f"{account_id}|{symbol}"


def apply_fill(position: Position | None, fill: Execution) -> tuple[Position, bool]:
    """Return (new position, applied); applied is False for a fill already counted.

    A bust or correction of a fill (``fill_bust``/``fill_correction``) goes to
    :func:`apply_correction`, so one call serves every execution that changes a position.
    """
    if fill.kind in CORRECTION_KINDS:
        return apply_correction(position, fill)
    if fill.kind not in ("fill", "partial_fill") or fill.price is None or fill.quantity <= 0:
        raise ValueError(f"not a fill: {fill.kind} {fill.quantity}@{fill.price}")
    current = position or Position(account_id=fill.account_id, symbol=fill.symbol)
    seen = fill_window.token(fill.execution_id)
    if fill_window.holds(current.fill_window, seen):
        return current, False
    signed = fill.quantity if fill.side == "buy" else -fill.quantity
    net, average, pnl = apply_position_fill(
        current.net_quantity,
        current.average_price,
        signed,
        Decimal(fill.price),
        instrument_for(fill.symbol).point_value,
    )
    realized = current.realized_pnl + pnl
    return (
        _with_window(
            Position(
                account_id=fill.account_id,
                symbol=fill.symbol,
                net_quantity=net,
                average_price=average.quantize(Decimal("0.000001")) if average is not None else None,
                realized_pnl=realized,
                fills=current.fills + 1,
                updated_at=utcnow(),
            ),
            fill_window.appended(current.fill_window, seen),
        ),
        True,
    )


def _with_window(position: Position, window: str) -> Position:
    """``position`` (built with an empty window, so its own checks ran on everything else)
    holding ``window``: the previous position's window, already checked when that position was
    built or decoded, plus this execution's token, made by :func:`fill_window.token`.

    Why not pass it to the constructor: ``Position.__post_init__`` checks the whole window
    again (session 26 measured the id-by-id check of the old list at about 80 % of the
    tracker's work on a fill). :func:`fill_window.appended` keeps it to :data:`RECENT_FILLS`.
    """
    position.fill_window = window
    return position


def apply_correction(position: Position | None, correction: Execution) -> tuple[Position, bool]:
    """Undo a busted fill, or replace a corrected one; (new position, applied).

    The fill named by ``corrects`` must be in the position's recent window: a correction of a
    fill this position never counted (or counted too long ago to know) is refused with
    ``ValueError`` rather than guessed, and the copier reconciles with the broker instead.
    The quantity is exact; when the busted fill had closed part of the position, the average
    price and realised P&L after the undo are an approximation (no fill history is kept).
    """
    if correction.kind not in ("fill_bust", "fill_correction") or correction.original_price is None:
        raise ValueError(f"not a correction: {correction.kind}")
    current = position or Position(account_id=correction.account_id, symbol=correction.symbol)
    seen = fill_window.token(correction.execution_id)
    if fill_window.holds(current.fill_window, seen):
        return current, False
    corrected = correction.corrects
    if corrected is None or not fill_window.holds(current.fill_window, fill_window.token(corrected)):
        raise ValueError(f"{correction.kind} of fill {correction.corrects} that this position did not count recently")
    sign = 1 if correction.side == "buy" else -1
    point_value = instrument_for(correction.symbol).point_value
    net, average, pnl = undo_fill(
        current.net_quantity,
        current.average_price,
        sign * correction.original_quantity,
        Decimal(correction.original_price),
        point_value,
    )
    if correction.kind == "fill_correction" and correction.quantity > 0 and correction.price is not None:
        net, average, more = apply_position_fill(
            net, average, sign * correction.quantity, Decimal(correction.price), point_value
        )
        pnl += more
    return (
        _with_window(
            Position(
                account_id=current.account_id,
                symbol=current.symbol,
                net_quantity=net,
                average_price=average.quantize(Decimal("0.000001")) if average is not None else None,
                realized_pnl=current.realized_pnl + pnl,
                fills=current.fills,
                updated_at=utcnow(),
            ),
            fill_window.appended(current.fill_window, seen),
        ),
        True,
    )


def positions_table(app: faust.App, partitions: int) -> TableT[str, Position]:
    """``positions[account|symbol]`` → Position, changelog-backed, co-partitioned with executions."""
    return app.Table("positions", key_type=str, value_type=Position, partitions=partitions, help="net positions")

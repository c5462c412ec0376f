"""Positions from fills: net quantity, average price and realised P&L per (account, symbol).

Pure functions over the ``Position`` record; the tracker agent keeps the results in the Faust
table ``positions``. A fill id seen recently is ignored, so a broker that reports one fill twice
does not double a position.
"""

from __future__ import annotations

from decimal import Decimal

import faust

from ..app.records import Execution, Position, now_utc
from ..brokers.instruments import instrument_for

RECENT_FILLS = 256


def position_key(account_id: str, symbol: str) -> str:
    return f"{account_id}|{symbol}"


def apply_fill(position: Position | None, fill: Execution) -> tuple[Position, bool]:
    """Return (new position, applied); applied is False for a fill already counted."""
    if fill.kind not in ("fill", "partial_fill") or fill.price is None or fill.quantity <= 0:
        raise ValueError(f"not a fill: {fill.kind} {fill.quantity}@{fill.price}")
    current = position or Position(account_id=fill.account_id, symbol=fill.symbol)
    if fill.execution_id in current.recent_fill_ids:
        return current, False
    signed = fill.quantity if fill.side == "buy" else -fill.quantity
    net, average, realized = current.net_quantity, current.average_price, current.realized_pnl
    price = Decimal(fill.price)
    if net == 0 or (net > 0) == (signed > 0):
        total = abs(net) + abs(signed)
        average = ((average or Decimal(0)) * abs(net) + price * abs(signed)) / total
        net += signed
    else:
        closed = min(abs(net), abs(signed))
        point_value = instrument_for(fill.symbol).point_value
        direction = 1 if net > 0 else -1
        realized += (price - (average or price)) * closed * direction * point_value
        new_net = net + signed
        if new_net == 0:
            average = None
        elif (new_net > 0) != (net > 0):
            average = price
        net = new_net
    recent = [*current.recent_fill_ids, fill.execution_id][-RECENT_FILLS:]
    return (
        Position(
            account_id=fill.account_id, symbol=fill.symbol, net_quantity=net,
            average_price=average.quantize(Decimal("0.000001")) if average is not None else None,
            realized_pnl=realized, fills=current.fills + 1, recent_fill_ids=recent,
            updated_at=now_utc(),
        ),
        True,
    )


def positions_table(app: faust.App, partitions: int) -> faust.Table:
    """``positions[account|symbol]`` → Position, changelog-backed, co-partitioned with executions."""
    return app.Table("positions", key_type=str, value_type=Position, partitions=partitions, help="net positions")

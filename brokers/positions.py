"""Position arithmetic shared by the simulated exchange and the copier's tracker.

One function, so the broker's view and ours cannot drift apart by a rounding or flip rule.
"""

from __future__ import annotations

from decimal import Decimal


def apply_fill(
    net: int, average: Decimal | None, signed_quantity: int, price: Decimal, point_value: Decimal
) -> tuple[int, Decimal | None, Decimal]:
    """A fill of ``signed_quantity`` at ``price`` → (new net, new average price, realised P&L).

    Adding to a position averages the price in; reducing realises P&L at the old average;
    flipping through zero starts the new side at the fill price; flat has no average.
    """
    if net == 0 or (net > 0) == (signed_quantity > 0):
        total = abs(net) + abs(signed_quantity)
        new_average = ((average or Decimal(0)) * abs(net) + price * abs(signed_quantity)) / total
        return net + signed_quantity, new_average, Decimal(0)
    closed = min(abs(net), abs(signed_quantity))
    direction = 1 if net > 0 else -1
    realized = (price - (average if average is not None else price)) * closed * direction * point_value
    new_net = net + signed_quantity
    if new_net == 0:
        return 0, None, realized
    if (new_net > 0) != (net > 0):
        return new_net, price, realized
    return new_net, average, realized


def undo_fill(
    net: int, average: Decimal | None, signed_qty: int, price: Decimal, point_value: Decimal
) -> tuple[int, Decimal | None, Decimal]:
    """Take one fill back out of an average-cost position: (net, average, realised P&L change).

    Exact when the fill opened or added to what is held now (the average is un-weighted), and
    when it reduced a position still open on the same side (its realised P&L is taken back).
    When it closed or flipped the position, what was held before is not known any more: the
    quantity is still exact, the average becomes the fill's price and P&L is left alone.
    """
    if net and average is not None and signed_qty and (net > 0) == (signed_qty > 0) and abs(net) >= abs(signed_qty):
        left = abs(net) - abs(signed_qty)
        if left == 0:
            return 0, None, Decimal(0)
        return net - signed_qty, (average * abs(net) - price * abs(signed_qty)) / left, Decimal(0)
    if net and average is not None and (net > 0) != (signed_qty > 0):
        # it reduced this side: it realised (price - average) per contract, in the side's direction
        side = 1 if net > 0 else -1
        realised = (price - average) * abs(signed_qty) * side * point_value
        return net - signed_qty, average, -realised
    back, avg, pnl = apply_fill(net, average, -signed_qty, price, point_value)
    return back, avg, Decimal(0)

"""What the adapter has already reported, so a resync after a reconnect reports each change once.

A link that drops loses the 351/352 and 450 pushes sent meanwhile; Rithmic does not replay them
(ShowOrders 320, the day's orders 324 and the PnL snapshot 402 give the *current* state only
[AR order.py, pnl.py]). So the adapter keeps, per order, the last state and the cumulative fill
quantity (and value) it has emitted, and per position the last net quantity. A resync compares
the broker's snapshot with that and emits only the difference: the fills of an order that filled
while we were away become one FillEvent for the missing quantity (at the average price of just
the missing part), never a second report of a fill already seen. Live pushes pass through the
same ledger, so a 352 FILL that arrives after the resync already counted it is dropped.

Finished orders do not stay forever (#18): beyond the latest ``keep`` they shrink to a
fingerprint (:mod:`..finished`), the basket id and the quantity reported, which is all the
resync needs to see an old order in the day's orders (324) as old news. A fingerprint goes
when a complete resync no longer finds its order among the day's orders.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from decimal import Decimal

from ..finished import KEEP_IN_FULL, FinishedOrders
from ..instruments import instrument_for
from ..model import FillEvent, OrderEvent, PositionEvent


@dataclass(slots=True)
class _Filled:
    quantity: int = 0
    value: Decimal = Decimal(0)  # Σ quantity × price of the fills emitted


class Ledger:
    """Per-session memory of the orders, fills and positions reported on the event stream."""

    def __init__(self, keep: int = KEEP_IN_FULL) -> None:
        self.orders: dict[str, OrderEvent] = {}
        self._filled: dict[str, _Filled] = {}
        self._fill_ids: dict[str, set[str]] = {}  # basket → its fill ids reported
        self.positions: dict[tuple[str, str], PositionEvent] = {}
        self.finished = FinishedOrders(self._reported, keep)

    def _reported(self, basket: str) -> int:
        filled = self._filled.get(basket)
        return filled.quantity if filled is not None else 0

    def _remember(self, event: OrderEvent) -> None:
        """Keep ``event`` as its order's state; a finished order may push the oldest out."""
        basket = event.broker_order_id
        self.orders[basket] = event
        if event.status.is_final:
            self._retire(basket)
        else:
            self.finished.reopened(basket)

    def _retire(self, basket: str) -> None:
        for old in self.finished.finished(basket):
            self.orders.pop(old, None)
            self._filled.pop(old, None)
            self._fill_ids.pop(old, None)

    def _revived(self, basket: str, average_price: Decimal | None) -> None:
        """A forgotten order shows up again changed: back in full with what was reported (its
        value at ``average_price``, the best known). Nothing happens for an order not forgotten."""
        reported = self.finished.forgotten(basket)
        if reported is None:
            return
        self.finished.reopened(basket)
        self._filled[basket] = _Filled(reported, reported * (average_price or Decimal(0)))

    def is_old_news(self, event: OrderEvent) -> bool:
        """A finished order forgotten here and shown again unchanged (a replay of the day)."""
        reported = self.finished.forgotten(event.broker_order_id)
        return reported is not None and event.status.is_final and event.filled_quantity <= reported

    # -- orders ------------------------------------------------------------------------------
    def order(self, event: OrderEvent, *, snapshot: bool = False) -> OrderEvent | None:
        """The event to emit for an order state (None: nothing new). Snapshots emit only changes;
        live notifications always pass (a second "working" after a modify is news)."""
        if self.is_old_news(event):
            return None
        self._revived(event.broker_order_id, None)
        known = self.orders.get(event.broker_order_id)
        self._remember(event)
        if snapshot and known is not None and _same_state(known, event):
            return None
        return event

    def seed_order(self, event: OrderEvent) -> None:
        """Remember an order without reporting it (the state found at connect)."""
        if self.is_old_news(event):
            return
        self._revived(event.broker_order_id, None)
        filled = self._filled.setdefault(event.broker_order_id, _Filled())
        filled.quantity = max(filled.quantity, event.filled_quantity)
        self._remember(event)

    # -- fills -------------------------------------------------------------------------------
    def fill(self, event: FillEvent) -> FillEvent | None:
        """A live 352 FILL, or None when it (or the quantity it brings) was reported already."""
        forgotten = self.finished.forgotten(event.broker_order_id)
        if forgotten is not None:
            if event.cumulative_quantity <= forgotten:
                return None  # a fill of a forgotten order, reported long ago
            self._revived(event.broker_order_id, event.price)
        fill_ids = self._fill_ids.setdefault(event.broker_order_id, set())
        if event.fill_id in fill_ids:
            return None
        filled = self._filled.setdefault(event.broker_order_id, _Filled())
        new = min(event.quantity, event.cumulative_quantity - filled.quantity)
        if new <= 0:
            return None  # a resync already counted it
        fill_ids.add(event.fill_id)
        filled.quantity += new
        filled.value += new * event.price
        known = self.orders.get(event.broker_order_id)
        if forgotten is not None and (known is None or known.status.is_final):
            self._retire(event.broker_order_id)  # a late fill of an order that had ended
        return event if new == event.quantity else replace(event, quantity=new)

    def unreported(self, order: OrderEvent) -> int:
        """How much of the order's filled quantity no FillEvent has reported yet."""
        forgotten = self.finished.forgotten(order.broker_order_id)
        if forgotten is not None:
            return order.filled_quantity - forgotten
        filled = self._filled.get(order.broker_order_id)
        return order.filled_quantity - (filled.quantity if filled is not None else 0)

    def missed_fill(self, order: OrderEvent, average_price: Decimal | None) -> FillEvent | None:
        """The fills an order snapshot shows beyond what was reported, as one FillEvent.

        ``average_price`` is the order's average over all its fills (352 ``avg_fill_price``);
        the missing part's own average follows from what was already reported. Its fill id is
        derived from the order and the cumulative quantity, so the same gap is named alike
        however often it is computed.
        """
        if self.is_old_news(order) or self.unreported(order) <= 0 or average_price is None:
            return None  # nothing missing (a forgotten order stays forgotten), or cannot price it
        self._revived(order.broker_order_id, average_price)
        filled = self._filled.setdefault(order.broker_order_id, _Filled())
        missing = order.filled_quantity - filled.quantity
        total_value = average_price * order.filled_quantity
        price = _tick((total_value - filled.value) / missing, order.symbol)
        fill_id = f"{order.broker_order_id}:resync:{order.filled_quantity}"
        self._fill_ids.setdefault(order.broker_order_id, set()).add(fill_id)
        filled.quantity, filled.value = order.filled_quantity, total_value
        return FillEvent(
            account_id=order.account_id,
            client_order_id=order.client_order_id,
            broker_order_id=order.broker_order_id,
            fill_id=fill_id,
            symbol=order.symbol,
            side=order.side,
            quantity=missing,
            price=price,
            cumulative_quantity=order.filled_quantity,
            leaves_quantity=max(order.quantity - order.filled_quantity, 0) if not order.status.is_final else 0,
            timestamp=order.timestamp,
        )

    # -- positions ---------------------------------------------------------------------------
    def position(self, event: PositionEvent, *, snapshot: bool = False) -> PositionEvent | None:
        key = (event.account_id, event.symbol)
        known = self.positions.get(key)
        self.positions[key] = event
        if snapshot and known is not None and known.net_quantity == event.net_quantity:
            return None
        return event

    def flat_positions(self, account_id: str, held: set[str]) -> list[PositionEvent]:
        """Positions reported open that a snapshot no longer lists: they were closed meanwhile."""
        gone = [
            p
            for (acct, symbol), p in self.positions.items()
            if acct == account_id and symbol not in held and p.net_quantity
        ]
        flats = [PositionEvent(account_id, p.symbol, 0, None, p.realized_pnl) for p in gone]
        for flat in flats:
            self.positions[(account_id, flat.symbol)] = flat
        return flats


def _same_state(a: OrderEvent, b: OrderEvent) -> bool:
    return (a.status, a.filled_quantity, a.quantity, a.limit_price, a.stop_price) == (
        b.status,
        b.filled_quantity,
        b.quantity,
        b.limit_price,
        b.stop_price,
    )


def _tick(price: Decimal, symbol: str) -> Decimal:
    """On the tick when the wire's doubles only blurred it; an average of several fills may be
    off-tick and stays so (to 1e-8)."""
    exact = price.quantize(Decimal("1e-8"))
    try:
        ticked = instrument_for(symbol).round_to_tick(price)
    except (KeyError, ValueError):
        return exact
    return ticked if abs(ticked - price) < Decimal("1e-6") else exact

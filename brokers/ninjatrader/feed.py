"""What either route tells the adapter, and how a TCP VALUE push becomes one of those facts.

Both routes report the same four facts: an order's state (``OrderReport``), a position
(``PositionReport``), the orders NinjaTrader still lists (an account's ``Orders`` value on TCP,
the outgoing folder's order files after a wipe on the file route) and NinjaTrader's connection
state.
The adapter implements :class:`FeedListener`; the routes call it.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Protocol

from .states import OrderReport, PositionReport, read_count, read_decimal, read_state


class FeedListener(Protocol):
    def on_order(self, nt_id: str, report: OrderReport) -> None: ...

    def on_position(self, account: str, instrument: str, report: PositionReport) -> None: ...

    def on_orders_list(self, account: str, ids: list[str]) -> None: ...

    def on_order_files(self, ids: set[str]) -> None:
        """The order files of the first complete listing of the outgoing folder after a wipe."""

    def on_connection(self, connected: bool) -> None: ...

    def on_bad_input(self, text: str) -> None: ...


class ValueCache:
    """The VALUE pushes of one TCP connection, as NinjaTrader.Client.dll keeps them (N-tk), and
    the facts they complete: ``OrderStatus`` after its ``Filled``/``AvgFillPrice``,
    ``MarketPosition`` after its ``AvgEntryPrice``. An order an ``Orders`` list stops naming
    leaves the cache (NinjaTrader forgot it and sends no more of it), so the cache is as large
    as NinjaTrader's lists, not as long as the connection."""

    def __init__(self, listener: FeedListener) -> None:
        self.values: dict[str, str] = {}
        self.listener = listener
        self.ati: bool | None = None
        self.lists_seen: set[str] = set()

    def push(self, key: str, value: str) -> None:
        """Take one VALUE; a value that cannot be read is reported, never raised."""
        previous = self.values.get(key)
        self.values[key] = value
        kind, _, rest = key.partition("|")
        try:
            if kind == "ATI":
                self.ati = value == "True"
                self.listener.on_connection(self.ati)
            elif kind == "OrderStatus" and rest:
                self.listener.on_order(rest, self.order(rest, value))
            elif kind == "Orders" and rest:
                self.lists_seen.add(rest)
                ids = [i for i in value.split("|") if i]
                if previous and not value.startswith(previous):  # NinjaTrader appends; else it forgot
                    self._forget_unlisted(previous, ids)
                self.listener.on_orders_list(rest, ids)
            elif kind == "MarketPosition" and rest.count("|") == 1:
                instrument, account = rest.split("|")
                net = read_count(value, "MarketPosition")
                average = self.values.get(f"AvgEntryPrice|{rest}", "0")
                price = read_decimal(average, "AvgEntryPrice") if average else Decimal(0)
                self.listener.on_position(account, instrument, PositionReport(net, price))
        except ValueError as exc:
            self.listener.on_bad_input(f"VALUE {key!r} = {value[:80]!r} not understood: {exc}")

    def _forget_unlisted(self, previous: str, ids: list[str]) -> None:
        listed = set(ids)
        for nt_id in previous.split("|"):
            if nt_id and nt_id not in listed:
                for kind in ("OrderStatus", "Filled", "AvgFillPrice"):
                    self.values.pop(f"{kind}|{nt_id}", None)

    def order(self, nt_id: str, state_text: str) -> OrderReport:
        filled = self.values.get(f"Filled|{nt_id}", "0") or "0"
        average = self.values.get(f"AvgFillPrice|{nt_id}", "0") or "0"
        count = read_count(filled, "Filled")
        if count < 0:
            raise ValueError(f"negative Filled {count}")
        return OrderReport(read_state(state_text), count, read_decimal(average, "AvgFillPrice"))

    def report(self, nt_id: str) -> OrderReport | None:
        state = self.values.get(f"OrderStatus|{nt_id}")
        if state is None:
            return None
        try:
            return self.order(nt_id, state)
        except ValueError:
            return None

    def cash(self, account: str) -> Decimal | None:
        text = self.values.get(f"CashValue|{account}")
        try:
            return read_decimal(text, "CashValue") if text else None
        except ValueError:
            return None

"""Mark-to-market: unrealised P&L of each open position at the latest market price.

Where marks are computed, and why here: a mark is a pure function of two things every web
worker already holds, the position (``positions.updates``, read in full by ``LiveState``) and
the latest quote (its own ``QuoteBook``, fed by its own price feed). A mark changes with every
tick, so publishing marks from the tracker would turn each price tick into one record per open
position on Kafka (and in the store, which persists ``positions.updates``), only for the reader
to receive a value older than the quote it holds itself. Computed on read, a mark costs nothing
between reads and is never older than the reader's quote, whose age it shows.

Unknown is never 0: an open position without a quote (or without a reference price, an
average price or a known point value) has ``unrealized_pnl`` ``None``, and so does every sum
it is part of. A flat position's unrealised P&L is a known 0 whatever the price.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

from ..brokers.instruments import instrument_for
from ..common.clock import utcnow
from ..core.quotes import PriceQuote, QuoteBook

#: Marks are money in the account currency, shown to the cent.
CENT = Decimal("0.01")


def mark_position(row: Mapping[str, Any], quote: PriceQuote | None, now: datetime) -> dict[str, Any]:
    """``{mark, unrealized_pnl, quote_age_s}`` for one position row (``LiveState.positions``):
    quantity × (reference price − average price) × the instrument's point value."""
    net = int(row.get("net_quantity") or 0)
    price = quote.reference() if quote is not None else None
    age = round(max(0.0, (now - quote.at).total_seconds()), 3) if quote is not None else None
    out: dict[str, Any] = {"mark": str(price) if price is not None else None, "quote_age_s": age}
    if net == 0:
        out["unrealized_pnl"] = "0"
        return out
    average = row.get("average_price")
    try:
        point_value = instrument_for(str(row["symbol"])).point_value
    except (KeyError, ValueError):
        point_value = None
    if price is None or average is None or point_value is None:
        out["unrealized_pnl"] = None
        return out
    pnl = net * (price - Decimal(str(average))) * point_value
    out["unrealized_pnl"] = str(pnl.quantize(CENT))
    return out


def _sum(values: Iterable[str | None]) -> str | None:
    total = Decimal(0)
    for value in values:
        if value is None:
            return None
        total += Decimal(value)
    return str(total)


class Marks:
    """Marks of every position the web worker holds; ``None`` book = no market data configured."""

    def __init__(
        self,
        positions: Mapping[str, Mapping[str, Any]],
        quotes: QuoteBook | None,
        feeds: Mapping[str, Mapping[str, Any]] | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.positions = positions
        self.quotes = quotes
        self.feeds = feeds if feeds is not None else {}
        self._clock = clock

    def position(self, row: Mapping[str, Any]) -> dict[str, Any]:
        quote = self.quotes.latest(str(row["symbol"])) if self.quotes is not None else None
        return mark_position(row, quote, self._clock())

    def snapshot(self) -> dict[str, Any]:
        """Per position, per account and in total; an account with no open position is 0."""
        now = self._clock()
        positions: dict[str, dict[str, Any]] = {}
        accounts: dict[str, dict[str, Any]] = {}
        for key, row in self.positions.items():
            quote = self.quotes.latest(str(row["symbol"])) if self.quotes is not None else None
            mark = positions[key] = mark_position(row, quote, now)
            account = accounts.setdefault(str(row["account_id"]), {"open": 0, "values": [], "ages": []})
            if int(row.get("net_quantity") or 0) != 0:
                account["open"] += 1
                account["values"].append(mark["unrealized_pnl"])
                account["ages"].append(mark["quote_age_s"])
        per_account = {
            account_id: {
                "unrealized_pnl": _sum(a["values"]),
                "open_positions": a["open"],
                # The oldest quote behind the figure (None: some open position has none).
                "quote_age_s": None if None in a["ages"] else max(a["ages"], default=None),
            }
            for account_id, a in accounts.items()
        }
        return {
            "market_data": self.quotes is not None,
            "feeds": {name: dict(state) for name, state in self.feeds.items()},
            "generated_at": now.timestamp(),
            "unrealized_pnl": _sum(a["unrealized_pnl"] for a in per_account.values()),
            "accounts": per_account,
            "positions": positions,
        }

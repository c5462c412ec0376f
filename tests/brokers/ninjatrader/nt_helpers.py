"""Helpers shared by the NinjaTrader tests (importable, unlike conftest)."""

from __future__ import annotations

from copytrader.brokers.simkernel.exchange import SimExchange
from copytrader.brokers.simkernel.pricepath import PricePath


def frozen() -> SimExchange:
    """Prices move only when a test says so."""
    return SimExchange(seed=7, prices=PricePath(7, max_step_ticks=0))


#: The help guide's format line of each command (N-oif), its placeholders filled in, in the
#: order a session could send them (so the simulator can carry them out one after another).
HELP_GUIDE_LINES = [
    "CANCEL;;;;;;;;;;ORDER1;;",
    "CANCELALLORDERS;;;;;;;;;;;;",
    "CHANGE;;;;2;;1212.25;0;;;ORDER1;;",
    "CHANGE;;;;0;;0;1210.50;;;ORDER1;;",
    "CLOSEPOSITION;Sim101;ES 12-26;;;;;;;;;;",
    "CLOSESTRATEGY;;;;;;;;;;;;STRATEGY1",
    "FLATTENEVERYTHING;;;;;;;;;;;;",
    "PLACE;Sim101;ES 12-26;BUY;1;MARKET;;;DAY;;;;",
    "PLACE;Sim101;ES 12-26;SELL;2;LIMIT;1212.25;;GTC;;ORDER1;;",
    "PLACE;Sim101;ES 12-26;BUY;1;STOPLIMIT;1213.00;1212.75;DAY;OCO1;ORDER2;;",
    "REVERSEPOSITION;Sim101;ES 12-26;SELL;1;MARKET;;;DAY;;;;",
]

"""NinjaTrader session settings (``brokers/options.py`` says why a schema): names as the config
file and the dashboard give them, bounds with their reason."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

import msgspec

from ...common.bounds import MAX_ACCOUNT_SIZE, MAX_DECIMAL_DIGITS
from ..options import Name, PlatformOptions, RetryDelay, Text, Timeout, ordered

#: How long lookup waits for a command still on its way: 0 does not wait; over a minute keeps
#: every lookup's caller waiting past its own deadline.
Settle = Annotated[float, msgspec.Meta(ge=0.0, le=60.0)]
#: How often the outgoing folder is read (file route): under 5 ms reads it in a loop; over
#: 10 s sees fills too late to copy them.
Poll = Annotated[float, msgspec.Meta(ge=0.005, le=10.0)]


class NinjaTraderOptions(PlatformOptions, frozen=True):
    exchange_name: Name = "Globex"  # the exchange word of position file names
    request_timeout_s: Timeout = 10.0  # how long a command waits for NinjaTrader's first word on it
    lookup_settle_s: Settle = 0.5
    poll_s: Poll = 0.02
    reconnect_min_s: RetryDelay = 0.5
    reconnect_max_s: RetryDelay = 10.0  # NinjaTrader's own client retries every 10 s (N-tk)
    connect_timeout_s: Timeout = 10.0
    incoming: Text | None = None  # the file route's folders; default: the endpoint's folder's
    outgoing: Text | None = None
    # The file route's cash value (it has no CashValue): a number or its text; never negative,
    # at most an account size (a trillion, ``common/bounds.py``).
    balance: Decimal = Decimal(0)

    def __post_init__(self) -> None:
        ordered(self.reconnect_min_s, self.reconnect_max_s, "reconnect_min_s", "reconnect_max_s")
        balance = self.balance
        if not balance.is_finite() or not 0 <= balance <= MAX_ACCOUNT_SIZE:
            raise ValueError(f"balance: must be a finite number from 0 to {MAX_ACCOUNT_SIZE:,}, got {balance}")
        if len(balance.as_tuple().digits) > MAX_DECIMAL_DIGITS:
            raise ValueError(f"balance: at most {MAX_DECIMAL_DIGITS} significant digits")

"""Rithmic session settings (``brokers/options.py`` says why a schema): names as the config
file and the dashboard give them, bounds with their reason."""

from __future__ import annotations

import re
from typing import Annotated

import msgspec

from ..options import Attempts, PlatformOptions, RetryDelay, Text, Timeout, ordered

#: How long ``place`` waits for the order's first 352 after the 313: 0 answers at once (the
#: order stands, its events follow); over a minute holds the executor past its own deadline.
AckWait = Annotated[float, msgspec.Meta(ge=0.0, le=60.0)]
#: An exchange name as Rithmic spells it (``CME``, ``CBOT``, ``NYMEX``, ``COMEX``).
Exchange = Annotated[str, msgspec.Meta(min_length=1, max_length=16, pattern=r"^[A-Za-z0-9_.-]+$")]
#: A symbol root (``ES``, ``6E``): short, as the exchanges' own.
_ROOT = re.compile(r"^[A-Za-z0-9]{1,16}$")
#: Root → exchange overrides: a few dozen roots is a large book; thousands is a mistake.
MAX_EXCHANGES = 256


class RithmicOptions(PlatformOptions, frozen=True):
    system_name: Text = ""  # empty: asked of the gateway (16 → 17) when it offers exactly one
    app_name: Text = "copytrader"  # the approved, prefixed name [I42]
    app_version: Text = "1.0"
    timeout_s: Timeout = 10.0
    reconnect_min_s: RetryDelay = 1.0
    reconnect_max_s: RetryDelay = 30.0
    reject_attempts: Attempts = 4  # tries of a request the server answers with a Reject (75)
    ack_wait_s: AckWait = 2.0
    # Symbol root → exchange, over the CME Group defaults (``fields.DEFAULT_EXCHANGES``).
    exchanges: Annotated[dict[str, Exchange], msgspec.Meta(max_length=MAX_EXCHANGES)] = msgspec.field(
        default_factory=dict
    )

    def __post_init__(self) -> None:
        ordered(self.reconnect_min_s, self.reconnect_max_s, "reconnect_min_s", "reconnect_max_s")
        # Keys checked here, not by type: msgspec reports a bad key without the field's name.
        for root in self.exchanges:
            if not _ROOT.match(root):
                raise ValueError(f"exchanges: {root[:40]!r} is not a symbol root (1-16 letters and digits)")

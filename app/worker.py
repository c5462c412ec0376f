"""The Faust worker class CopyTrader runs (``copytrader worker``).

Faust's worker draws a terminal spinner while it starts, and to make the spinner turn on every
log line it sets the *root logger* to DEBUG whenever the chosen level is WARN or above (the
console handler keeps the chosen level). Every ``log.debug`` in aiokafka and Faust then
builds a ``LogRecord`` for nothing: one per Kafka request and response, every produced
message, every fetch. Profiled in the executor at 200 followers that was about 15 % of its
busy CPU, on the loop that places the orders. This worker has no spinner, so the root logger
stays at the level asked for.
"""

from __future__ import annotations

import logging

import faust


class CopyTraderWorker(faust.Worker):
    """``faust.Worker`` without the start-up spinner and its root-logger DEBUG level."""

    def on_setup_root_logger(self, logger: logging.Logger, level: int) -> None:
        self.spinner = None
        super().on_setup_root_logger(logger, level)

"""The Faust worker class CopyTrader runs (``copytrader worker``).

Faust's worker draws a terminal spinner while it starts, and to make the spinner turn on every
log line it sets the *root logger* to DEBUG whenever the chosen level is WARN or above (the
console handler keeps the chosen level). Every ``log.debug`` in aiokafka and Faust then
builds a ``LogRecord`` for nothing: one per Kafka request and response, every produced
message, every fetch. Profiled in the executor at 200 followers that was about 15 % of its
busy CPU, on the loop that places the orders. This worker has no spinner, so the root logger
stays at the level asked for.

It also puts the Kafka outage filter on the root logger's handlers: during a broker outage the
log says once that Kafka is gone and once that it is back, instead of every client's retries.
"""

from __future__ import annotations

import logging

import faust

from ..agents.shared import kafka_outage


class CopyTraderWorker(faust.Worker):
    """``faust.Worker`` without the start-up spinner and its root-logger DEBUG level."""

    def on_setup_root_logger(self, logger: logging.Logger, level: int) -> None:
        self.spinner = None
        super().on_setup_root_logger(logger, level)
        app = getattr(self, "app", None)  # None only where a test runs this hook alone
        if app is not None:
            kafka_outage.install(",".join(str(url).split("://", 1)[-1] for url in app.conf.broker))

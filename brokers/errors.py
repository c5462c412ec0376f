"""Broker errors split into temporary (retry may help) and permanent (never retry).

Following aiokafka's ``retriable`` flag: the retry policy reads only the flag, so a new
platform's errors need no change to the executor.
"""

from __future__ import annotations


class BrokerError(Exception):
    """Base of every adapter error; ``code`` is the platform's own code when it has one."""

    retriable: bool = False

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


class OrderRejected(BrokerError):
    """The broker refused the order (risk, price, session closed...). Permanent."""


class UnknownOrder(BrokerError):
    """Modify/cancel named an order the broker does not know (or that is already final)."""


class AuthenticationFailed(BrokerError):
    """Credentials refused. Permanent until the user fixes them."""


class UnsupportedOperation(BrokerError):
    """The platform lacks the capability (e.g. order entry on a market-data feed)."""


class TransientBrokerError(BrokerError):
    """Base of errors that a retry of an idempotent request may cure."""

    retriable = True


class BrokerUnavailable(TransientBrokerError):
    """Connection lost, refused or timed out.

    ``sent`` says whether the request may have reached the broker: False only when it surely
    did not (not connected, connection refused before any byte left). When True, the outcome
    is unknown (a timeout, a reset after sending, a 5xx): the order may exist, so a place must
    be looked up by its client order id before it is tried again.
    """

    def __init__(self, message: str, *, code: str | None = None, sent: bool = True) -> None:
        super().__init__(message, code=code)
        self.sent = sent

    @property
    def outcome_unknown(self) -> bool:
        return self.sent


class OutcomeUnknown(BrokerError):
    """After every lookup the copier still cannot tell whether the broker holds the order.

    Reported as ``unknown`` on ``order.errors``; never answered by placing again blindly.
    """


class TokenExpired(TransientBrokerError):
    """The session token expired; the adapter re-authenticates and the request is retried."""


class RateLimited(TransientBrokerError):
    """The platform throttled us; ``retry_after`` seconds is its own hint when it gives one."""

    def __init__(self, message: str, *, retry_after: float | None = None, code: str | None = None) -> None:
        super().__init__(message, code=code)
        self.retry_after = retry_after


class CircuitOpen(BrokerError):
    """The session's circuit breaker is open: fail fast instead of queueing behind a dead broker."""

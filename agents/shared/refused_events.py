"""A broker event no record can carry, said on ``order.errors`` instead of ending a loop.

Brokers and their simulators are a door too: a fill of ``10**30`` contracts, an ``Infinity``
price or a ten-kilobyte order id fails the :class:`~copytrader.core.records.Execution` bounds.
The executor's event pump and the leader watchers report such an event with this error and
handle the next one; before, the ``RecordError`` ended the loop that reads the broker.
"""

from __future__ import annotations

import hashlib

from ...common.bounds import MAX_ID_LEN
from ...core.records import OrderError

REFUSED_EVENT_CODE = "BAD_BROKER_EVENT"


def refused_broker_event(stage: str, platform: str, event: object, exc: Exception) -> OrderError:
    """Named by a digest of the event, so the same event seen twice is one error; the refused
    field (``RecordError``) or the codec's complaint is in the reason, a cut of the event in
    the payload."""
    text = repr(event)
    account_id = getattr(event, "account_id", None)
    return OrderError(
        error_id=f"{platform}|event|{hashlib.sha256(text.encode()).hexdigest()[:16]}",
        stage=stage,
        reason=f"broker event refused: {str(exc)[:300] or type(exc).__name__}",
        account_id=account_id[:MAX_ID_LEN] if isinstance(account_id, str) and account_id else "unknown",
        code=REFUSED_EVENT_CODE,
        payload=text[:1000],
    )


def unreadable_record(stage: str, topic: str, raw: object, exc: Exception) -> OrderError:
    """A record of one of our topics that its consumer cannot read (a bug, or a producer
    with access to the cluster that is not ours): said on ``order.errors`` and passed, so one
    record does not hold its partition for ever. Named by a digest of its bytes, so the same
    record read twice (a redelivery) is one error; a cut of it in the payload."""
    raw = raw if isinstance(raw, bytes) else repr(raw).encode()
    digest = hashlib.sha256(raw).hexdigest()[:16]
    return OrderError(
        error_id=f"{stage}|unreadable|{digest}",
        stage=stage,
        reason=f"unreadable {topic} record: {str(exc)[:300] or type(exc).__name__}",
        code="BAD_RECORD",
        payload=raw[:500].decode("utf-8", "replace"),
    )

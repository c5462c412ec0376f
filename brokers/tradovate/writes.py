"""Which Tradovate writes the adapter may send again after a lost answer, and how.

The transport never resends a write whose request may have reached the broker (Tradovate does
not dedupe, so a resent place is a second order). Two writes are idempotent *in effect*, so the
adapter sends them once more itself:

* ``order/modifyorder`` carries absolute values (``orderQty``, ``price``, ``stopPrice``): the
  same modify twice leaves the order exactly as one does.
* ``order/cancelorder``: cancelling twice cancels once; the second answer says the order is
  final, and the caller asks the broker which final state it is in.

A place (placeorder, placeOSO, a flatten's closing order) is never in this list: after a lost
answer the executor looks it up by ``clOrdId`` first.
"""

from __future__ import annotations

from typing import Any

from ..deadline import expired
from ..errors import BrokerUnavailable
from ..ratebudget import Priority
from .transport import RestClient

Json = dict[str, Any]
IDEMPOTENT_IN_EFFECT = frozenset({"order/modifyorder", "order/cancelorder"})


async def send_again_if_lost(rest: RestClient, endpoint: str, body: Json, *, priority: Priority) -> Any:
    """Send; if the answer was lost after sending, send the same body once more (deadline allowing)."""
    if endpoint not in IDEMPOTENT_IN_EFFECT:
        raise ValueError(f"{endpoint} is not idempotent in effect; it must not be sent twice")
    try:
        return await rest.call(endpoint, body, priority=priority)
    except BrokerUnavailable as exc:
        if not exc.sent or expired():
            raise
    return await rest.call(endpoint, body, priority=priority)

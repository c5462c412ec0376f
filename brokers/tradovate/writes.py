"""Which Tradovate writes may be sent again after a lost answer, and by whom.

The transport never resends a write whose request may have reached the broker (Tradovate does
not dedupe, so a resent place is a second order). Two writes are idempotent *in effect*:

* ``order/modifyorder`` carries absolute values (``orderQty``, ``price``, ``stopPrice``): the
  same modify twice leaves the order exactly as one does.
* ``order/cancelorder``: cancelling twice cancels once; the second answer says the order is
  final, and the adapter asks the broker which final state it is in (a repeat reads as done).

The adapter's own ``modify``/``cancel`` still report a lost answer as
``BrokerUnavailable(sent=True)``, as every platform does (conformance CT-CONN-21): whether to
repeat is the executor's one policy, and repeating is safe. Work the adapter does on its own —
re-anchoring bracket exits, the cancels inside a flatten — uses :func:`send_again_if_lost`.
A place (placeorder, placeOSO, placeOCO, a flatten's closing order) never is: after a lost
answer it is looked up by ``clOrdId`` first.
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

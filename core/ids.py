"""Derived identifiers: the heart of exactly-once-in-effect.

Nothing here is random. A leader event replayed after a crash or reconnect yields the same
signal id, and a signal redelivered by Kafka yields the same client order id for each follower.
No broker promises to refuse that id twice, so the executor does not ask it to: it records the
id before the broker call and looks the order up by it whenever an earlier attempt may have
reached the broker (``agents/execution/router.py``, ``BrokerAdapter.lookup``).
"""

from __future__ import annotations

import base64
import hashlib

CLIENT_ID_PREFIX = "CT"


def _digest(text: str, size: int = 10) -> str:
    raw = hashlib.blake2b(text.encode(), digest_size=size).digest()
    return base64.b32encode(raw).decode().rstrip("=")


def signal_id(leader_account: str, leader_order_id: str, kind: str, version: int | str = 0) -> str:
    """Id of the leader event ``kind`` (new/modify/cancel/fill) of one leader order.

    ``version`` separates successive modifies (or fills) of the same leader order.
    """
    if kind == "new":
        return f"{leader_account}:{leader_order_id}:new"
    return f"{leader_account}:{leader_order_id}:{kind}:{version}"


def client_order_id(signal: str, follower_account: str) -> str:
    """The follower order's client id: 18 characters, safe for every platform's id field."""
    return CLIENT_ID_PREFIX + _digest(f"{signal}|{follower_account}")


#: Signal ids of the protective-stop watcher's own orders (agents/execution/protective.py).
PROTECT_SIGNAL_PREFIX = "control:protect:"
#: Replacement attempts reconciliation recognises as the copy they stand in for.
PROTECT_REPLACEMENTS_KNOWN = 4


def protective_signal_id(copy_client_id: str, what: str) -> str:
    """The signal id of an order the watcher derives from a stop copy (``replace:0``, ...)."""
    return f"{PROTECT_SIGNAL_PREFIX}{copy_client_id}:{what}"


def protective_replacement_ids(copy_client_id: str, follower_account: str) -> tuple[str, ...]:
    """The client ids a replacement of this stop copy may carry, so that reconciliation counts a
    replaced stop as the copy it replaces (not as an orphan, and the copy not as missing)."""
    return tuple(
        client_order_id(protective_signal_id(copy_client_id, f"replace:{n}"), follower_account)
        for n in range(PROTECT_REPLACEMENTS_KNOWN)
    )


def follower_order_id(leader_account: str, leader_order_id: str, follower_account: str) -> str:
    """Client id of the follower order that copies a leader order (target of modify/cancel)."""
    return client_order_id(signal_id(leader_account, leader_order_id, "new"), follower_account)

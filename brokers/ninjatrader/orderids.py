"""Our client order id → NinjaTrader's ORDER ID, deterministically.

The help guide allows "any string value" for ORDER ID, but the id also travels as a field of a
``;``-line, as part of the TCP VALUE key ``OrderStatus|<id>``, and as the outgoing file name
``<id>.txt`` on Windows, whose file names forbid ``\\ / : * ? " < > |``. So an id passes unchanged
only when it is 1-40 characters of ``A-Z``, ``a-z``, ``0-9`` and ``-`` (the copier's own ids,
``CT`` + base32, always are); any other id becomes ``H_`` + 32 hex digits of its SHA-256.
Windows file names also ignore case: two ids that differ only in case would share one outgoing
file. The copier's ids are upper case only, so they cannot; an id from elsewhere could.
The two sets cannot meet (only the second holds ``_``), so the mapping is one-to-one in practice
and the same id always maps to the same ORDER ID, across processes and restarts.
"""

from __future__ import annotations

import hashlib
import re

_KEPT = re.compile(r"^[A-Za-z0-9-]{1,40}$")
HASHED_PREFIX = "H_"


def nt_order_id(client_order_id: str) -> str:
    if not client_order_id:
        raise ValueError("an empty client order id cannot name a NinjaTrader order")
    if _KEPT.match(client_order_id):
        return client_order_id
    digest = hashlib.sha256(client_order_id.encode("utf-8")).hexdigest()[:32].upper()
    return HASHED_PREFIX + digest

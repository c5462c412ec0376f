"""A position's window of recent fill ids, packed: 12 characters per fill instead of the id.

Why: the tracker keeps the last :data:`WINDOW` fill ids of every position so that a fill
reported twice (a redelivered ``trade.executions`` record, a broker that repeats a fill) is
counted once. The window travels with the position in the ``positions`` table's changelog,
which is written on every fill: as a JSON list of ids (20–60 characters each, up to 256) it
was about 1.4 KB of the 3.2 KB of Kafka traffic per copy, and its encoding the larger part of
a changelog write (docs/benchmarks.md, session 27).

What dedup needs is only "was this id seen recently?", so the window keeps a 72-bit BLAKE2b
digest of each id, base64 (URL alphabet, 12 characters, no padding: 9 bytes are exactly
12 characters), oldest first, in one string. A new fill is taken for a seen one only if its
digest equals one of at most 256 others: about 256 / 2^72 ≈ 5e-20 per fill.

Sans-I/O and pure: the record (``core.records.Position``) validates and migrates with it, the
tracker's accounting (``tables.positions``) checks and appends with it.
"""

from __future__ import annotations

import re
from base64 import urlsafe_b64encode
from collections.abc import Iterable
from hashlib import blake2b

from ..common.bounds import MAX_RECENT_FILL_IDS

#: Fill ids a window remembers: the tracker's window and the record's bound.
WINDOW = MAX_RECENT_FILL_IDS
#: Characters per fill in a window: 9 digest bytes in base64.
TOKEN_LEN = 12
_DIGEST_BYTES = 9
MAX_WINDOW_CHARS = WINDOW * TOKEN_LEN
_ALPHABET = re.compile(r"[A-Za-z0-9_-]*")


def token(fill_id: str) -> str:
    """The 12 characters that stand for ``fill_id`` in a window."""
    digest = blake2b(fill_id.encode("utf-8", "surrogatepass"), digest_size=_DIGEST_BYTES).digest()
    return urlsafe_b64encode(digest).decode("ascii")


def holds(window: str, fill_token: str) -> bool:
    """Whether ``window`` holds ``fill_token`` as one of its tokens (not across two of them)."""
    at = window.find(fill_token)
    while at >= 0:
        if at % TOKEN_LEN == 0:
            return True
        at = window.find(fill_token, at + 1)
    return False


def appended(window: str, fill_token: str) -> str:
    """``window`` with ``fill_token`` as its newest token, the oldest dropped past :data:`WINDOW`."""
    joined = window + fill_token
    return joined[-MAX_WINDOW_CHARS:] if len(joined) > MAX_WINDOW_CHARS else joined


def of_ids(fill_ids: Iterable[str], window: str = "") -> str:
    """The window of ``fill_ids`` (oldest first) followed by ``window``'s tokens: how a position
    written before the window was packed (a list of ids) is read."""
    joined = "".join(token(fill_id) for fill_id in fill_ids) + window
    return joined[-MAX_WINDOW_CHARS:] if len(joined) > MAX_WINDOW_CHARS else joined


def problem(window: object) -> str | None:
    """Why ``window`` is not a window (None: it is one): a string of whole tokens in the
    base64 URL alphabet, at most :data:`WINDOW` of them."""
    if not isinstance(window, str):
        return f"must be a string; got {type(window).__name__}"
    if len(window) > MAX_WINDOW_CHARS or len(window) % TOKEN_LEN:
        return f"must hold at most {WINDOW} tokens of {TOKEN_LEN} characters; got {len(window)} characters"
    if _ALPHABET.fullmatch(window) is None:
        return "must use the base64 URL alphabet"
    return None


def size(window: str) -> int:
    """Fills the window remembers."""
    return len(window) // TOKEN_LEN

"""R|Protocol constants and reply builders the simulator shares between its modules.

Facts from docs/platforms/rithmic-sources.md: every reply echoes the request's ``user_msg``; a
reply is one or more messages, each but the last carrying ``rq_handler_rp_code`` and the last
``rp_code`` (``["0"]`` on success, ``[code, text]`` on failure).
"""

from __future__ import annotations

from typing import Any

from google.protobuf.message import Message

from .. import codec

ORDER_PLANT = 2  # infra_type, request_login.proto
PNL_PLANT = 4
OK = ["0"]
#: Rithmic's sample reject for a request sent before login [PYR7].
BEFORE_LOGIN = ["1034", "invalid operation before login."]
PERMISSION_DENIED = ["13", "permission denied"]
#: Exchanges of the kernel's contract roots (CME Group venues).
EXCHANGE_OF_ROOT = {
    "ES": "CME",
    "MES": "CME",
    "NQ": "CME",
    "MNQ": "CME",
    "RTY": "CME",
    "M2K": "CME",
    "6E": "CME",
    "YM": "CBOT",
    "MYM": "CBOT",
    "CL": "NYMEX",
    "MCL": "NYMEX",
    "GC": "COMEX",
    "MGC": "COMEX",
}


def exchange_of_symbol(symbol: str) -> str:
    """The venue of a kernel symbol (``ESZ6`` → ``CME``); empty when the root is unknown."""
    from ...instruments import split_symbol

    try:
        root, _ = split_symbol(symbol)
    except ValueError:
        return ""
    return EXCHANGE_OF_ROOT.get(root, "")


def user_msg(request: Message) -> list[str]:
    """The request's ``user_msg``, to echo (empty for messages that have none)."""
    if "user_msg" not in request.DESCRIPTOR.fields_by_name:
        return []
    return list(request.user_msg)


def final(request: Message, template_id: int, rp_code: list[str] | None = None, **fields: Any) -> Message:
    """The closing message of a reply to ``request``: ``rp_code`` (success unless given) and data."""
    return codec.build(template_id, user_msg=user_msg(request), rp_code=rp_code or OK, **fields)


def part(request: Message, template_id: int, **fields: Any) -> Message:
    """A data part of a multi-part reply: ``rq_handler_rp_code ["0"]``, more to come."""
    return codec.build(template_id, user_msg=user_msg(request), rq_handler_rp_code=OK, **fields)


def reject(request: Message | None, rp_code: list[str]) -> Message:
    """A Reject (75): the answer to a request the server will not handle at all."""
    return codec.build(75, user_msg=user_msg(request) if request is not None else [], rp_code=rp_code)


def demo_symbols() -> list[str]:
    """Each kernel root in its front quarterly contract (``ESZ6``), for a sandbox's printout."""
    from ....common.clock import today_utc

    today = today_utc()
    month = next(m for m in (3, 6, 9, 12) if m >= today.month)
    code = "HMUZ"[(month // 3) - 1]
    return [f"{root}{code}{today.year % 10}" for root in EXCHANGE_OF_ROOT]

"""Finding an order at Tradovate by our ``clOrdId``, from the broker's own entities.

Why two reads: the Order entity carries no ``clOrdId``; the Command that created the order
(``commandType: New``) does, together with its ``orderId`` (services-api docs Command.md).
So the account's orders come from ``order/deps?masterid=<accountId>`` and their commands from
``command/ldeps?masterids=<orderIds>``, a few hundred ids per request so the URL stays short.
Both are plain reads, so the transport may retry them; any failure to get an answer is
``BrokerUnavailable``: "cannot tell" must never read as "not there".
"""

from __future__ import annotations

from typing import Any

from ..errors import BrokerUnavailable
from ..ratebudget import Priority
from . import answers
from . import schemas as s
from .codec import CodecError
from .transport import RestClient

Json = dict[str, Any]
CHUNK = 200


async def _read_list(rest: RestClient, endpoint: str, query: dict[str, Any]) -> list[Json]:
    try:
        reply = await rest.call(endpoint, method="GET", query=query, priority=Priority.ENTRY)
    except CodecError as exc:  # an answer that does not read tells nothing either way
        raise BrokerUnavailable(f"{exc}; cannot tell (raw: {exc.raw[:200]})", sent=False) from exc
    if not isinstance(reply, list):
        raise BrokerUnavailable(
            f"{endpoint}: no list in the answer ({answers.raw_text(reply)[:80]}); cannot tell", sent=False
        )
    return [row for row in reply if isinstance(row, dict)]


async def account_orders(rest: RestClient, tv_account: int) -> list[Json]:
    return await _read_list(rest, "order/deps", {s.MASTER_ID: tv_account})


async def commands_of(rest: RestClient, order_ids: list[int]) -> list[Json]:
    commands: list[Json] = []
    for start in range(0, len(order_ids), CHUNK):
        chunk = order_ids[start : start + CHUNK]
        commands += await _read_list(rest, "command/ldeps", {s.MASTER_IDS: ",".join(map(str, chunk))})
    return commands


async def lookup_order(rest: RestClient, tv_account: int, cl_ord_id: str) -> tuple[Json, Json] | None:
    """``(order, its New command)`` of the first order created under ``cl_ord_id``, or None."""
    listed = await account_orders(rest, tv_account)
    orders = {_id(o.get("id"), "order/deps", listed): o for o in listed if o.get("id") is not None}
    if not orders:
        return None
    commands = await commands_of(rest, sorted(orders))
    matches = [
        (_id(c.get("orderId"), "command/ldeps", commands), c)
        for c in commands
        if c.get("commandType") == s.CMD_NEW and str(c.get("clOrdId")) == cl_ord_id and c.get("orderId") is not None
    ]
    matches = [(order_id, c) for order_id, c in matches if order_id in orders]
    if not matches:
        return None
    order_id, first = min(matches, key=lambda m: m[0])
    return orders[order_id], first


def _id(value: object, endpoint: str, answer: object) -> int:
    """An id in a lookup answer; one that is not an integer means we cannot tell."""
    try:
        return answers.integer(value, f"{endpoint} id", answer)
    except CodecError as exc:
        raise BrokerUnavailable(f"{exc}; cannot tell (raw: {exc.raw[:200]})", sent=False) from exc

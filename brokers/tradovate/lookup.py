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
from . import schemas as s
from .transport import RestClient

Json = dict[str, Any]
CHUNK = 200


async def _read_list(rest: RestClient, endpoint: str, query: dict[str, Any]) -> list[Json]:
    reply = await rest.call(endpoint, method="GET", query=query, priority=Priority.ENTRY)
    if not isinstance(reply, list):
        raise BrokerUnavailable(f"{endpoint}: no list in the answer ({reply!r:.80}); cannot tell", sent=False)
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
    orders = {int(o["id"]): o for o in await account_orders(rest, tv_account) if o.get("id") is not None}
    if not orders:
        return None
    matches = [
        c
        for c in await commands_of(rest, sorted(orders))
        if c.get("commandType") == s.CMD_NEW
        and str(c.get("clOrdId")) == cl_ord_id
        and int(c.get("orderId", -1)) in orders
    ]
    if not matches:
        return None
    first = min(matches, key=lambda c: int(c["orderId"]))
    return orders[int(first["orderId"])], first

"""Finding our orders at the gateway by ``customTag``: the only exactly-once tool ProjectX offers.

ProjectX says a ``customTag`` "must be unique across the account" but documents no refusal of a
repeated one (no error code, no text), so nothing here reads an error message. Instead the
gateway is asked: ``/api/Order/searchOpen`` (working orders, no time window) and then
``/api/Order/search`` (history; ``startTimestamp`` required, ``endTimestamp`` optional) — both
return ``customTag`` on every order. Bracket children carry ``<tag>-SL``/``<tag>-TP`` on the live
gateway, so only an exact match counts. Source: gateway.docs.projectx.com api-reference/order
order-search and order-search-open (see docs/fidelity/projectx.md).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from ...common.clock import utcnow
from ..errors import BrokerUnavailable
from ..ratebudget import Priority
from . import answers, parsing
from . import schemas as px
from .codec import ProtocolError

Call = Callable[..., Awaitable[dict[str, Any]]]

#: How far past "now" the history window reaches: the gateway stamps orders with its own clock.
CLOCK_SKEW = timedelta(minutes=5)


def _orders(data: dict[str, Any], what: str) -> list[dict[str, Any]]:
    """The order list of a search answer; a refused or unreadable search means we cannot tell."""
    if not data.get("success", True):
        raise BrokerUnavailable(
            f"ProjectX {what} refused (errorCode {data.get('errorCode')}): {data.get('errorMessage')}", sent=False
        )
    try:
        orders = answers.rows(data, "orders")
        for order in orders:
            answers.integer(order.get("id"), "order id", data)
    except ProtocolError as exc:
        raise BrokerUnavailable(f"ProjectX {what}: {exc}; cannot tell (raw: {exc.raw[:200]})", sent=False) from exc
    return orders


async def _search(call: Call, path: str, body: dict[str, Any]) -> dict[str, Any]:
    """One search; an answer that does not read tells nothing either way: "cannot tell"."""
    try:
        return await call(path, body, Priority.MODIFY, idempotent=True)
    except ProtocolError as exc:
        raise BrokerUnavailable(f"ProjectX {path}: {exc}; cannot tell (raw: {exc.raw[:200]})", sent=False) from exc


async def orders_with_tag(
    call: Call, account_id: int, tag: str, lookback_h: float, *, include_history: bool = True
) -> list[dict[str, Any]]:
    """Every order of the account whose ``customTag`` is exactly ``tag``, oldest first.

    Working orders come from ``searchOpen``; when none matches (or ``include_history``), the
    order history of the last ``lookback_h`` hours is searched too. Raises ``BrokerUnavailable``
    when the gateway cannot be asked.
    """
    body = {"accountId": account_id}
    found = {
        o["id"]: o
        for o in _orders(await _search(call, px.ORDER_SEARCH_OPEN, body), "Order/searchOpen")
        if o.get("customTag") == tag
    }
    if not found or include_history:
        now = utcnow()
        window = {
            "accountId": account_id,
            "startTimestamp": parsing.format_time(now - timedelta(hours=lookback_h)),
            "endTimestamp": parsing.format_time(now + CLOCK_SKEW),
        }
        history = _orders(await _search(call, px.ORDER_SEARCH, window), "Order/search")
        for order in history:
            if order.get("customTag") == tag:
                found.setdefault(order["id"], order)
    return sorted(found.values(), key=lambda o: (str(o.get("creationTimestamp") or ""), int(o["id"])))


def first_live(orders: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The oldest order that is not a rejected record.

    Even the order a refusal names counts when it is not rejected: a refused answer whose order
    works anyway is one plausible reading of the bracket refusal, and it must not go untracked.
    """
    for order in orders:
        if order.get("status") != px.OrderStatus.REJECTED:
            return order
    return None

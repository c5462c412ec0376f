"""Flatten on Tradovate: cancel the working orders, then close with a market order that
carries the flatten's ``clOrdId``.

Why not ``order/liquidateposition``: its body is ``accountId, contractId, admin`` and an
optional ``customTag50`` — no ``clOrdId`` (services-api docs LiquidatePosition.md) — so the
order it creates could not be found again by our id after a lost answer, and every request
that creates an order must carry the derived id. ``customTag50`` is not a substitute: the docs
describe it as a Trader UI description, and whether the liquidation's order carries it into its
Command is undocumented; an order placed under our ``clOrdId`` is found like every other.

Every step reads the broker, not the cache: the orders to cancel come from ``order/deps``, the
position to close from ``position/deps`` read *after* the cancels (a cancel that lost the race
to a fill shows in that position). That makes the whole flatten idempotent in effect: run again
after a lost answer, it finds nothing to cancel and a flat position, and places nothing. The
closing place itself is never resent (the transport resends no write after doubt); a lost
answer surfaces as ``BrokerUnavailable(sent=True)`` and ``lookup(flatten id)`` finds it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from ..errors import BrokerUnavailable, OrderRejected
from ..ratebudget import Priority
from . import answers, lookup, parsing
from . import schemas as s
from .transport import RestClient
from .writes import send_again_if_lost

Json = dict[str, Any]
#: Order states in which an order can still trade (and so must be cancelled first).
LIVE = frozenset({s.WORKING, s.PENDING_NEW, s.SUSPENDED, "PendingReplace", "PendingCancel"})
#: Cancel answers that mean "already final": the position read afterwards tells the rest.
ALREADY_FINAL = frozenset({"TooLate"})


async def flatten(
    rest: RestClient,
    account_name: str,
    tv_account: int,
    contracts: set[int] | None,
    cl_ord_id: str,
    symbol_of: Callable[[int], Awaitable[str]],
) -> list[int]:
    """Cancel, re-read, close. ``contracts=None`` means every contract. Returns closing order ids."""
    for order in await lookup.account_orders(rest, tv_account):
        if order.get("ordStatus") in LIVE and (contracts is None or order.get("contractId") in contracts):
            await _cancel(rest, answers.order_id(order, "id"))
    positions = await _read_positions(rest, tv_account)
    closing = []
    for contract_id, net in sorted(positions.items()):
        if not net or (contracts is not None and contract_id not in contracts):
            continue
        side = parsing.side(s.SELL if net > 0 else s.BUY)
        body = s.place_order_body(
            account_name,
            tv_account,
            cl_ord_id,
            parsing.action(side),
            (await symbol_of(contract_id)).upper(),
            abs(net),
            s.MARKET,
            None,
            None,
            s.TIF_DAY,
        )
        reply = await rest.call("order/placeorder", body, priority=Priority.EXIT)
        _check(reply, "closing order")
        closing.append(answers.order_id(reply))
    return closing


async def _cancel(rest: RestClient, order_id: int) -> None:
    """A cancel is idempotent in effect, so it is sent again after a lost answer (.writes)."""
    reply = await send_again_if_lost(rest, "order/cancelorder", s.cancel_order_body(order_id), priority=Priority.CANCEL)
    if isinstance(reply, dict) and reply.get("failureReason") in ALREADY_FINAL:
        return
    _check(reply, f"cancel of {order_id}")


async def _read_positions(rest: RestClient, tv_account: int) -> dict[int, int]:
    reply = await rest.call("position/deps", method="GET", query={s.MASTER_ID: tv_account}, priority=Priority.EXIT)
    if not isinstance(reply, list):
        raise BrokerUnavailable(f"position/deps: no list in the answer ({answers.raw_text(reply)[:80]})", sent=False)
    return answers.positions(reply)


def _check(reply: Any, what: str) -> None:
    if not isinstance(reply, dict):
        raise BrokerUnavailable(f"flatten: {what}: unexpected answer {answers.raw_text(reply)[:80]}")
    reason = reply.get("failureReason")
    if reason and reason != "Success":
        raise OrderRejected(f"flatten: {what}: {reason}: {reply.get('failureText') or reason}", code=str(reason))

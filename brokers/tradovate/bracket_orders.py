"""The adapter's bracket work: place the entry (with its exits when it can), then follow the fill.

Pure price arithmetic lives in :mod:`.brackets`; this holds the plans of entries not filled yet
and the background work a fill starts: re-anchoring placeOSO exits, or placing the exits of a
market entry that had no anchor. Background work reports failures on ``on_error`` (the
adapter's health) instead of dying silently.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from ..errors import BrokerUnavailable
from ..model import FillEvent, OrderEvent, OrderStatus, PlaceOrder
from ..ratebudget import Priority
from . import brackets
from . import schemas as s
from .lookup import lookup_order
from .transport import RestClient
from .writes import send_again_if_lost

log = logging.getLogger(__name__)
Json = dict[str, Any]
Check = Callable[[Any], None]


Resolve = Callable[[int, str], int | None]  # (accountId, clOrdId) → orderId the adapter knows


class BracketDesk:
    """Plans wait under the entry's clOrdId, registered *before* the request goes: if its answer
    is lost but the entry lands and fills, the fill (which names the clOrdId) still starts the
    exit work, and exits whose ids the lost answer would have given are found by their clOrdIds."""

    def __init__(
        self, rest: Callable[[], RestClient], check: Check, on_error: Callable[[str], None], resolve: Resolve
    ) -> None:
        self._rest, self._check, self._on_error, self._resolve = rest, check, on_error, resolve
        self.waiting: dict[str, brackets.BracketPlan] = {}  # entry clOrdId → its exits
        self._by_order: dict[str, str] = {}  # entry orderId → clOrdId
        self._tasks: set[asyncio.Task[None]] = set()

    async def place(self, command: PlaceOrder, entry: Json, account_name: str, tv_account: int) -> tuple[Json, Json]:
        """Send the entry: placeOSO with anchored exits, or placeorder alone (exits after the fill).

        Returns ``(reply, body sent)``. Never resent after it may have left (see the transport).
        """
        p = brackets.plan(command, account_name, tv_account)
        endpoint, body = (
            ("order/placeorder", entry) if p.anchor is None else ("order/placeoso", brackets.oso_body(entry, p))
        )
        self.waiting[command.client_order_id] = p
        try:
            reply = await self._rest().call(endpoint, body, priority=Priority.ENTRY)
            self._check(reply)
        except BrokerUnavailable as exc:
            if not exc.sent:
                self.waiting.pop(command.client_order_id, None)
            raise  # sent: the entry may exist; keep the plan for its fill
        except BaseException:
            self.waiting.pop(command.client_order_id, None)
            raise
        if p.anchor is not None:
            brackets.take_ids(p, reply)
        self._by_order[str(reply["orderId"])] = command.client_order_id
        return reply, body

    def on_fill(self, event: FillEvent) -> None:
        key = (
            event.client_order_id
            if event.client_order_id in self.waiting
            else self._by_order.get(event.broker_order_id)
        )
        p = self.waiting.get(key or "")
        if p is None or key is None:
            return
        average = brackets.record_fill(p, event.quantity, event.price)
        if average is not None:
            self._start(key, event.broker_order_id, p, average)

    def on_order(self, event: OrderEvent) -> None:
        """An entry that ended before it filled completely: its exits follow what did fill
        (the broker works OSO exits for the filled quantity), or are forgotten if nothing did."""
        if not event.status.is_final or event.status is OrderStatus.FILLED:
            return
        key = (
            event.client_order_id
            if event.client_order_id in self.waiting
            else self._by_order.get(event.broker_order_id)
        )
        p = self.waiting.get(key or "")
        if p is None or key is None:
            return
        if p.filled_qty <= 0:
            del self.waiting[key]
            self._by_order.pop(event.broker_order_id, None)
            return
        p.quantity = p.filled_qty
        self._start(key, event.broker_order_id, p, p.filled_value / p.filled_qty)

    def _start(self, key: str, order_id: str, p: brackets.BracketPlan, average: Decimal) -> None:
        del self.waiting[key]
        self._by_order.pop(order_id, None)
        work = self._place_exits(p, average) if p.anchor is None else self._reanchor(p, average)
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def cancel(self) -> None:
        for task in list(self._tasks):
            task.cancel()

    async def _reanchor(self, p: brackets.BracketPlan, fill_price: Decimal) -> None:
        """Move the exits to ``fill ± distance``: a modify is idempotent in effect (absolute
        values), so it is sent again after a lost answer; a refusal (an exit filled) is reported."""
        for leg in p.exits:
            if leg.order_id is None:  # the placeOSO answer was lost: find the exit by its clOrdId
                leg.order_id = self._resolve(p.tv_account, leg.cl_ord_id) or await self._ask(p, leg.cl_ord_id)
            if leg.order_id is None:
                self._report(f"bracket exit {leg.cl_ord_id} of {p.entry_cl_ord_id} not re-anchored: no such order")
        for body in brackets.reanchor(p, fill_price):
            try:
                self._check(await send_again_if_lost(self._rest(), "order/modifyorder", body, priority=Priority.EXIT))
            except Exception as exc:  # noqa: BLE001 - a background task must report, not die silently
                self._report(f"bracket exit {body.get('orderId')} of {p.entry_cl_ord_id} not re-anchored: {exc}")

    async def _ask(self, p: brackets.BracketPlan, cl_ord_id: str) -> int | None:
        """An exit no push has named yet: the entry's fill may come before the exits' commands
        (nothing documents their order), so the broker is asked; None when it cannot tell."""
        try:
            found = await lookup_order(self._rest(), p.tv_account, cl_ord_id)
        except Exception as exc:  # noqa: BLE001 - a background task must report, not die silently
            self._report(f"bracket exit {cl_ord_id} of {p.entry_cl_ord_id}: the broker could not tell ({exc})")
            return None
        return int(found[0]["id"]) if found is not None else None

    async def _place_exits(self, p: brackets.BracketPlan, fill_price: Decimal) -> None:
        """A market entry's exits, now that its fill is known. After a lost answer the first
        exit is looked up by its clOrdId before the request is sent again: never twice."""
        endpoint, body = brackets.oco_body(p, fill_price)
        try:
            try:
                reply = await self._rest().call(endpoint, body, priority=Priority.EXIT)
            except BrokerUnavailable as exc:
                if not exc.sent:
                    raise
                if await lookup_order(self._rest(), p.tv_account, str(body["clOrdId"])) is not None:
                    return  # it landed; its answer was lost
                reply = await self._rest().call(endpoint, body, priority=Priority.EXIT)
            self._check(reply)
        except Exception as exc:  # noqa: BLE001 - a background task must report, not die silently
            self._report(f"exits of {p.entry_cl_ord_id} not placed ({s.MARKET} entry filled at {fill_price}): {exc}")

    def _report(self, text: str) -> None:
        log.warning("tradovate: %s", text)
        self._on_error(text)

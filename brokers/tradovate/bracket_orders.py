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
from ..model import FillEvent, PlaceOrder
from ..ratebudget import Priority
from . import brackets
from . import schemas as s
from .lookup import lookup_order
from .transport import RestClient
from .writes import send_again_if_lost

log = logging.getLogger(__name__)
Json = dict[str, Any]
Check = Callable[[Any], None]


class BracketDesk:
    def __init__(self, rest: Callable[[], RestClient], check: Check, on_error: Callable[[str], None]) -> None:
        self._rest, self._check, self._on_error = rest, check, on_error
        self.waiting: dict[str, brackets.BracketPlan] = {}   # entry orderId → its exits
        self._tasks: set[asyncio.Task[None]] = set()

    async def place(self, command: PlaceOrder, entry: Json, account_name: str, tv_account: int) -> tuple[Json, Json]:
        """Send the entry: placeOSO with anchored exits, or placeorder alone (exits after the fill).

        Returns ``(reply, body sent)``. Never resent after it may have left (see the transport).
        """
        p = brackets.plan(command, account_name, tv_account)
        if p.anchor is None:
            reply = await self._rest().call("order/placeorder", entry, priority=Priority.ENTRY)
            self._check(reply)
            body = entry
        else:
            body = brackets.oso_body(entry, p)
            reply = await self._rest().call("order/placeoso", body, priority=Priority.ENTRY)
            self._check(reply)
            brackets.take_ids(p, reply)
        self.waiting[str(reply["orderId"])] = p
        return reply, body

    def on_fill(self, event: FillEvent) -> None:
        p = self.waiting.get(event.broker_order_id)
        if p is None:
            return
        average = brackets.record_fill(p, event.quantity, event.price)
        if average is None:
            return
        del self.waiting[event.broker_order_id]
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
        for body in brackets.reanchor(p, fill_price):
            try:
                self._check(await send_again_if_lost(self._rest(), "order/modifyorder", body, priority=Priority.EXIT))
            except Exception as exc:  # noqa: BLE001 - a background task must report, not die silently
                self._report(f"bracket exit {body.get('orderId')} of {p.entry_cl_ord_id} not re-anchored: {exc}")

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

"""Per-session memory of orders and fills that turns gateway payloads into model events.

Trades on the hub carry no cumulative or remaining quantity, and after a reconnect the same
order or trade may be seen twice (hub, then reconciliation via REST). This tracker keeps what
is needed to fill in ``cumulative_quantity``/``leaves_quantity`` and to emit each change once.

Finished orders do not stay forever (#18): an order that ended with all its trades counted
leaves the maps beyond the latest ``keep`` such orders, as a fingerprint (:mod:`..finished`).
A trade or an unchanged final state of a forgotten order, replayed by the reconciliation's
searches, is old news. A fingerprint goes when a complete reconciliation (trades, open orders
and the order history of the look-back window) no longer lists its order.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ...common.clock import utcnow
from ..finished import KEEP_IN_FULL, FinishedOrders
from ..model import FillEvent, OrderEvent, OrderStatus, PositionEvent
from . import answers, parsing
from . import schemas as px


@dataclass(slots=True)
class TrackedOrder:
    broker_order_id: str
    account_id: str
    client_order_id: str | None
    symbol: str
    size: int = 0
    filled: int = 0
    last: OrderEvent | None = None
    trade_ids: set[int] = field(default_factory=set)


class Tracker:
    def __init__(self, names_to_ours: dict[int, str], symbol_for: Any, keep: int = KEEP_IN_FULL) -> None:
        self._ours = names_to_ours  # ProjectX accountId → our account id
        self._symbol_for = symbol_for  # contractId → our symbol
        self.orders: dict[str, TrackedOrder] = {}
        self.by_client_id: dict[tuple[str, str], str] = {}
        self._trades_seen: set[int] = set()
        self._positions: dict[tuple[str, str], tuple[int, Any]] = {}
        self.finished = FinishedOrders(self._reported, keep)

    def _reported(self, broker_id: str) -> int:
        tracked = self.orders.get(broker_id)
        return tracked.filled if tracked is not None else 0

    def _retire_if_done(self, tracked: TrackedOrder) -> None:
        """An order that ended with every trade counted may push the oldest such order out."""
        last = tracked.last
        if last is None or not last.status.is_final or tracked.filled < last.filled_quantity:
            return
        for old in self.finished.finished(tracked.broker_order_id):
            gone = self.orders.pop(old, None)
            if gone is None:
                continue
            self._trades_seen.difference_update(gone.trade_ids)
            key = (gone.account_id, gone.client_order_id or "")
            if self.by_client_id.get(key) == old:
                del self.by_client_id[key]

    def forgotten(self, broker_id: str) -> bool:
        return self.finished.forgotten(broker_id) is not None

    def ours(self, account_id: Any) -> str | None:
        return self._ours.get(int(account_id)) if account_id is not None else None

    # -- orders ------------------------------------------------------------------------
    def remember(self, account_id: str, client_order_id: str, broker_order_id: str, symbol: str, size: int) -> None:
        if self.forgotten(broker_order_id):
            return  # it ended, was counted and forgotten before the answer was read
        tracked = self.orders.get(broker_order_id)
        if tracked is None:
            tracked = self.orders[broker_order_id] = TrackedOrder(broker_order_id, account_id, client_order_id, symbol)
        tracked.size = tracked.size or size
        tracked.client_order_id = tracked.client_order_id or client_order_id
        self.by_client_id[(account_id, client_order_id)] = broker_order_id

    def order_event(self, payload: Any) -> OrderEvent | None:
        """GatewayUserOrder / searchOpen item → OrderEvent, or ``None`` if nothing changed.
        A payload of the wrong shape raises ProtocolError (BAD_ANSWER) and changes nothing."""
        with answers.reading("order", payload):
            return self._order_event(_object(payload))

    def _order_event(self, payload: dict[str, Any]) -> OrderEvent | None:
        account_id = self.ours(payload.get("accountId"))
        if account_id is None:
            return None
        broker_id = str(answers.integer(payload.get("id"), "order id", payload))
        tag = payload.get("customTag") or None
        if tag is not None and not isinstance(tag, str):
            raise TypeError("customTag is not a string")
        symbol = self._symbol_for(payload["contractId"])
        size = int(payload.get("size") or 0)
        fill_volume = int(payload.get("fillVolume") or 0)
        type_code = int(payload.get("type") or 0)
        side = parsing.SIDE_FROM_PX[px.OrderSide(int(payload["side"]))]
        status = parsing.status_from_px(int(payload.get("status") or 0), size, fill_volume)
        limit_price = parsing.to_decimal(payload.get("limitPrice"))
        stop_price = parsing.to_decimal(payload.get("stopPrice"))
        timestamp = parsing.parse_time(payload.get("updateTimestamp")) or utcnow()
        reported = self.finished.forgotten(broker_id)
        if reported is not None and status.is_final and fill_volume <= reported:
            return None  # a forgotten order, replayed as it ended
        tracked = self.orders.get(broker_id)
        if tracked is None and reported is not None:  # it changed after all (a bust): back in full
            self.finished.reopened(broker_id)
            tracked = self.orders[broker_id] = TrackedOrder(broker_id, account_id, tag, symbol, filled=reported)
        if tracked is None:
            tracked = self.orders[broker_id] = TrackedOrder(broker_id, account_id, tag, symbol)
        if tag:
            tracked.client_order_id = tag
            self.by_client_id[(account_id, tag)] = broker_id
        tracked.size = size
        # An order type the gateway adds later reads as UNKNOWN (market), as the enum's own
        # "Unknown" does: the type only describes the order; its status and fills are what count.
        kind = px.OrderType(type_code) if type_code in px.OrderType._value2member_map_ else px.OrderType.UNKNOWN
        event = OrderEvent(
            account_id=account_id,
            client_order_id=tracked.client_order_id,
            broker_order_id=broker_id,
            symbol=symbol,
            side=side,
            order_type=parsing.TYPE_FROM_PX[kind],
            quantity=size,
            status=status,
            filled_quantity=fill_volume,
            limit_price=limit_price,
            stop_price=stop_price,
            timestamp=timestamp,
        )
        if tracked.last is not None and _same(tracked.last, event):
            return None
        tracked.last = event
        self._retire_if_done(tracked)
        return event

    # -- fills -------------------------------------------------------------------------
    def fill_event(self, payload: Any) -> FillEvent | None:
        """GatewayUserTrade / Trade/search item → FillEvent, once per trade id.
        A payload of the wrong shape raises ProtocolError (BAD_ANSWER) and is not counted: the
        trade id is marked seen only once the whole trade was read, so a good copy of it later
        (the reconciliation after a reconnect) still counts."""
        with answers.reading("trade", payload):
            return self._fill_event(_object(payload))

    def _fill_event(self, payload: dict[str, Any]) -> FillEvent | None:
        trade_id = answers.integer(payload.get("id"), "trade id", payload)
        account_id = self.ours(payload.get("accountId"))
        if account_id is None or trade_id in self._trades_seen or payload.get("voided"):
            return None
        broker_id = str(answers.integer(payload.get("orderId"), "trade orderId", payload))
        if self.forgotten(broker_id):
            return None  # every trade of a forgotten order was counted before it was forgotten
        symbol = self._symbol_for(payload["contractId"])
        size = answers.integer(payload.get("size"), "trade size", payload)
        price = parsing.to_decimal(payload.get("price"))
        side = parsing.SIDE_FROM_PX[px.OrderSide(int(payload["side"]))]
        timestamp = parsing.parse_time(payload.get("creationTimestamp")) or utcnow()
        if size <= 0 or price is None:
            raise ValueError(f"trade {trade_id}: size {size}, price {price}")
        self._trades_seen.add(trade_id)
        tracked = self.orders.get(broker_id)
        if tracked is None:
            tracked = self.orders[broker_id] = TrackedOrder(broker_id, account_id, None, symbol)
        tracked.filled += size
        tracked.trade_ids.add(trade_id)
        total = max(tracked.size, tracked.filled)
        fill = FillEvent(
            account_id=account_id,
            client_order_id=tracked.client_order_id,
            broker_order_id=broker_id,
            fill_id=str(trade_id),
            symbol=symbol,
            side=side,
            quantity=size,
            price=price,
            cumulative_quantity=tracked.filled,
            leaves_quantity=total - tracked.filled,
            timestamp=timestamp,
        )
        self._retire_if_done(tracked)
        return fill

    # -- positions ---------------------------------------------------------------------
    def position_event(self, payload: Any) -> PositionEvent | None:
        """GatewayUserPosition / searchOpen item → PositionEvent when it changed; a payload of
        the wrong shape raises ProtocolError (BAD_ANSWER) and changes nothing."""
        with answers.reading("position", payload):
            return self._position_event(_object(payload))

    def _position_event(self, payload: dict[str, Any]) -> PositionEvent | None:
        account_id = self.ours(payload.get("accountId"))
        if account_id is None:
            return None
        symbol = self._symbol_for(payload["contractId"])
        sign = -1 if int(payload.get("type") or 0) == px.PositionType.SHORT else 1
        net = sign * int(payload.get("size") or 0)
        average = parsing.to_decimal(payload.get("averagePrice")) if net else None
        timestamp = parsing.parse_time(payload.get("creationTimestamp")) or utcnow()
        key = (account_id, symbol)
        if self._positions.get(key) == (net, average):
            return None
        self._positions[key] = (net, average)
        return PositionEvent(
            account_id=account_id,
            symbol=symbol,
            net_quantity=net,
            average_price=average,
            timestamp=timestamp,
        )

    def flat_positions(self, account_id: str, open_symbols: set[str]) -> list[PositionEvent]:
        """Positions we believed open that REST no longer lists: they went flat while we were away."""
        events = []
        for (acct, symbol), (net, _) in list(self._positions.items()):
            if acct == account_id and net and symbol not in open_symbols:
                self._positions[(acct, symbol)] = (0, None)
                events.append(PositionEvent(account_id=acct, symbol=symbol, net_quantity=0, average_price=None))
        return events

    def open_order_ids(self, account_id: str) -> list[str]:
        return [
            o.broker_order_id
            for o in self.orders.values()
            if o.account_id == account_id and o.last is not None and not o.last.status.is_final
        ]


def _object(payload: Any) -> dict[str, Any]:
    if not isinstance(payload, dict):
        raise TypeError(f"payload is a {type(payload).__name__}, not an object")
    return payload


def _same(a: OrderEvent, b: OrderEvent) -> bool:
    return (a.status, a.filled_quantity, a.quantity, a.limit_price, a.stop_price) == (
        b.status,
        b.filled_quantity,
        b.quantity,
        b.limit_price,
        b.stop_price,
    )


FINAL = {OrderStatus.FILLED, OrderStatus.CANCELLED, OrderStatus.REJECTED, OrderStatus.EXPIRED}

"""Ingestion: the leader's own order and fill events become TradeSignals.

The normaliser keeps the last seen state of each leader order and turns a change into the
matching signal kind: first sight → ``new``; quantity or price changed → ``modify``;
cancelled → ``cancel``; each execution → ``fill`` (tracked, not copied). Signal ids are derived
from the leader order (and a version for modifies), so the same leader event seen again — a
reconnect snapshot, a duplicated push — produces the same id and no second follower order.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from dataclasses import dataclass
from decimal import Decimal

from ...brokers.base import BrokerAdapter
from ...brokers.model import FillEvent, OrderEvent, OrderStatus, OrderType
from ...core import ids
from ...core.records import Execution, TradeSignal
from ...core.signals import encode_signal
from ..shared.outbox import Outbox
from ..shared.refused_events import refused_broker_event

log = logging.getLogger(__name__)


@dataclass(slots=True)
class _LeaderOrder:
    quantity: int
    limit_price: Decimal | None
    stop_price: Decimal | None
    modifies: int = 0
    cancelled: bool = False


class SignalNormalizer:
    """Stateful translation of one leader account's broker events into signals."""

    def __init__(self, leader_account: str, platform: str) -> None:
        self.leader_account = leader_account
        self.platform = platform
        self._orders: dict[str, _LeaderOrder] = {}
        self._net: dict[str, int] = {}
        self._fills_seen: OrderedDict[str, None] = OrderedDict()

    def _closes_position(self, event: OrderEvent) -> bool:
        """A market order for exactly the leader's open position means "go flat".

        Copied as a scaled order it would leave followers with a remainder wherever their rule
        is not proportional (fixed size, caps, ratios); copied as a flatten, every follower
        ends flat with the leader.
        """
        net = self._net.get(event.symbol, 0)
        return (
            event.order_type is OrderType.MARKET
            and net != 0
            and event.side.sign == -1 * (1 if net > 0 else -1)
            and event.quantity == abs(net)
        )

    def on_event(self, event: object) -> TradeSignal | None:
        detected = time.time()
        if isinstance(event, FillEvent):
            if event.fill_id in self._fills_seen:
                return None  # the broker reported this execution twice
            self._fills_seen[event.fill_id] = None
            if len(self._fills_seen) > 10_000:
                self._fills_seen.popitem(last=False)
            self._net[event.symbol] = self._net.get(event.symbol, 0) + event.side.sign * event.quantity
            return self._signal(
                "fill",
                event.broker_order_id,
                event.symbol,
                event.side.value,
                event.quantity,
                detected,
                version=event.fill_id,
                fill_price=event.price,
                occurred_at=event.timestamp,
            )
        if not isinstance(event, OrderEvent) or event.status is OrderStatus.PENDING:
            return None
        known = self._orders.get(event.broker_order_id)
        if known is None:
            if event.status in (OrderStatus.REJECTED, OrderStatus.CANCELLED, OrderStatus.EXPIRED):
                return None  # an order that never worked has nothing to copy
            self._orders[event.broker_order_id] = _LeaderOrder(event.quantity, event.limit_price, event.stop_price)
            kind = "flatten" if self._closes_position(event) else "new"
            return self._signal(
                kind, event.broker_order_id, event.symbol, event.side.value, event.quantity, detected, event=event
            )
        if event.status in (OrderStatus.CANCELLED, OrderStatus.EXPIRED):
            if known.cancelled:
                return None
            known.cancelled = True
            return self._signal(
                "cancel", event.broker_order_id, event.symbol, event.side.value, event.quantity, detected, event=event
            )
        changed = (event.quantity, event.limit_price, event.stop_price) != (
            known.quantity,
            known.limit_price,
            known.stop_price,
        )
        if changed and not event.status.is_final:
            known.modifies += 1
            known.quantity, known.limit_price, known.stop_price = event.quantity, event.limit_price, event.stop_price
            return self._signal(
                "modify",
                event.broker_order_id,
                event.symbol,
                event.side.value,
                event.quantity,
                detected,
                version=known.modifies,
                event=event,
            )
        return None

    def _signal(
        self,
        kind: str,
        order_id: str,
        symbol: str,
        side: str,
        quantity: int,
        detected: float,
        *,
        version: int | str = 0,
        event: OrderEvent | None = None,
        fill_price: Decimal | None = None,
        occurred_at: object = None,
    ) -> TradeSignal:
        return TradeSignal(
            signal_id=ids.signal_id(self.leader_account, order_id, kind, version),
            leader_account=self.leader_account,
            platform=self.platform,
            symbol=symbol,
            side=side,
            quantity=quantity,
            kind=kind,
            order_type=event.order_type.value if event else "market",
            limit_price=event.limit_price if event else None,
            stop_price=event.stop_price if event else None,
            fill_price=fill_price,
            leader_order_id=order_id,
            source="adapter",
            occurred_at=occurred_at or (event.timestamp if event else None),
            stamps=_stamps(detected, occurred_at or (event.timestamp if event else None)),
        )


def _stamps(detected: float, occurred: object) -> dict[str, float]:
    """``occurred`` is the broker's own event time, when it gives one (detection latency)."""
    stamps = {"detected": detected}
    timestamp = getattr(occurred, "timestamp", None)
    if timestamp is not None:
        stamps["occurred"] = timestamp()
    return stamps


class LeaderWatcher:
    """Follows one leader session's events and publishes signals and leader executions."""

    def __init__(self, adapter: BrokerAdapter, leader_account: str, outbox: Outbox) -> None:
        self.adapter = adapter
        self.leader_account = leader_account
        self.outbox = outbox
        self.normalizer = SignalNormalizer(leader_account, adapter.platform)
        self.published = 0

    async def run(self) -> None:
        events = self.adapter.events()
        try:
            async for event in events:
                if getattr(event, "account_id", self.leader_account) != self.leader_account:
                    continue
                try:
                    await self.handle(event)
                except (ValueError, TypeError, ArithmeticError) as exc:  # RecordError, or the signal codec's
                    # refusal of a broker's absurd value: said, and the next event is read
                    await self.outbox.error(refused_broker_event("ingest", self.adapter.platform, event, exc))
        finally:
            events.close()

    async def handle(self, event: object) -> None:
        signal = self.normalizer.on_event(event)
        if signal is None:
            return
        signal.stamps = {**signal.stamps, "published": time.time()}
        await self.outbox.signal(signal.symbol, encode_signal(signal))
        self.published += 1
        if isinstance(event, FillEvent):
            await self.outbox.execution(
                Execution(
                    execution_id=f"{event.account_id}|{event.broker_order_id}|fill|{event.fill_id}",
                    account_id=self.leader_account,
                    platform=self.adapter.platform,
                    kind="partial_fill" if event.is_partial else "fill",
                    broker_order_id=event.broker_order_id,
                    signal_id=signal.signal_id,
                    symbol=event.symbol,
                    side=event.side.value,
                    quantity=event.quantity,
                    price=event.price,
                    cumulative_quantity=event.cumulative_quantity,
                    leaves_quantity=event.leaves_quantity,
                    is_leader=True,
                    occurred_at=event.timestamp,
                    stamps=signal.stamps,
                )
            )


async def watch_leaders(watchers: list[LeaderWatcher]) -> None:
    await asyncio.gather(*(w.run() for w in watchers))

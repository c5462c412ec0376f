"""Fault switches a test flips on a simulator; each fires once unless said otherwise.

The kernel consumes the order-level faults; a platform's transport consumes the rest (drop the
connection, expire the token, answer with the platform's rate-limit response, delay acks).
After flipping a transport switch a test calls ``SimExchange.faults_changed(account)`` so a
transport that registered a fault listener acts at once; one that did not acts on the next
request or heartbeat.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from decimal import Decimal


@dataclass(slots=True)
class FaultSwitches:
    reject_next: str | None = None  # reason text of the next order's reject
    duplicate_next_fill: bool = False  # publish the next fill twice (same fill id)
    partial_fill_lot: int | None = None  # fill market orders in lots of this size, one per step
    ack_delay_ms: float = 0.0  # added to every order ack while set
    drop_connection: bool = False  # transport: close the client's connection now
    expire_token: bool = False  # transport: the next authenticated call finds the token expired
    rate_limit_next: int = 0  # transport: answer this many requests with the rate-limit reply
    fill_before_cancel: bool = False  # the next cancel loses the race: the order fills first
    # the next fill is reported, then busted (TradeCancel) or corrected (TradeCorrect) at once;
    # a correction changes the price and/or the quantity (strings from scenario files are fine)
    bust_next_fill: bool = False
    correct_next_fill_price: Decimal | str | None = None
    correct_next_fill_quantity: int | None = None
    # transport: the broker carries out the request, then its answer is lost (timeout or reset).
    # This is how real copiers double orders, so the executor must survive it without a repeat.
    lose_response_next: int = 0  # the next N order requests
    lose_response_rate: float = 0.0  # and this fraction of all order requests (seeded)
    # transport: the client's keep-alive frames stop reaching the server (until it closes the
    # connection for silence); how a half-dead network looks to a platform with a heartbeat TTL.
    lose_heartbeats: bool = False
    rng: random.Random = field(default_factory=lambda: random.Random(11), repr=False)

    def take_reject(self) -> str | None:
        reason, self.reject_next = self.reject_next, None
        return reason

    def take_duplicate_fill(self) -> bool:
        fired, self.duplicate_next_fill = self.duplicate_next_fill, False
        return fired

    def take_drop(self) -> bool:
        fired, self.drop_connection = self.drop_connection, False
        return fired

    def take_expire_token(self) -> bool:
        fired, self.expire_token = self.expire_token, False
        return fired

    def take_fill_before_cancel(self) -> bool:
        fired, self.fill_before_cancel = self.fill_before_cancel, False
        return fired

    def take_rate_limit(self) -> bool:
        if self.rate_limit_next > 0:
            self.rate_limit_next -= 1
            return True
        return False

    def take_lose_heartbeats(self) -> bool:
        fired, self.lose_heartbeats = self.lose_heartbeats, False
        return fired

    def take_lose_response(self) -> bool:
        """True when the request just carried out must lose its answer."""
        if self.lose_response_next > 0:
            self.lose_response_next -= 1
            return True
        return self.lose_response_rate > 0 and self.rng.random() < self.lose_response_rate

    def take_fill_correction(self) -> tuple[bool, Decimal | None, int | None] | None:
        """``(busted, new price, new quantity)`` for the fill just reported, or None."""
        if self.bust_next_fill:
            self.bust_next_fill = False
            return True, None, None
        price, quantity = self.correct_next_fill_price, self.correct_next_fill_quantity
        if price is None and quantity is None:
            return None
        self.correct_next_fill_price = self.correct_next_fill_quantity = None
        return False, None if price is None else Decimal(str(price)), None if quantity is None else int(quantity)

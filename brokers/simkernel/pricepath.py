"""Deterministic price paths: the same seed and symbol always walk the same way.

A random walk in whole ticks around the instrument's reference price. Tests and the demo can
also pin a price (``set_price``) to make a limit or stop order trade on purpose.
"""

from __future__ import annotations

import hashlib
import random
from decimal import Decimal

from ..instruments import instrument_for


class PricePath:
    def __init__(self, seed: int = 7, max_step_ticks: int = 2) -> None:
        self._seed = seed
        self._max_step = max_step_ticks
        self._prices: dict[str, Decimal] = {}
        self._rngs: dict[str, random.Random] = {}

    def _rng(self, symbol: str) -> random.Random:
        rng = self._rngs.get(symbol)
        if rng is None:
            digest = hashlib.blake2b(f"{self._seed}:{symbol}".encode(), digest_size=8).digest()
            rng = self._rngs[symbol] = random.Random(int.from_bytes(digest, "big"))
        return rng

    def price(self, symbol: str) -> Decimal:
        """Last price; a symbol starts at its instrument's reference price."""
        price = self._prices.get(symbol)
        if price is None:
            price = self._prices[symbol] = instrument_for(symbol).reference_price
        return price

    def set_price(self, symbol: str, price: Decimal) -> None:
        self._prices[symbol] = instrument_for(symbol).round_to_tick(price)

    def step(self, symbol: str) -> Decimal:
        """Move one step (−max..+max ticks) and return the new last price."""
        tick = instrument_for(symbol).tick_size
        moved = self.price(symbol) + tick * self._rng(symbol).randint(-self._max_step, self._max_step)
        self._prices[symbol] = max(moved, tick)
        return self._prices[symbol]

    def symbols(self) -> list[str]:
        return list(self._prices)

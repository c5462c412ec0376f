"""Scaling rules: how many contracts, which symbol and which side a follower trades.

Pure functions over :class:`CopyRule` so they are tested exhaustively without Kafka.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from decimal import ROUND_DOWN, Decimal

from ..brokers.instruments import map_symbol
from ..common.bounds import MAX_QUANTITY


class ScalingMode(str, enum.Enum):
    FIXED = "fixed"  # always ``quantity`` contracts
    MULTIPLIER = "multiplier"  # leader quantity × ``multiplier``
    RATIO = "ratio"  # leader quantity × follower size ÷ leader size (account sizes)


@dataclass(frozen=True, slots=True)
class CopyRule:
    mode: ScalingMode = ScalingMode.MULTIPLIER
    quantity: int = 1
    multiplier: Decimal = Decimal(1)
    max_quantity: int | None = None
    symbol_map: dict[str, str] = field(default_factory=dict)
    inverse: bool = False
    min_quantity: int = 1
    price_band_ticks: int | None = None  # market orders become limits this many ticks through the touch
    on_no_quote: str = "market"  # without a fresh quote: "market" (warn) or "skip"

    def __post_init__(self) -> None:
        if self.quantity <= 0:
            raise ValueError(f"quantity must be positive, got {self.quantity}")
        if self.multiplier <= 0:
            raise ValueError(f"multiplier must be positive, got {self.multiplier}")
        if self.max_quantity is not None and self.max_quantity <= 0:
            raise ValueError(f"max_quantity must be positive, got {self.max_quantity}")
        if self.min_quantity < 0:
            raise ValueError(f"min_quantity must not be negative, got {self.min_quantity}")
        if self.price_band_ticks is not None and self.price_band_ticks < 0:
            raise ValueError(f"price_band_ticks must not be negative, got {self.price_band_ticks}")
        if self.on_no_quote not in ("market", "skip"):
            raise ValueError(f"on_no_quote must be market or skip, got {self.on_no_quote!r}")


class ScaledToZero(ValueError):
    """The rule turned the leader's quantity into no contracts: the copy is skipped, on record."""


class ScaledTooLarge(ValueError):
    """The rule turned the leader's quantity into more than ``MAX_QUANTITY`` contracts."""


def scaled_quantity(
    rule: CopyRule, leader_quantity: int, leader_size: Decimal | None = None, follower_size: Decimal | None = None
) -> int:
    """Follower contracts for ``leader_quantity``; rounds down (never more risk than asked).

    Rounding a positive fraction below one contract up to ``min_quantity`` keeps a small
    follower in the trade; ``min_quantity=0`` skips it instead (``ScaledToZero``).
    """
    if leader_quantity <= 0:
        raise ValueError(f"leader quantity must be positive, got {leader_quantity}")
    if rule.mode is ScalingMode.FIXED:
        raw = Decimal(rule.quantity)
    elif rule.mode is ScalingMode.MULTIPLIER:
        raw = leader_quantity * rule.multiplier
    else:
        if not leader_size or not follower_size:
            raise ValueError("ratio scaling needs both account sizes")
        raw = leader_quantity * follower_size / leader_size * rule.multiplier
    if raw > MAX_QUANTITY:  # before int(): a huge Decimal would become a huge integer
        raise ScaledTooLarge(f"{leader_quantity} leader contracts scale to {raw:.6g} (more than {MAX_QUANTITY})")
    quantity = int(raw.to_integral_value(rounding=ROUND_DOWN))
    if quantity == 0 and raw > 0:
        quantity = rule.min_quantity
    if rule.max_quantity is not None:
        quantity = min(quantity, rule.max_quantity)
    if quantity <= 0:
        raise ScaledToZero(f"{leader_quantity} leader contracts scale to {raw} (below one)")
    return quantity


def scales_positions(rule: CopyRule, leader_size: Decimal | None = None, follower_size: Decimal | None = None) -> bool:
    """Whether the follower's copies of any leader orders add up to the leader's net position
    scaled as one order: each order scaled by a whole factor, never rounded, raised to
    ``min_quantity`` or cut at ``max_quantity``.

    Why: reconciliation derives a follower's target position from its leader's. That holds
    only for such rules. A fixed size copies every leader order as the same quantity (six
    leader sells of 1–3 contracts made a fixed-2 follower -12 while the leader held -13,
    whose position scaled as one order is -2), and a fractional multiplier rounds order by
    order, so their positions follow the leader's order history, not its position.
    """
    if rule.max_quantity is not None:
        return False
    if rule.mode is ScalingMode.MULTIPLIER:
        factor = rule.multiplier
    elif rule.mode is ScalingMode.RATIO and leader_size and follower_size:
        factor = follower_size / leader_size * rule.multiplier
    else:
        return False
    return factor >= 1 and factor == factor.to_integral_value()


def follower_side(rule: CopyRule, leader_side: str) -> str:
    if not rule.inverse:
        return leader_side
    return "sell" if leader_side == "buy" else "buy"


def follower_symbol(rule: CopyRule, leader_symbol: str) -> str:
    return map_symbol(leader_symbol, rule.symbol_map)

"""The signal record: what any producer (adapter, webhook, REST, ``copytrader send``) may put on
``trade.signals``. Fan-out decodes every message with it before anything else touches a value."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any

import msgspec

from ...common import bounds as b
from .types import (
    Id,
    NonEmptyText,
    OrderType,
    Quantity,
    Side,
    SignalId,
    SignalKind,
    Stamps,
    Symbol,
    Text,
)


class SignalIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """A leader's trade event as sent; ``TradeSignal`` adds the rules between fields."""

    signal_id: SignalId
    leader_account: Id
    symbol: Symbol
    side: Side
    quantity: Quantity
    platform: NonEmptyText = "external"
    kind: SignalKind = "new"
    order_type: OrderType = "market"
    limit_price: Decimal | None = None
    stop_price: Decimal | None = None
    fill_price: Decimal | None = None
    leader_order_id: Text = ""
    source: Text = "adapter"
    occurred_at: Annotated[datetime, msgspec.Meta(tz=True)] | None = None
    stamps: Stamps = msgspec.field(default_factory=dict)
    # Faust's own metadata on records it serialised (``{"ns": "...TradeSignal"}``).
    faust: dict[Annotated[str, msgspec.Meta(max_length=16)], Text] | None = msgspec.field(default=None, name="__faust")

    def __post_init__(self) -> None:
        for name in ("limit_price", "stop_price", "fill_price"):
            try:
                b.check_decimal(getattr(self, name), maximum=b.MAX_PRICE, what="price")
            except b.BoundError as exc:
                raise ValueError(f"{name}: {exc}") from None

    def fields(self) -> dict[str, Any]:
        """Keyword arguments for ``TradeSignal`` (without Faust's metadata)."""
        out = {f: getattr(self, f) for f in self.__struct_fields__ if f != "faust"}
        if out["occurred_at"] is None:
            del out["occurred_at"]
        return out

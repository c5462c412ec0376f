"""Cost of decoding + validating one TradeSignal-like record: msgspec vs pydantic v2 vs today's path.

Run: ``.venv/bin/python scripts/bench_validation.py``; prints µs per record for each library,
on the wire form fan-out sees (JSON bytes of a limit order with stamps). Numbers land in
docs/validation.md. Standalone on purpose: it must measure the libraries, not our wrappers.
"""

from __future__ import annotations

import enum
import math
import timeit
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Literal

import msgspec
import orjson
import pydantic

PAYLOAD = orjson.dumps(
    {
        "signal_id": "leader-1:4711:new",
        "leader_account": "leader-1",
        "platform": "paper",
        "symbol": "ESZ6",
        "side": "buy",
        "quantity": 2,
        "kind": "new",
        "order_type": "limit",
        "limit_price": "5001.25",
        "stop_price": None,
        "fill_price": None,
        "leader_order_id": "4711",
        "source": "adapter",
        "occurred_at": "2026-11-30T18:00:00.123456+00:00",
        "stamps": {"occurred": 1795780000.1, "detected": 1795780000.12, "published": 1795780000.13},
    }
)


class Side(str, enum.Enum):
    BUY = "buy"
    SELL = "sell"


def _finite(value: Decimal | None) -> None:
    if value is not None and (not value.is_finite() or not 0 < value <= 10**9):
        raise ValueError("price must be finite, positive and at most 1e9")


class MsgspecSignal(msgspec.Struct, forbid_unknown_fields=True):
    signal_id: Annotated[str, msgspec.Meta(min_length=1, max_length=256)]
    leader_account: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
    symbol: Annotated[str, msgspec.Meta(min_length=1, max_length=32)]
    side: Side
    quantity: Annotated[int, msgspec.Meta(ge=0, le=10_000)]
    platform: str = "external"
    kind: Literal["new", "modify", "cancel", "fill", "flatten"] = "new"
    order_type: Literal["market", "limit", "stop", "stop_limit"] = "market"
    limit_price: Decimal | None = None
    stop_price: Decimal | None = None
    fill_price: Decimal | None = None
    leader_order_id: str = ""
    source: str = "adapter"
    occurred_at: datetime | None = None
    stamps: dict[str, Annotated[float, msgspec.Meta(ge=0, le=1e11)]] = {}

    def __post_init__(self) -> None:
        _finite(self.limit_price)
        _finite(self.stop_price)
        _finite(self.fill_price)


Price = Annotated[Decimal, pydantic.Field(gt=0, le=10**9, allow_inf_nan=False)] | None


class PydanticSignal(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(strict=True, extra="forbid")

    signal_id: Annotated[str, pydantic.Field(min_length=1, max_length=256)]
    leader_account: Annotated[str, pydantic.Field(min_length=1, max_length=64)]
    symbol: Annotated[str, pydantic.Field(min_length=1, max_length=32)]
    side: Side
    quantity: Annotated[int, pydantic.Field(ge=0, le=10_000)]
    platform: str = "external"
    kind: Literal["new", "modify", "cancel", "fill", "flatten"] = "new"
    order_type: Literal["market", "limit", "stop", "stop_limit"] = "market"
    limit_price: Price = None
    stop_price: Price = None
    fill_price: Price = None
    leader_order_id: str = ""
    source: str = "adapter"
    occurred_at: datetime | None = None
    stamps: dict[str, Annotated[float, pydantic.Field(ge=0, le=1e11, allow_inf_nan=False)]] = {}


def main() -> None:
    from copytrader.core.records import TradeSignal
    from copytrader.core.signals import decode_signal

    msgspec_decoder = msgspec.json.Decoder(MsgspecSignal, strict=True)
    assert math.isclose(msgspec_decoder.decode(PAYLOAD).stamps["detected"], 1795780000.12)
    PydanticSignal.model_validate_json(PAYLOAD)
    cases = {
        "orjson.loads + TradeSignal(**) (before #12)": lambda: TradeSignal(**orjson.loads(PAYLOAD)),
        "msgspec decode+validate": lambda: msgspec_decoder.decode(PAYLOAD),
        "pydantic model_validate_json": lambda: PydanticSignal.model_validate_json(PAYLOAD),
        "msgspec + TradeSignal(**)": lambda: TradeSignal(**msgspec.structs.asdict(msgspec_decoder.decode(PAYLOAD))),
        "pydantic + TradeSignal(**)": lambda: TradeSignal(**dict(PydanticSignal.model_validate_json(PAYLOAD))),
        "decode_signal as shipped (app.schemas.SignalIn)": lambda: decode_signal(PAYLOAD),
    }
    for name, call in cases.items():
        number = 20_000
        best = min(timeit.repeat(call, number=number, repeat=5)) / number
        print(f"{name:45s} {best * 1e6:7.2f} µs/record")


if __name__ == "__main__":
    main()

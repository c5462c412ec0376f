"""DTC message definitions: type numbers, enums and the binary struct layouts.

Field order, widths and defaults follow the public DTC header version 8
(``cloudostrich/dtcpp:DTCProtocol.h``). The header packs structs with natural alignment
(``#pragma pack(push, 8)``), so every field sits at a multiple of its own size and the struct
is padded to its widest member. Python's ``struct`` with ``<`` adds no padding, so the pads are
computed here and written into the format explicitly; :data:`SIZES` holds the ``sizeof`` of
each struct measured by compiling that header with g++ (x86-64), and importing this module
fails if a layout drifts from it.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from dataclasses import dataclass

from .enums import (
    BuySell,
    Encoding,
    LogonStatus,
    MsgType,
    OrderStatus,
    OrderType,
    OrderUpdateReason,
    TimeInForce,
    TradeMode,
)

__all__ = [
    "DBL_MAX",
    "MESSAGES",
    "SIZES",
    "BuySell",
    "Encoding",
    "Field",
    "LogonStatus",
    "MessageSpec",
    "MsgType",
    "OrderStatus",
    "OrderType",
    "OrderUpdateReason",
    "TimeInForce",
    "TradeMode",
    "Value",
    "spec_for",
]

#: "Unset, do not use" marker of ORDER_UPDATE's doubles (the header's ``Clear`` sets them to it).
DBL_MAX = 1.7976931348623157e308
PROTOCOL_VERSION = 8

Value = int | float | str


# struct codes: i32 covers the header's int32 enums; the string kind is "s" with a width.
_CODES = {"u8": "B", "i8": "b", "u32": "I", "i32": "i", "i64": "q", "u64": "Q", "f64": "d"}
_INT_KINDS = {"u8": (0, 0xFF), "i8": (-0x80, 0x7F), "u32": (0, 0xFFFFFFFF), "i32": (-(2**31), 2**31 - 1)}
_INT_KINDS["i64"] = (-(2**63), 2**63 - 1)
_INT_KINDS["u64"] = (0, 2**64 - 1)


@dataclass(frozen=True, slots=True)
class Field:
    name: str
    kind: str  # "u8" "i8" "u32" "i32" "i64" "u64" "f64" or "s" (fixed char array)
    width: int = 0  # bytes of a char array; 0 for numbers
    default: Value | None = None

    @property
    def size(self) -> int:
        return self.width if self.kind == "s" else struct.calcsize("<" + _CODES[self.kind])

    @property
    def align(self) -> int:
        return 1 if self.kind == "s" else self.size

    @property
    def zero(self) -> Value:
        if self.default is not None:
            return self.default
        if self.kind == "s":
            return ""
        return 0.0 if self.kind == "f64" else 0

    def int_range(self) -> tuple[int, int] | None:
        return _INT_KINDS.get(self.kind)


@dataclass(frozen=True)
class MessageSpec:
    """One message: its type number, fields in header order, and the derived ``struct`` format."""

    type: MsgType
    fields: tuple[Field, ...]
    fmt: str
    size: int

    @property
    def name(self) -> str:
        return self.type.name

    def field(self, name: str) -> Field | None:
        for f in self.fields:
            if f.name == name:
                return f
        return None


def _layout(msg_type: MsgType, fields: tuple[Field, ...]) -> MessageSpec:
    """Place the fields after ``uint16 Size, uint16 Type`` with natural alignment and padding."""
    fmt, offset, widest = "<HH", 4, 2
    for f in fields:
        pad = -offset % f.align
        fmt += f"{pad}x" if pad else ""
        fmt += f"{f.width}s" if f.kind == "s" else _CODES[f.kind]
        offset += pad + f.size
        widest = max(widest, f.align)
    tail = -offset % widest
    fmt += f"{tail}x" if tail else ""
    size = struct.calcsize(fmt)
    return MessageSpec(msg_type, fields, fmt, size)


def _s(name: str, width: int) -> Field:
    return Field(name, "s", width)


def _n(name: str, kind: str, default: Value | None = None) -> Field:
    return Field(name, kind, 0, default)


_UNSET = DBL_MAX
_ENCODING = (
    _n("ProtocolVersion", "i32", PROTOCOL_VERSION),
    _n("Encoding", "i32"),
    Field("ProtocolType", "s", 4, "DTC"),
)

_DEFS: dict[MsgType, tuple[Field, ...]] = {
    MsgType.ENCODING_REQUEST: _ENCODING,
    MsgType.ENCODING_RESPONSE: _ENCODING,
    MsgType.LOGON_REQUEST: (
        _n("ProtocolVersion", "i32", PROTOCOL_VERSION),
        _s("Username", 32),
        _s("Password", 32),
        _s("GeneralTextData", 64),
        _n("Integer_1", "i32"),
        _n("Integer_2", "i32"),
        _n("HeartbeatIntervalInSeconds", "i32"),
        _n("TradeMode", "i32"),
        _s("TradeAccount", 32),
        _s("HardwareIdentifier", 64),
        _s("ClientName", 32),
    ),
    MsgType.LOGON_RESPONSE: (
        _n("ProtocolVersion", "i32", PROTOCOL_VERSION),
        _n("Result", "i32"),
        _s("ResultText", 96),
        _s("ReconnectAddress", 64),
        _n("Integer_1", "i32"),
        _s("ServerName", 60),
        _n("MarketDepthUpdatesBestBidAndAsk", "u8"),
        _n("TradingIsSupported", "u8"),
        _n("OCOOrdersSupported", "u8"),
        _n("OrderCancelReplaceSupported", "u8", 1),
        _s("SymbolExchangeDelimiter", 4),
        _n("SecurityDefinitionsSupported", "u8"),
        _n("HistoricalPriceDataSupported", "u8"),
        _n("ResubscribeWhenMarketDataFeedAvailable", "u8"),
        _n("MarketDepthIsSupported", "u8", 1),
        _n("OneHistoricalPriceDataRequestPerConnection", "u8"),
        _n("BracketOrdersSupported", "u8"),
        _n("UseIntegerPriceOrderMessages", "u8"),
        _n("UsesMultiplePositionsPerSymbolAndTradeAccount", "u8"),
        _n("MarketDataSupported", "u8", 1),
    ),
    MsgType.HEARTBEAT: (_n("NumDroppedMessages", "u32"), _n("CurrentDateTime", "i64")),
    MsgType.LOGOFF: (_s("Reason", 96), _n("DoNotReconnect", "u8")),
    MsgType.SUBMIT_NEW_SINGLE_ORDER: (
        _s("Symbol", 64),
        _s("Exchange", 16),
        _s("TradeAccount", 32),
        _s("ClientOrderID", 32),
        _n("OrderType", "i32"),
        _n("BuySell", "i32"),
        _n("Price1", "f64"),
        _n("Price2", "f64"),
        _n("Quantity", "f64"),
        _n("TimeInForce", "i32"),
        _n("GoodTillDateTime", "i64"),
        _n("IsAutomatedOrder", "u8"),
        _n("IsParentOrder", "u8"),
        _s("FreeFormText", 48),
        _n("OpenOrClose", "i32"),
        _n("MaxShowQuantity", "f64"),
    ),
    MsgType.SUBMIT_NEW_OCO_ORDER: (
        _s("Symbol", 64),
        _s("Exchange", 16),
        _s("ClientOrderID_1", 32),
        _n("OrderType_1", "i32"),
        _n("BuySell_1", "i32"),
        _n("Price1_1", "f64"),
        _n("Price2_1", "f64"),
        _n("Quantity_1", "f64"),
        _s("ClientOrderID_2", 32),
        _n("OrderType_2", "i32"),
        _n("BuySell_2", "i32"),
        _n("Price1_2", "f64"),
        _n("Price2_2", "f64"),
        _n("Quantity_2", "f64"),
        _n("TimeInForce", "i32"),
        _n("GoodTillDateTime", "i64"),
        _s("TradeAccount", 32),
        _n("IsAutomatedOrder", "u8"),
        _s("ParentTriggerClientOrderID", 32),
        _s("FreeFormText", 48),
        _n("OpenOrClose", "i32"),
        _n("PartialFillHandling", "i8"),
        _n("UseOffsets", "u8"),
        _n("OffsetFromParent1", "f64"),
        _n("OffsetFromParent2", "f64"),
    ),
    MsgType.SUBMIT_FLATTEN_POSITION_ORDER: (
        _s("Symbol", 64),
        _s("Exchange", 16),
        _s("TradeAccount", 32),
        _s("ClientOrderID", 32),
        _s("FreeFormText", 48),
        _n("IsAutomatedOrder", "u8"),
    ),
    MsgType.CANCEL_ORDER: (_s("ServerOrderID", 32), _s("ClientOrderID", 32)),
    MsgType.CANCEL_REPLACE_ORDER: (
        _s("ServerOrderID", 32),
        _s("ClientOrderID", 32),
        _n("Price1", "f64"),
        _n("Price2", "f64"),
        _n("Quantity", "f64"),
        _n("Price1IsSet", "u8", 1),
        _n("Price2IsSet", "u8", 1),
        _n("Unused", "i32"),
        _n("TimeInForce", "i32"),
        _n("GoodTillDateTime", "i64"),
        _n("UpdatePrice1OffsetToParent", "u8"),
    ),
    MsgType.ORDER_UPDATE: (
        _n("RequestID", "i32"),
        _n("TotalNumMessages", "i32"),
        _n("MessageNumber", "i32"),
        _s("Symbol", 64),
        _s("Exchange", 16),
        _s("PreviousServerOrderID", 32),
        _s("ServerOrderID", 32),
        _s("ClientOrderID", 32),
        _s("ExchangeOrderID", 32),
        _n("OrderStatus", "i32"),
        _n("OrderUpdateReason", "i32"),
        _n("OrderType", "i32"),
        _n("BuySell", "i32"),
        _n("Price1", "f64", _UNSET),
        _n("Price2", "f64", _UNSET),
        _n("TimeInForce", "i32"),
        _n("GoodTillDateTime", "i64"),
        _n("OrderQuantity", "f64", _UNSET),
        _n("FilledQuantity", "f64", _UNSET),
        _n("RemainingQuantity", "f64", _UNSET),
        _n("AverageFillPrice", "f64", _UNSET),
        _n("LastFillPrice", "f64", _UNSET),
        _n("LastFillDateTime", "i64"),
        _n("LastFillQuantity", "f64", _UNSET),
        _s("LastFillExecutionID", 64),
        _s("TradeAccount", 32),
        _s("InfoText", 96),
        _n("NoOrders", "u8"),
        _s("ParentServerOrderID", 32),
        _s("OCOLinkedOrderServerOrderID", 32),
        _n("OpenOrClose", "i32"),
        _s("PreviousClientOrderID", 32),
        _s("FreeFormText", 48),
        _n("OrderReceivedDateTime", "i64"),
        _n("LatestTransactionDateTime", "f64"),
    ),
    MsgType.OPEN_ORDERS_REQUEST: (
        _n("RequestID", "i32"),
        _n("RequestAllOrders", "i32", 1),
        _s("ServerOrderID", 32),
        _s("TradeAccount", 32),
    ),
    MsgType.OPEN_ORDERS_REJECT: (_n("RequestID", "i32"), _s("RejectText", 96)),
    MsgType.HISTORICAL_ORDER_FILLS_REQUEST: (
        _n("RequestID", "i32"),
        _s("ServerOrderID", 32),
        _n("NumberOfDays", "i32"),
        _s("TradeAccount", 32),
        _n("StartDateTime", "i64"),
    ),
    MsgType.HISTORICAL_ORDER_FILL_RESPONSE: (
        _n("RequestID", "i32"),
        _n("TotalNumberMessages", "i32"),
        _n("MessageNumber", "i32"),
        _s("Symbol", 64),
        _s("Exchange", 16),
        _s("ServerOrderID", 32),
        _n("BuySell", "i32"),
        _n("Price", "f64"),
        _n("DateTime", "i64"),
        _n("Quantity", "f64"),
        _s("UniqueExecutionID", 64),
        _s("TradeAccount", 32),
        _n("OpenClose", "i32"),
        _n("NoOrderFills", "u8"),
        _s("InfoText", 96),
        _n("HighPriceDuringPosition", "f64"),
        _n("LowPriceDuringPosition", "f64"),
        _n("PositionQuantity", "f64", _UNSET),
    ),
    MsgType.HISTORICAL_ORDER_FILLS_REJECT: (_n("RequestID", "i32"), _s("RejectText", 96)),
    MsgType.CURRENT_POSITIONS_REQUEST: (_n("RequestID", "i32"), _s("TradeAccount", 32)),
    MsgType.CURRENT_POSITIONS_REJECT: (_n("RequestID", "i32"), _s("RejectText", 96)),
    MsgType.POSITION_UPDATE: (
        _n("RequestID", "i32"),
        _n("TotalNumberMessages", "i32"),
        _n("MessageNumber", "i32"),
        _s("Symbol", 64),
        _s("Exchange", 16),
        _n("Quantity", "f64"),
        _n("AveragePrice", "f64"),
        _s("PositionIdentifier", 32),
        _s("TradeAccount", 32),
        _n("NoPositions", "u8"),
        _n("Unsolicited", "u8"),
        _n("MarginRequirement", "f64"),
        _n("EntryDateTime", "u32"),
    ),
    MsgType.TRADE_ACCOUNTS_REQUEST: (_n("RequestID", "i32"),),
    MsgType.TRADE_ACCOUNT_RESPONSE: (
        _n("TotalNumberMessages", "i32"),
        _n("MessageNumber", "i32"),
        _s("TradeAccount", 32),
        _n("RequestID", "i32"),
    ),
    MsgType.ACCOUNT_BALANCE_REQUEST: (_n("RequestID", "i32"), _s("TradeAccount", 32)),
    MsgType.ACCOUNT_BALANCE_REJECT: (_n("RequestID", "i32"), _s("RejectText", 96)),
    MsgType.ACCOUNT_BALANCE_UPDATE: (
        _n("RequestID", "i32"),
        _n("CashBalance", "f64"),
        _n("BalanceAvailableForNewPositions", "f64"),
        _s("AccountCurrency", 8),
        _s("TradeAccount", 32),
        _n("SecuritiesValue", "f64"),
        _n("MarginRequirement", "f64"),
        _n("TotalNumberMessages", "i32"),
        _n("MessageNumber", "i32"),
        _n("NoAccountBalances", "u8"),
        _n("Unsolicited", "u8"),
        _n("OpenPositionsProfitLoss", "f64"),
        _n("DailyProfitLoss", "f64"),
        _s("InfoText", 96),
        _n("TransactionIdentifier", "u64"),
    ),
}

#: ``sizeof`` of each struct, measured by compiling the version-8 header with g++ on x86-64.
SIZES: Mapping[MsgType, int] = {
    MsgType.ENCODING_REQUEST: 16,
    MsgType.ENCODING_RESPONSE: 16,
    MsgType.LOGON_REQUEST: 280,
    MsgType.LOGON_RESPONSE: 256,
    MsgType.HEARTBEAT: 16,
    MsgType.LOGOFF: 102,
    MsgType.SUBMIT_NEW_SINGLE_ORDER: 264,
    MsgType.SUBMIT_NEW_OCO_ORDER: 376,
    MsgType.SUBMIT_FLATTEN_POSITION_ORDER: 198,
    MsgType.CANCEL_ORDER: 68,
    MsgType.CANCEL_REPLACE_ORDER: 128,
    MsgType.ORDER_UPDATE: 688,
    MsgType.OPEN_ORDERS_REQUEST: 76,
    MsgType.OPEN_ORDERS_REJECT: 104,
    MsgType.HISTORICAL_ORDER_FILLS_REQUEST: 88,
    MsgType.HISTORICAL_ORDER_FILL_RESPONSE: 384,
    MsgType.HISTORICAL_ORDER_FILLS_REJECT: 104,
    MsgType.CURRENT_POSITIONS_REQUEST: 40,
    MsgType.CURRENT_POSITIONS_REJECT: 104,
    MsgType.POSITION_UPDATE: 200,
    MsgType.TRADE_ACCOUNTS_REQUEST: 8,
    MsgType.TRADE_ACCOUNT_RESPONSE: 48,
    MsgType.ACCOUNT_BALANCE_REQUEST: 40,
    MsgType.ACCOUNT_BALANCE_REJECT: 104,
    MsgType.ACCOUNT_BALANCE_UPDATE: 216,
}

MESSAGES: Mapping[int, MessageSpec] = {t: _layout(t, fields) for t, fields in _DEFS.items()}

for _spec in MESSAGES.values():
    if _spec.size != SIZES[_spec.type]:  # pragma: no cover - a layout bug must stop the import
        raise AssertionError(f"{_spec.name}: layout gives {_spec.size} bytes, the header gives {SIZES[_spec.type]}")


def spec_for(msg_type: int) -> MessageSpec | None:
    return MESSAGES.get(msg_type)

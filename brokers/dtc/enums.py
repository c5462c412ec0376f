"""DTC enumerations and message type numbers, as the public version-8 header numbers them."""

from __future__ import annotations

import enum

__all__ = [
    "BuySell",
    "Encoding",
    "LogonStatus",
    "MsgType",
    "OrderStatus",
    "OrderType",
    "OrderUpdateReason",
    "TimeInForce",
    "TradeMode",
]


class MsgType(enum.IntEnum):
    LOGON_REQUEST = 1
    LOGON_RESPONSE = 2
    HEARTBEAT = 3
    LOGOFF = 5
    ENCODING_REQUEST = 6
    ENCODING_RESPONSE = 7
    SUBMIT_NEW_OCO_ORDER = 201
    CANCEL_ORDER = 203
    CANCEL_REPLACE_ORDER = 204
    SUBMIT_NEW_SINGLE_ORDER = 208
    SUBMIT_FLATTEN_POSITION_ORDER = 209
    OPEN_ORDERS_REQUEST = 300
    ORDER_UPDATE = 301
    OPEN_ORDERS_REJECT = 302
    HISTORICAL_ORDER_FILLS_REQUEST = 303
    HISTORICAL_ORDER_FILL_RESPONSE = 304
    CURRENT_POSITIONS_REQUEST = 305
    POSITION_UPDATE = 306
    CURRENT_POSITIONS_REJECT = 307
    HISTORICAL_ORDER_FILLS_REJECT = 308
    TRADE_ACCOUNTS_REQUEST = 400
    TRADE_ACCOUNT_RESPONSE = 401
    ACCOUNT_BALANCE_UPDATE = 600
    ACCOUNT_BALANCE_REQUEST = 601
    ACCOUNT_BALANCE_REJECT = 602


class Encoding(enum.IntEnum):
    BINARY = 0
    BINARY_WITH_VARIABLE_LENGTH_STRINGS = 1
    JSON = 2
    JSON_COMPACT = 3
    PROTOCOL_BUFFERS = 4


class LogonStatus(enum.IntEnum):
    SUCCESS = 1
    ERROR = 2
    ERROR_NO_RECONNECT = 3
    RECONNECT_NEW_ADDRESS = 4


class TradeMode(enum.IntEnum):
    UNSET = 0
    DEMO = 1
    SIMULATED = 2
    LIVE = 3


class OrderStatus(enum.IntEnum):
    UNSPECIFIED = 0
    ORDER_SENT = 1
    PENDING_OPEN = 2
    PENDING_CHILD = 3
    OPEN = 4
    PENDING_CANCEL_REPLACE = 5
    PENDING_CANCEL = 6
    FILLED = 7
    CANCELED = 8
    REJECTED = 9
    PARTIALLY_FILLED = 10


class OrderUpdateReason(enum.IntEnum):
    UNSET = 0
    OPEN_ORDERS_REQUEST_RESPONSE = 1
    NEW_ORDER_ACCEPTED = 2
    GENERAL_ORDER_UPDATE = 3
    ORDER_FILLED = 4
    ORDER_FILLED_PARTIALLY = 5
    ORDER_CANCELED = 6
    ORDER_CANCEL_REPLACE_COMPLETE = 7
    NEW_ORDER_REJECTED = 8
    ORDER_CANCEL_REJECTED = 9
    ORDER_CANCEL_REPLACE_REJECTED = 10


class OrderType(enum.IntEnum):
    UNSET = 0
    MARKET = 1
    LIMIT = 2
    STOP = 3
    STOP_LIMIT = 4
    MARKET_IF_TOUCHED = 5
    LIMIT_IF_TOUCHED = 6


class TimeInForce(enum.IntEnum):
    UNSET = 0
    DAY = 1
    GOOD_TILL_CANCELED = 2
    GOOD_TILL_DATE_TIME = 3
    IMMEDIATE_OR_CANCEL = 4
    ALL_OR_NONE = 5
    FILL_OR_KILL = 6


class BuySell(enum.IntEnum):
    UNSET = 0
    BUY = 1
    SELL = 2

"""ProjectX Gateway's own vocabulary: paths, enums, error codes, hub names, contract codes.

Every ProjectX field name and integer code lives here so a change in the vendor's API touches
one module. Sources: gateway.docs.projectx.com (api-reference/*, realtime, rate-limits) and
the enum tables of the public ``topstep-sdk``/``topstep-client-py`` clients (see protocols.md §5).
"""

from __future__ import annotations

import re
from enum import IntEnum
from typing import Final

# --------------------------------------------------------------------------- REST paths

LOGIN_KEY: Final = "/api/Auth/loginKey"
VALIDATE: Final = "/api/Auth/validate"
ACCOUNT_SEARCH: Final = "/api/Account/search"
CONTRACT_SEARCH: Final = "/api/Contract/search"
CONTRACT_SEARCH_BY_ID: Final = "/api/Contract/searchById"
CONTRACT_AVAILABLE: Final = "/api/Contract/available"
ORDER_PLACE: Final = "/api/Order/place"
ORDER_MODIFY: Final = "/api/Order/modify"
ORDER_CANCEL: Final = "/api/Order/cancel"
ORDER_SEARCH: Final = "/api/Order/search"
ORDER_SEARCH_OPEN: Final = "/api/Order/searchOpen"
POSITION_SEARCH_OPEN: Final = "/api/Position/searchOpen"
POSITION_CLOSE: Final = "/api/Position/closeContract"
POSITION_PARTIAL_CLOSE: Final = "/api/Position/partialCloseContract"
TRADE_SEARCH: Final = "/api/Trade/search"
HISTORY_BARS: Final = "/api/History/retrieveBars"

USER_HUB_PATH: Final = "/hubs/user"

# Rate limits (gateway.docs.projectx.com/docs/getting-started/rate-limits): retrieveBars has its
# own 30/30 s bucket (protocols.md says 50/30 s; the docs page says 30); everything else 200/60 s.
DEFAULT_LIMIT: Final = (200, 60.0)
BARS_LIMIT: Final = (30, 30.0)


# --------------------------------------------------------------------------- enums


class OrderType(IntEnum):
    UNKNOWN = 0
    LIMIT = 1
    MARKET = 2
    STOP_LIMIT = 3  # only ever seen on returned orders; place does not accept it
    STOP = 4
    TRAILING_STOP = 5
    JOIN_BID = 6
    JOIN_ASK = 7


PLACEABLE_TYPES: Final = frozenset(
    {OrderType.LIMIT, OrderType.MARKET, OrderType.STOP, OrderType.TRAILING_STOP, OrderType.JOIN_BID, OrderType.JOIN_ASK}
)


class OrderSide(IntEnum):
    BID = 0  # buy
    ASK = 1  # sell


class OrderStatus(IntEnum):
    NONE = 0
    OPEN = 1
    FILLED = 2
    CANCELLED = 3
    EXPIRED = 4
    REJECTED = 5
    PENDING = 6
    PENDING_CANCELLATION = 7
    SUSPENDED = 8


class PositionType(IntEnum):
    UNDEFINED = 0
    LONG = 1
    SHORT = 2


class LoginErrorCode(IntEnum):
    SUCCESS = 0
    USER_NOT_FOUND = 1
    PASSWORD_VERIFICATION_FAILED = 2
    INVALID_CREDENTIALS = 3
    APP_NOT_FOUND = 4
    APP_VERIFICATION_FAILED = 5
    INVALID_DEVICE = 6
    AGREEMENTS_NOT_SIGNED = 7
    UNKNOWN_ERROR = 8
    API_SUBSCRIPTION_NOT_FOUND = 9
    API_KEY_AUTHENTICATION_DISABLED = 10


class PlaceOrderErrorCode(IntEnum):
    SUCCESS = 0
    ACCOUNT_NOT_FOUND = 1
    ORDER_REJECTED = 2
    INSUFFICIENT_FUNDS = 3
    ACCOUNT_VIOLATION = 4
    OUTSIDE_TRADING_HOURS = 5
    ORDER_PENDING = 6
    UNKNOWN_ERROR = 7
    CONTRACT_NOT_FOUND = 8
    CONTRACT_NOT_ACTIVE = 9
    ACCOUNT_REJECTED = 10


class ModifyOrderErrorCode(IntEnum):
    SUCCESS = 0
    ACCOUNT_NOT_FOUND = 1
    ORDER_NOT_FOUND = 2
    REJECTED = 3
    PENDING = 4
    UNKNOWN_ERROR = 5
    ACCOUNT_REJECTED = 6
    CONTRACT_NOT_FOUND = 7


CancelOrderErrorCode = ModifyOrderErrorCode  # same numbering for 1..4 per the enum tables


class SearchErrorCode(IntEnum):
    SUCCESS = 0
    ACCOUNT_NOT_FOUND = 1  # order/position/trade searches; contract searches use 1 = NotFound


class ClosePositionErrorCode(IntEnum):
    SUCCESS = 0
    ACCOUNT_NOT_FOUND = 1
    POSITION_NOT_FOUND = 2
    CONTRACT_NOT_FOUND = 3
    CONTRACT_NOT_ACTIVE = 4
    ORDER_REJECTED = 5
    ORDER_PENDING = 6
    UNKNOWN_ERROR = 7
    ACCOUNT_REJECTED = 8


# Bracket refusals as the live gateway words them (errorCode 2, OrderRejected); public clients
# quote these texts (docs/fidelity/projectx.md ). The adapter never parses them: the
# simulator answers with them so a client sees what the gateway sends.
POSITION_BRACKETS_MESSAGE: Final = "Brackets cannot be used with Position Brackets. You must enable Auto OCO Brackets."
BRACKET_SIGN_MESSAGE: Final = "Invalid {leg} ticks ({ticks}). Ticks should be {relation} than zero when {direction}."

# --------------------------------------------------------------------------- user hub

SUBSCRIBE_ACCOUNTS: Final = "SubscribeAccounts"
SUBSCRIBE_ORDERS: Final = "SubscribeOrders"
SUBSCRIBE_POSITIONS: Final = "SubscribePositions"
SUBSCRIBE_TRADES: Final = "SubscribeTrades"
UNSUBSCRIBE: Final = {
    "UnsubscribeAccounts": SUBSCRIBE_ACCOUNTS,
    "UnsubscribeOrders": SUBSCRIBE_ORDERS,
    "UnsubscribePositions": SUBSCRIBE_POSITIONS,
    "UnsubscribeTrades": SUBSCRIBE_TRADES,
}
EVENT_ACCOUNT: Final = "GatewayUserAccount"
EVENT_ORDER: Final = "GatewayUserOrder"
EVENT_POSITION: Final = "GatewayUserPosition"
EVENT_TRADE: Final = "GatewayUserTrade"
STREAM_FOR_EVENT: Final = {
    EVENT_ACCOUNT: SUBSCRIBE_ACCOUNTS,
    EVENT_ORDER: SUBSCRIBE_ORDERS,
    EVENT_POSITION: SUBSCRIBE_POSITIONS,
    EVENT_TRADE: SUBSCRIBE_TRADES,
}


class EventAction(IntEnum):
    """The live hub wraps payloads as ``{"action", "data"}`` (observed by public clients)."""

    CREATE = 0
    UPDATE = 1
    DELETE = 2


# --------------------------------------------------------------------------- contracts
# ProjectX names CME products by its own codes: ES is "EP", NQ is "ENQ" ... (contract ids such
# as CON.F.US.EP.U25 in the docs). Our symbols use the exchange root, so map both ways here.

ROOT_TO_CODE: Final[dict[str, str]] = {
    "ES": "EP",
    "MES": "MES",
    "NQ": "ENQ",
    "MNQ": "MNQ",
    "YM": "YM",
    "MYM": "MYM",
    "RTY": "RTY",
    "M2K": "M2K",
    "CL": "CLE",
    "MCL": "MCLE",
    "GC": "GCE",
    "MGC": "MGC",
    "6E": "EU6",
}
CODE_TO_ROOT: Final[dict[str, str]] = {code: root for root, code in ROOT_TO_CODE.items()}

_CONTRACT_ID = re.compile(r"^CON\.F\.US\.(?P<code>[A-Z0-9]+)\.(?P<month>[FGHJKMNQUVXZ])(?P<year>\d{2})$")


def contract_id(code: str, month: str, year2: int) -> str:
    return f"CON.F.US.{code}.{month}{year2:02d}"


def split_contract_id(value: str) -> tuple[str, str, int] | None:
    """``CON.F.US.EP.U25`` → (``EP``, ``U``, 25); ``None`` when it is not a futures id."""
    match = _CONTRACT_ID.match(value)
    if not match:
        return None
    return match["code"], match["month"], int(match["year"])


def symbol_id(code: str) -> str:
    """The ``symbolId`` field of orders (``F.US.EP``)."""
    return f"F.US.{code}"

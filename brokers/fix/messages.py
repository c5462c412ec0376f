"""Domain commands → FIX 4.2/4.4 request fields, and ExecutionReports → domain events.

Tag numbers and enum values are those of the FIX42.xml/FIX44.xml dictionaries shipped with
QuickFIX (docs/fidelity/fix.md). The one difference that matters for fills: FIX 4.2 says what an
execution report is with ExecTransType (20: 0 new, 1 cancel, 2 correct, 3 status) plus ExecType
1/2 (partial fill/fill), FIX 4.4 drops ExecTransType and reports every trade as ExecType F, a
bust as H, a correction as G and a status answer as I.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from ..model import FillCorrection, FillEvent, OrderEvent, OrderStatus, OrderType, Side, TimeInForce
from .codec import FixDecodeError, FixMessage

FIX42, FIX44 = "FIX.4.2", "FIX.4.4"

# -- message types and tags --------------------------------------------------------------------
NEW_ORDER, CANCEL, REPLACE, STATUS = "D", "F", "G", "H"
EXECUTION_REPORT, CANCEL_REJECT, SESSION_REJECT, BUSINESS_REJECT = "8", "9", "3", "j"
ORDER_ENTRY = frozenset({NEW_ORDER, CANCEL, REPLACE})

ACCOUNT, AVG_PX, CL_ORD_ID, CUM_QTY, EXEC_ID, EXEC_REF_ID, EXEC_TRANS_TYPE = 1, 6, 11, 14, 17, 19, 20
HANDL_INST, LAST_PX, LAST_QTY, ORDER_ID, ORDER_QTY, ORD_STATUS, ORD_TYPE = 21, 31, 32, 37, 38, 39, 40
ORIG_CL_ORD_ID, PRICE, REF_SEQ_NUM, SIDE, SYMBOL, TEXT, TIME_IN_FORCE = 41, 44, 45, 54, 55, 58, 59
TRANSACT_TIME, STOP_PX, ORD_REJ_REASON, CXL_REJ_REASON, EXEC_TYPE, LEAVES_QTY = 60, 99, 103, 102, 150, 151
CXL_REJ_RESPONSE_TO, BUSINESS_REJECT_REF_ID, POSS_DUP = 434, 379, 43

SIDES = {Side.BUY: "1", Side.SELL: "2"}
SIDES_IN = {v: k for k, v in SIDES.items()}
ORD_TYPES = {OrderType.MARKET: "1", OrderType.LIMIT: "2", OrderType.STOP: "3", OrderType.STOP_LIMIT: "4"}
ORD_TYPES_IN = {v: k for k, v in ORD_TYPES.items()}
TIFS = {TimeInForce.DAY: "0", TimeInForce.GTC: "1", TimeInForce.IOC: "3", TimeInForce.FOK: "4"}
TIFS_IN = {v: k for k, v in TIFS.items()}
#: OrdStatus (39) → domain status; 3 Done for day is the order's end for the day.
STATUSES = {
    "0": OrderStatus.WORKING,
    "1": OrderStatus.PARTIALLY_FILLED,
    "2": OrderStatus.FILLED,
    "3": OrderStatus.EXPIRED,
    "4": OrderStatus.CANCELLED,
    "5": OrderStatus.WORKING,  # 4.2 Replaced: the order lives on with new terms
    "6": OrderStatus.WORKING,  # Pending cancel
    "8": OrderStatus.REJECTED,
    "A": OrderStatus.PENDING,
    "C": OrderStatus.EXPIRED,
    "E": OrderStatus.WORKING,  # Pending replace
}
STATUS_OUT = {
    OrderStatus.PENDING: "A",
    OrderStatus.WORKING: "0",
    OrderStatus.PARTIALLY_FILLED: "1",
    OrderStatus.FILLED: "2",
    OrderStatus.CANCELLED: "4",
    OrderStatus.REJECTED: "8",
    OrderStatus.EXPIRED: "C",
}
UNKNOWN_ORDER = "5"  # OrdRejReason: Unknown order (the answer to a status request for none)

Fields = list[tuple[int, str]]


def transact_time(now: datetime | None = None) -> str:
    """UTCTimestamp with milliseconds, as both versions accept it."""
    return (now or datetime.now(UTC)).strftime("%Y%m%d-%H:%M:%S.%f")[:-3]


def price_text(value: Decimal) -> str:
    if not value.is_finite():
        raise ValueError(f"price {value} is not finite")
    return format(value.normalize(), "f")


@dataclass(frozen=True, slots=True)
class OrderTerms:
    """What a cancel or replace must repeat of the order (Symbol, Side, quantity, type)."""

    account: str
    symbol: str
    side: Side
    quantity: int
    order_type: OrderType
    limit_price: Decimal | None = None
    stop_price: Decimal | None = None
    time_in_force: TimeInForce = TimeInForce.DAY


def _prices(order_type: OrderType, limit: Decimal | None, stop: Decimal | None) -> Fields:
    fields: Fields = []
    if order_type in (OrderType.LIMIT, OrderType.STOP_LIMIT) and limit is not None:
        fields.append((PRICE, price_text(limit)))
    if order_type in (OrderType.STOP, OrderType.STOP_LIMIT) and stop is not None:
        fields.append((STOP_PX, price_text(stop)))
    return fields


def new_order(cl_ord_id: str, terms: OrderTerms) -> Fields:
    """NewOrderSingle (D); HandlInst 1 (automated, private) is required in 4.2, allowed in 4.4."""
    return [
        (CL_ORD_ID, cl_ord_id),
        (ACCOUNT, terms.account),
        (HANDL_INST, "1"),
        (SYMBOL, terms.symbol),
        (SIDE, SIDES[terms.side]),
        (TRANSACT_TIME, transact_time()),
        (ORDER_QTY, str(terms.quantity)),
        (ORD_TYPE, ORD_TYPES[terms.order_type]),
        *_prices(terms.order_type, terms.limit_price, terms.stop_price),
        (TIME_IN_FORCE, TIFS[terms.time_in_force]),
    ]


def cancel_request(cl_ord_id: str, orig: str, order_id: str, terms: OrderTerms) -> Fields:
    """OrderCancelRequest (F): a new ClOrdID naming the current one in OrigClOrdID."""
    return [
        (ORIG_CL_ORD_ID, orig),
        (ORDER_ID, order_id),
        (CL_ORD_ID, cl_ord_id),
        (ACCOUNT, terms.account),
        (SYMBOL, terms.symbol),
        (SIDE, SIDES[terms.side]),
        (TRANSACT_TIME, transact_time()),
        (ORDER_QTY, str(terms.quantity)),
    ]


def replace_request(cl_ord_id: str, orig: str, order_id: str, terms: OrderTerms) -> Fields:
    """OrderCancelReplaceRequest (G) carrying the full new terms (FIX replaces, never patches)."""
    return [
        (ORDER_ID, order_id),
        (ORIG_CL_ORD_ID, orig),
        (CL_ORD_ID, cl_ord_id),
        (ACCOUNT, terms.account),
        (HANDL_INST, "1"),
        (SYMBOL, terms.symbol),
        (SIDE, SIDES[terms.side]),
        (TRANSACT_TIME, transact_time()),
        (ORDER_QTY, str(terms.quantity)),
        (ORD_TYPE, ORD_TYPES[terms.order_type]),
        *_prices(terms.order_type, terms.limit_price, terms.stop_price),
        (TIME_IN_FORCE, TIFS[terms.time_in_force]),
    ]


def status_request(cl_ord_id: str, terms: OrderTerms, order_id: str = "") -> Fields:
    """OrderStatusRequest (H): ClOrdID, Symbol and Side are required in both versions; OrderID
    (optional) picks one order when a repeated ClOrdID made two."""
    fields = [(CL_ORD_ID, cl_ord_id), (ACCOUNT, terms.account), (SYMBOL, terms.symbol), (SIDE, SIDES[terms.side])]
    return [(ORDER_ID, order_id), *fields] if order_id else fields


# -- execution reports -------------------------------------------------------------------------

TRADE, BUST, CORRECT, STATUS_ANSWER, OTHER = "trade", "bust", "correct", "status", "other"


def report_kind(begin_string: str, report: FixMessage) -> str:
    """What an ExecutionReport says, across the 4.2/4.4 difference."""
    exec_type = report.require(EXEC_TYPE)
    if begin_string == FIX42:
        trans = report.get(EXEC_TRANS_TYPE, "0")
        if trans == "1":
            return BUST
        if trans == "2":
            return CORRECT
        if trans == "3":
            return STATUS_ANSWER
        if trans != "0":
            raise FixDecodeError(f"ExecTransType {trans[:10]!r} is not 0-3", report.text())
        return TRADE if exec_type in ("1", "2") else OTHER
    return {"F": TRADE, "H": BUST, "G": CORRECT, "I": STATUS_ANSWER}.get(exec_type, OTHER)


def _enum(report: FixMessage, tag: int, table: dict[str, object], what: str) -> object:
    value = report.require(tag)
    try:
        return table[value]
    except KeyError:
        raise FixDecodeError(f"{what} {value[:10]!r} is not one we know", report.text()) from None


def order_status(report: FixMessage) -> OrderStatus:
    status = _enum(report, ORD_STATUS, dict(STATUSES), "OrdStatus")
    assert isinstance(status, OrderStatus)
    return status


def side_of(report: FixMessage) -> Side:
    side = _enum(report, SIDE, dict(SIDES_IN), "Side")
    assert isinstance(side, Side)
    return side


def order_event(report: FixMessage, account_id: str, client_order_id: str | None) -> OrderEvent:
    """The order's state an ExecutionReport carries (every report carries one)."""
    order_type = ORD_TYPES_IN.get(report.get(ORD_TYPE, "1"))
    if order_type is None:
        raise FixDecodeError(f"OrdType {report.get(ORD_TYPE)[:10]!r} is not one we know", report.text())
    cum = report.quantity(CUM_QTY)
    leaves = report.quantity(LEAVES_QTY)
    quantity = report.quantity(ORDER_QTY) or cum + leaves
    return OrderEvent(
        account_id=account_id,
        client_order_id=client_order_id,
        broker_order_id=report.require(ORDER_ID),
        symbol=report.require(SYMBOL),
        side=side_of(report),
        order_type=order_type,
        quantity=quantity,
        status=order_status(report),
        filled_quantity=cum,
        limit_price=report.decimal(PRICE),
        stop_price=report.decimal(STOP_PX),
        reason=report.get(TEXT) or None,
    )


def fill_event(report: FixMessage, account_id: str, client_order_id: str | None) -> FillEvent:
    """One trade (4.2 ExecTransType 0 with ExecType 1/2, 4.4 ExecType F)."""
    quantity = report.quantity(LAST_QTY, required=True)
    price = report.decimal(LAST_PX, required=True)
    if quantity <= 0 or price is None or price <= 0:
        raise FixDecodeError("a trade without a positive LastQty and LastPx", report.text())
    return FillEvent(
        account_id=account_id,
        client_order_id=client_order_id,
        broker_order_id=report.require(ORDER_ID),
        fill_id=report.require(EXEC_ID),
        symbol=report.require(SYMBOL),
        side=side_of(report),
        quantity=quantity,
        price=price,
        cumulative_quantity=report.quantity(CUM_QTY),
        leaves_quantity=report.quantity(LEAVES_QTY),
    )


def correction_event(
    report: FixMessage, account_id: str, client_order_id: str | None, original: FillEvent
) -> FillCorrection:
    """A bust or correction of the execution named in ExecRefID (known as ``original``)."""
    busted = report_kind_is_bust(report)
    price = None if busted else report.decimal(LAST_PX, required=True)
    return FillCorrection(
        account_id=account_id,
        client_order_id=client_order_id,
        broker_order_id=report.require(ORDER_ID),
        fill_id=original.fill_id,
        correction_id=report.require(EXEC_ID),
        symbol=original.symbol,
        side=original.side,
        busted=busted,
        quantity=0 if busted else report.quantity(LAST_QTY, required=True),
        price=price,
        original_quantity=original.quantity,
        original_price=original.price,
    )


def report_kind_is_bust(report: FixMessage) -> bool:
    return report.get(EXEC_TRANS_TYPE) == "1" or report.get(EXEC_TYPE) == "H"

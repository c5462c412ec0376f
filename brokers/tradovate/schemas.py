"""Tradovate's own field names and enum strings — the only module that spells them.

Shapes follow the public API reference (partner.tradovate.com, REST endpoints and the
user/syncrequest SyncMessage) and the typings of the public ``tradovate`` npm client
(cgilly2fast/tradovate-typescript ``src/types``). The simulator builds its payloads with the
builders below and the adapter reads them with the readers, so both sides agree by
construction and the fidelity tests compare these shapes to recorded doc examples.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, TypedDict

from ...common.clock import utcnow

Json = dict[str, Any]

# -- enum strings ------------------------------------------------------------------------
BUY, SELL = "Buy", "Sell"
MARKET, LIMIT, STOP, STOP_LIMIT = "Market", "Limit", "Stop", "StopLimit"
TIF_DAY, TIF_GTC, TIF_IOC, TIF_FOK = "Day", "GTC", "IOC", "FOK"

# OrderStatus
WORKING, FILLED, CANCELED, REJECTED, EXPIRED = "Working", "Filled", "Canceled", "Rejected", "Expired"
PENDING_NEW, COMPLETED, SUSPENDED = "PendingNew", "Completed", "Suspended"

# ExecutionReport.execType: all 16 values of the API's enum (services-api docs ExecutionReport.md)
EXEC_NEW, EXEC_TRADE, EXEC_REPLACED = "New", "Trade", "Replaced"
EXEC_CANCELED, EXEC_REJECTED, EXEC_EXPIRED = "Canceled", "Rejected", "Expired"
EXEC_TRADE_CANCEL, EXEC_TRADE_CORRECT = "TradeCancel", "TradeCorrect"  # a bust, a correction
EXEC_SUSPENDED = "Suspended"
EXEC_TYPES = frozenset(
    {
        "Canceled",
        "Completed",
        "DoneForDay",
        "Expired",
        "New",
        "OrderStatus",
        "PendingCancel",
        "PendingNew",
        "PendingReplace",
        "Rejected",
        "Replaced",
        "Stopped",
        "Suspended",
        "Trade",
        "TradeCancel",
        "TradeCorrect",
    }
)

# Command.commandType / commandStatus. The status enum has exactly these ten values
# (services-api docs Command.md, CommandReport.md); there is no "ExecutionSuccess".
CMD_NEW, CMD_MODIFY, CMD_CANCEL = "New", "Modify", "Cancel"
CMD_AT_EXECUTION, CMD_EXECUTION_REJECTED = "AtExecution", "ExecutionRejected"
CMD_EXECUTION_STOPPED, CMD_EXECUTION_SUSPENDED = "ExecutionStopped", "ExecutionSuspended"
CMD_ON_HOLD, CMD_PENDING, CMD_PENDING_EXECUTION = "OnHold", "Pending", "PendingExecution"
CMD_REPLACED, CMD_RISK_PASSED, CMD_RISK_REJECTED = "Replaced", "RiskPassed", "RiskRejected"
COMMAND_STATUSES = frozenset(
    {
        CMD_AT_EXECUTION,
        CMD_EXECUTION_REJECTED,
        CMD_EXECUTION_STOPPED,
        CMD_EXECUTION_SUSPENDED,
        CMD_ON_HOLD,
        CMD_PENDING,
        CMD_PENDING_EXECUTION,
        CMD_REPLACED,
        CMD_RISK_PASSED,
        CMD_RISK_REJECTED,
    }
)
#: What the simulator reports for a command the exchange took, and for one it refused.
CMD_EXECUTED, CMD_REJECTED = CMD_AT_EXECUTION, CMD_EXECUTION_REJECTED

# Query parameters of the entity read endpoints: ``<entity>/deps?masterid=`` (one master) and
# ``<entity>/ldeps?masterids=1,2`` (several).
MASTER_ID, MASTER_IDS = "masterid", "masterids"

# props eventType / entityType
CREATED, UPDATED, DELETED = "Created", "Updated", "Deleted"
ENTITY_ORDER, ENTITY_EXEC, ENTITY_FILL = "order", "executionReport", "fill"
ENTITY_POSITION, ENTITY_VERSION, ENTITY_CASH = "position", "orderVersion", "cashBalance"
ENTITY_COMMAND, ENTITY_COMMAND_REPORT = "command", "commandReport"
PROPS = "props"

# PlaceOrderResult.failureReason (subset the simulator produces; adapters accept any string)
FAILURE_REASONS = frozenset(
    {
        "AccountClosed",
        "AnotherCommandPending",
        "InvalidContract",
        "InvalidPrice",
        "LiquidationOnly",
        "MaxOrderQtyLimitReached",
        "MaxPosLimitReached",
        "NotEnoughLiquidity",
        "SessionClosed",
        "TooLate",
        "TradingLocked",
        "Unauthorized",
        "UnknownReason",
        "Unsupported",
    }
)

# SyncMessage top-level keys (docs: user/syncrequest response)
SYNC_KEYS = (
    "users",
    "accounts",
    "accountRiskStatuses",
    "marginSnapshots",
    "userAccountAutoLiqs",
    "cashBalances",
    "currencies",
    "positions",
    "fillPairs",
    "orders",
    "contracts",
    "contractMaturities",
    "products",
    "exchanges",
    "spreadDefinitions",
    "commands",
    "commandReports",
    "executionReports",
    "orderVersions",
    "fills",
    "orderStrategies",
    "orderStrategyLinks",
    "userProperties",
    "properties",
    "userPlugins",
    "contractGroups",
    "orderStrategyTypes",
)

PENALTY_TICKET, PENALTY_TIME, PENALTY_CAPTCHA = "p-ticket", "p-time", "p-captcha"


class AccessTokenResponse(TypedDict, total=False):
    errorText: str
    accessToken: str
    mdAccessToken: str
    expirationTime: str
    passwordExpirationTime: str
    userStatus: str
    userId: int
    name: str
    hasLive: bool


class PlaceOrderResult(TypedDict, total=False):
    failureReason: str
    failureText: str
    orderId: int
    ocoId: int
    oso1Id: int
    oso2Id: int


class PlaceOsoResult(TypedDict, total=False):
    """``order/placeOSO``: the entry's ``orderId`` and each bracket's own id."""

    failureReason: str
    failureText: str
    orderId: int
    oso1Id: int
    oso2Id: int


class CommandResult(TypedDict, total=False):
    failureReason: str
    failureText: str
    commandId: int


def iso(ts: datetime) -> str:
    """Tradovate timestamps: ISO-8601 UTC with a trailing ``Z``."""
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def parse_iso(text: str | None) -> datetime:
    if not text:
        return utcnow()
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def trade_date(ts: datetime) -> Json:
    return {"year": ts.year, "month": ts.month, "day": ts.day}


# -- auth ---------------------------------------------------------------------------------
def credentials(
    name: str, password: str, app_id: str, app_version: str, cid: int | str, sec: str, device_id: str
) -> Json:
    return {
        "name": name,
        "password": password,
        "appId": app_id,
        "appVersion": app_version,
        "cid": cid,
        "sec": sec,
        "deviceId": device_id,
    }


def access_token_response(token: str, md_token: str, expires: datetime, user_id: int, name: str) -> AccessTokenResponse:
    return {
        "accessToken": token,
        "mdAccessToken": md_token,
        "expirationTime": iso(expires),
        "passwordExpirationTime": iso(expires.replace(year=expires.year + 1)),
        "userStatus": "Active",
        "userId": user_id,
        "name": name,
        "hasLive": False,
    }


def auth_error(text: str) -> AccessTokenResponse:
    return {"errorText": text}


def penalty(ticket: str, seconds: int, captcha: bool = False) -> Json:
    return {PENALTY_TICKET: ticket, PENALTY_TIME: seconds, PENALTY_CAPTCHA: captcha}


def is_penalty(payload: Any) -> bool:
    return isinstance(payload, dict) and (PENALTY_TICKET in payload or PENALTY_CAPTCHA in payload)


# -- reference entities ------------------------------------------------------------------
def user_entity(user_id: int, name: str, ts: datetime) -> Json:
    return {
        "id": user_id,
        "name": name,
        "timestamp": iso(ts),
        "email": f"{name}@example.invalid",
        "status": "Active",
        "professional": False,
        "organizationId": None,
    }


def account_entity(account_id: int, name: str, user_id: int, ts: datetime) -> Json:
    return {
        "id": account_id,
        "name": name,
        "userId": user_id,
        "accountType": "Customer",
        "active": True,
        "clearingHouseId": 2,
        "riskCategoryId": 2,
        "autoLiqProfileId": 2,
        "marginAccountType": "Speculator",
        "legalStatus": "Individual",
        "archived": False,
        "timestamp": iso(ts),
    }


def contract_entity(contract_id: int, name: str, maturity_id: int) -> Json:
    return {
        "id": contract_id,
        "name": name,
        "contractMaturityId": maturity_id,
        "status": "DefinitionChecked",
        "providerTickSize": None,
    }


def cash_balance_entity(balance_id: int, account_id: int, amount: float, realized: float, ts: datetime) -> Json:
    return {
        "id": balance_id,
        "accountId": account_id,
        "timestamp": iso(ts),
        "tradeDate": trade_date(ts),
        "currencyId": 1,
        "amount": amount,
        "realizedPnL": realized,
        "weekRealizedPnL": realized,
    }


# -- order entities ----------------------------------------------------------------------
def order_entity(
    order_id: int,
    account_id: int,
    contract_id: int,
    action: str,
    status: str,
    ts: datetime,
    oco_id: int | None = None,
    parent_id: int | None = None,
) -> Json:
    return {
        "id": order_id,
        "accountId": account_id,
        "contractId": contract_id,
        "timestamp": iso(ts),
        "action": action,
        "ordStatus": status,
        "executionProviderId": 1,
        "ocoId": oco_id,
        "parentId": parent_id,
        "linkedId": None,
        "admin": False,
        "archived": False,
        "external": False,
    }


def order_version_entity(
    version_id: int, order_id: int, qty: int, order_type: str, price: float | None, stop_price: float | None, tif: str
) -> Json:
    body: Json = {"id": version_id, "orderId": order_id, "orderQty": qty, "orderType": order_type, "timeInForce": tif}
    if price is not None:
        body["price"] = price
    if stop_price is not None:
        body["stopPrice"] = stop_price
    return body


def command_entity(
    command_id: int, order_id: int, cl_ord_id: str | None, command_type: str, status: str, ts: datetime
) -> Json:
    return {
        "id": command_id,
        "orderId": order_id,
        "timestamp": iso(ts),
        "clOrdId": cl_ord_id,
        "commandType": command_type,
        "commandStatus": status,
        "isAutomated": True,
        "activationTime": None,
        "customTag50": None,
    }


def command_report_entity(
    report_id: int,
    command_id: int,
    status: str,
    ord_status: str,
    ts: datetime,
    reject_reason: str | None = None,
    text: str | None = None,
) -> Json:
    return {
        "id": report_id,
        "commandId": command_id,
        "timestamp": iso(ts),
        "commandStatus": status,
        "rejectReason": reject_reason,
        "text": text,
        "ordStatus": ord_status,
    }


def execution_report_entity(
    report_id: int,
    command_id: int,
    account_id: int,
    contract_id: int,
    order_id: int,
    exec_type: str,
    ord_status: str,
    action: str,
    ts: datetime,
    *,
    cum_qty: int = 0,
    avg_px: float | None = None,
    last_qty: int | None = None,
    last_px: float | None = None,
    reject_reason: str | None = None,
    text: str | None = None,
    exec_ref_id: int | None = None,
) -> Json:
    """``execRefId``: the report's own id, or for TradeCancel/TradeCorrect the execution they
    refer to (FIX ExecRefID); the simulator names the fill id there (undocumented, see fidelity)."""
    body: Json = {
        "id": report_id,
        "commandId": command_id,
        "name": str(report_id),
        "accountId": account_id,
        "contractId": contract_id,
        "timestamp": iso(ts),
        "tradeDate": trade_date(ts),
        "orderId": order_id,
        "execType": exec_type,
        "execRefId": report_id if exec_ref_id is None else exec_ref_id,
        "ordStatus": ord_status,
        "action": action,
        "cumQty": cum_qty,
        "exchangeOrderId": str(order_id),
    }
    for key, value in (
        ("avgPx", avg_px),
        ("lastQty", last_qty),
        ("lastPx", last_px),
        ("rejectReason", reject_reason),
        ("text", text),
    ):
        if value is not None:
            body[key] = value
    return body


def fill_entity(
    fill_id: int, order_id: int, contract_id: int, action: str, qty: int, price: float, ts: datetime
) -> Json:
    return {
        "id": fill_id,
        "orderId": order_id,
        "contractId": contract_id,
        "timestamp": iso(ts),
        "tradeDate": trade_date(ts),
        "action": action,
        "qty": qty,
        "price": price,
        "active": True,
        "finallyPaired": 0,
    }


def position_entity(
    position_id: int,
    account_id: int,
    contract_id: int,
    net_pos: int,
    net_price: float | None,
    bought: int,
    bought_value: float,
    sold: int,
    sold_value: float,
    ts: datetime,
) -> Json:
    body: Json = {
        "id": position_id,
        "accountId": account_id,
        "contractId": contract_id,
        "timestamp": iso(ts),
        "tradeDate": trade_date(ts),
        "netPos": net_pos,
        "bought": bought,
        "boughtValue": bought_value,
        "sold": sold,
        "soldValue": sold_value,
        "prevPos": 0,
    }
    if net_price is not None:
        body["netPrice"] = net_price
    return body


def props(entity_type: str, event_type: str, entity: Json) -> Json:
    """The ``d`` of a ``{"e":"props"}`` push."""
    return {"entityType": entity_type, "eventType": event_type, "entity": entity}


# -- requests ----------------------------------------------------------------------------
def place_order_body(
    account_name: str,
    account_id: int,
    cl_ord_id: str,
    action: str,
    symbol: str,
    qty: int,
    order_type: str,
    price: float | None,
    stop_price: float | None,
    tif: str,
) -> Json:
    body: Json = {
        "accountSpec": account_name,
        "accountId": account_id,
        "clOrdId": cl_ord_id,
        "action": action,
        "symbol": symbol,
        "orderQty": qty,
        "orderType": order_type,
        "timeInForce": tif,
        "isAutomated": True,
    }
    if price is not None:
        body["price"] = price
    if stop_price is not None:
        body["stopPrice"] = stop_price
    return body


def modify_order_body(
    order_id: int, qty: int, order_type: str, price: float | None, stop_price: float | None, tif: str
) -> Json:
    body: Json = {
        "orderId": order_id,
        "orderQty": qty,
        "orderType": order_type,
        "timeInForce": tif,
        "isAutomated": True,
    }
    if price is not None:
        body["price"] = price
    if stop_price is not None:
        body["stopPrice"] = stop_price
    return body


def cancel_order_body(order_id: int) -> Json:
    return {"orderId": order_id, "isAutomated": True}


def restrained_order_version(
    action: str, cl_ord_id: str | None, order_type: str, price: float | None, stop_price: float | None, tif: str
) -> Json:
    """One ``bracket1``/``bracket2`` of placeOSO (RestrainedOrderVersion: no symbol, no qty)."""
    body: Json = {"action": action, "orderType": order_type, "timeInForce": tif}
    if cl_ord_id is not None:
        body["clOrdId"] = cl_ord_id
    if price is not None:
        body["price"] = price
    if stop_price is not None:
        body["stopPrice"] = stop_price
    return body


def place_oso_body(entry: Json, bracket1: Json, bracket2: Json | None) -> Json:
    """placeOSO = a placeorder body plus ``bracket1`` and, optionally, ``bracket2``."""
    body = {**entry, "bracket1": bracket1}
    if bracket2 is not None:
        body["bracket2"] = bracket2
    return body


def liquidate_body(account_id: int, contract_id: int) -> Json:
    """LiquidatePosition has no ``clOrdId`` (only ``customTag50``): see the adapter's flatten."""
    return {"accountId": account_id, "contractId": contract_id, "admin": False}


def sync_body(user_id: int) -> Json:
    return {"users": [user_id]}

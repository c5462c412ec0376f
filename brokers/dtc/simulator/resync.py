"""The simulated server's answers to the resync requests: accounts, open orders, positions, balance.

Each request carries a RequestID and is answered by one message per item, numbered
``MessageNumber`` of ``TotalNumberMessages``; an empty answer is one message with the request's
"none" flag (NoOrders, NoPositions, NoAccountBalances), as the trading-messages page asks.
A TradeAccount the login does not own is refused with the request's own reject message.
"""

from __future__ import annotations

from ...simkernel.exchange import SimExchange
from ..codec import Message, make
from ..messages import MsgType, OrderUpdateReason
from .session import Session
from .updates import order_update, position_update

__all__ = ["Resync"]


def _accounts(session: Session, wanted: str) -> list[str] | None:
    """The login's accounts (all when ``wanted`` is empty), or None when it does not own ``wanted``."""
    assert session.login is not None
    if not wanted:
        return list(session.login.accounts)
    return [wanted] if wanted in session.login.accounts else None


def _not_available(wanted: str) -> str:
    return f"trade account {wanted!r} is not available"


class Resync:
    def __init__(self, exchange: SimExchange) -> None:
        self.exchange = exchange

    def trade_accounts(self, session: Session, msg: Message) -> None:
        accounts = _accounts(session, "") or []
        for n, account in enumerate(accounts, start=1):
            session.send(
                make(
                    MsgType.TRADE_ACCOUNT_RESPONSE,
                    TotalNumberMessages=len(accounts),
                    MessageNumber=n,
                    TradeAccount=account,
                    RequestID=msg.as_int("RequestID"),
                )
            )

    def open_orders(self, session: Session, msg: Message) -> None:
        request_id = msg.as_int("RequestID")
        accounts = _accounts(session, msg.as_text("TradeAccount"))
        if accounts is None:
            text = _not_available(msg.as_text("TradeAccount"))
            session.send(make(MsgType.OPEN_ORDERS_REJECT, RequestID=request_id, RejectText=text))
            return
        orders = [o for name in accounts for o in self.exchange.open_orders(name)]
        if not msg.as_int("RequestAllOrders"):
            orders = [o for o in orders if o.order_id == msg.as_text("ServerOrderID")]
        reason = OrderUpdateReason.OPEN_ORDERS_REQUEST_RESPONSE
        if not orders:
            empty = {"RequestID": request_id, "TotalNumMessages": 1, "MessageNumber": 1, "NoOrders": 1}
            session.send(make(MsgType.ORDER_UPDATE, OrderUpdateReason=int(reason), **empty))
        for n, order in enumerate(orders, start=1):
            extra = {"RequestID": request_id, "TotalNumMessages": len(orders), "MessageNumber": n}
            session.send(order_update(order, reason, **extra))

    def positions(self, session: Session, msg: Message) -> None:
        request_id = msg.as_int("RequestID")
        accounts = _accounts(session, msg.as_text("TradeAccount"))
        if accounts is None:
            text = _not_available(msg.as_text("TradeAccount"))
            session.send(make(MsgType.CURRENT_POSITIONS_REJECT, RequestID=request_id, RejectText=text))
            return
        events = [
            self.exchange.position_event(name, symbol)
            for name in accounts
            for symbol, position in sorted(self.exchange.account(name).positions.items())
            if position.net_quantity
        ]
        if not events:
            empty = {"RequestID": request_id, "TotalNumberMessages": 1, "MessageNumber": 1, "NoPositions": 1}
            session.send(make(MsgType.POSITION_UPDATE, **empty))
        for n, event in enumerate(events, start=1):
            extra = {"RequestID": request_id, "TotalNumberMessages": len(events), "MessageNumber": n}
            session.send(position_update(event, **extra))

    def balance(self, session: Session, msg: Message) -> None:
        """ACCOUNT_BALANCE_REQUEST 601 → one ACCOUNT_BALANCE_UPDATE 600 per account (reject 602)."""
        request_id = msg.as_int("RequestID")
        accounts = _accounts(session, msg.as_text("TradeAccount"))
        if accounts is None:
            text = _not_available(msg.as_text("TradeAccount"))
            session.send(make(MsgType.ACCOUNT_BALANCE_REJECT, RequestID=request_id, RejectText=text))
            return
        if not accounts:
            empty = {"RequestID": request_id, "TotalNumberMessages": 1, "MessageNumber": 1, "NoAccountBalances": 1}
            session.send(make(MsgType.ACCOUNT_BALANCE_UPDATE, **empty))
        for n, name in enumerate(accounts, start=1):
            cash = float(self.exchange.account(name).balance)
            session.send(
                make(
                    MsgType.ACCOUNT_BALANCE_UPDATE,
                    RequestID=request_id,
                    CashBalance=cash,
                    BalanceAvailableForNewPositions=cash,
                    AccountCurrency="USD",
                    TradeAccount=name,
                    TotalNumberMessages=len(accounts),
                    MessageNumber=n,
                )
            )

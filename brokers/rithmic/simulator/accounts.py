"""Order history (324), exit position (3504) and the PNL plant (400, 402 → 450/451) over the kernel.

Facts [AR order.py, pnl.py; PB78]: 324 lists the day's orders as 352 snapshots (``is_snapshot``)
closed by 325; 3504 exits the account's position in one symbol (or all when no symbol) and takes
no ``user_tag``; on the PNL plant 400 subscribes an account to 450 (per instrument) / 451 (per
account) updates and 402 answers with snapshots of both, closed by 403.

UNDOCUMENTED, strictest plausible answer here: 3504 also cancels the account's working orders in
that symbol (the kernel's flatten); the closing market orders carry no user_tag.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from google.protobuf.message import Message

from ...model import PositionEvent
from .. import codec
from . import wire

if TYPE_CHECKING:
    from .server import RithmicSimulator, Session


class AccountDesk:
    def __init__(self, sim: RithmicSimulator) -> None:
        self.sim = sim

    # -- ORDER plant -----------------------------------------------------------------------
    async def order_history(self, session: Session, request: Message) -> None:
        sim, req = self.sim, request
        refused = sim.wrong_account(session, request)
        if refused is None:
            orders = [o for o in sim.exchange.account(req.account_id).orders.values() if o.order_id in sim.exchange_of]
            sim.send(session, *(sim.notifier.snapshot(order) for order in orders))
        sim.send(session, wire.final(request, 325, refused))

    async def exit_position(self, session: Session, request: Message) -> None:
        sim, req = self.sim, request
        refused = sim.wrong_account(session, request)
        if refused is not None:
            sim.send(session, wire.final(request, 3505, refused))
            return
        symbol = req.symbol or None
        with sim.holding():
            sim.notifier.expecting_all = str(req.exchange)  # empty: each symbol's own venue
            try:
                sim.exchange.flatten(req.account_id, symbol)
            finally:
                sim.notifier.expecting_all = None
            sim.send(session, wire.final(request, 3505, symbol=req.symbol, exchange=req.exchange))

    # -- PNL plant -------------------------------------------------------------------------
    async def pnl_updates(self, session: Session, request: Message) -> None:
        sim, req = self.sim, request
        refused = sim.wrong_account(session, request)
        if refused is None:
            if req.request == 2:  # UNSUBSCRIBE
                session.pnl_accounts.discard(req.account_id)
            else:
                session.pnl_accounts.add(req.account_id)
        sim.send(session, wire.final(request, 401, refused))

    async def pnl_snapshot(self, session: Session, request: Message) -> None:
        sim, req = self.sim, request
        refused = sim.wrong_account(session, request)
        if refused is None:
            account = sim.exchange.account(req.account_id)
            for symbol in sorted(account.positions):
                sim.send(session, self.instrument(sim.exchange.position_event(req.account_id, symbol), snapshot=True))
            sim.send(session, self.account(req.account_id, snapshot=True))
        sim.send(session, wire.final(request, 403, refused))

    def instrument(self, event: PositionEvent, *, snapshot: bool = False) -> Message:
        """450 for one position; prices are doubles, balances strings, on the wire [PB78]."""
        net = event.net_quantity
        fields: dict[str, Any] = dict(
            fcm_id=self.sim.fcm_id,
            ib_id=self.sim.ib_id,
            account_id=event.account_id,
            symbol=event.symbol,
            exchange=wire.exchange_of_symbol(event.symbol),
            net_quantity=net,
            open_position_quantity=abs(net),
            buy_qty=max(net, 0),
            sell_qty=max(-net, 0),
            day_closed_pnl=float(event.realized_pnl),
            is_snapshot=snapshot,
        )
        if event.average_price is not None and net:
            fields["avg_open_fill_price"] = float(event.average_price)
        return codec.build(450, **fields)

    def account(self, account_id: str, *, snapshot: bool = False) -> Message:
        account = self.sim.exchange.account(account_id)
        net = sum(p.net_quantity for p in account.positions.values())
        return codec.build(
            451,
            fcm_id=self.sim.fcm_id,
            ib_id=self.sim.ib_id,
            account_id=account_id,
            account_balance=str(account.balance),
            cash_on_hand=str(account.balance),
            net_quantity=net,
            is_snapshot=snapshot,
        )

"""The simulator's order desk: FIX requests → the shared kernel, kernel events → FIX reports.

Runs on the event loop (the bridge brings every request here). Reports go to the login's
session through the engine, which stores them when the session is down: the client's next
logon finds the sequence gap and the engine's resend delivers them (PossDupFlag=Y).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from decimal import Decimal

from ...model import FillCorrection, FillEvent, OrderEvent, OrderStatus
from ...simkernel.exchange import KernelEvent, SimError, SimExchange, SimOrder
from .. import messages as m
from ..codec import FixDecodeError, FixMessage

Send = Callable[[str, str, m.Fields], None]  # (account, msg type, fields)


class OrderDesk:
    def __init__(self, exchange: SimExchange, send: Send, begin_string_of: Callable[[str], str]) -> None:
        self.exchange = exchange
        self.send = send
        self.begin_string_of = begin_string_of  # account → the FIX version its session speaks
        self.cl_ord_ids: dict[str, str] = {}  # order id → current ClOrdID
        self.orig: dict[str, str] = {}  # order id → OrigClOrdID of the request being answered
        self.chain: dict[tuple[str, str], str] = {}  # (account, any ClOrdID) → order id
        self.pending: dict[str, tuple[str, str, str]] = {}  # order id → (ClOrdID, OrigClOrdID, ExecType)
        self._exec_ids = itertools.count(90001)
        self.order_status_supported = True

    def forget(self, account: str, orders: list[SimOrder]) -> None:
        """The kernel forgot these finished orders (its history limit): their ClOrdID chains
        go too, so a request naming one is answered as for an unknown order."""
        gone = {order.order_id for order in orders}
        for order_id in gone:
            self.cl_ord_ids.pop(order_id, None)
            self.orig.pop(order_id, None)
            self.pending.pop(order_id, None)
        for key in [key for key, order_id in self.chain.items() if key[0] == account and order_id in gone]:
            del self.chain[key]

    # -- requests ------------------------------------------------------------------------------
    def new_order(self, account: str, request: FixMessage) -> None:
        cl = request.require(m.CL_ORD_ID)
        order_type = m.ORD_TYPES_IN.get(request.get(m.ORD_TYPE))
        tif = m.TIFS_IN.get(request.get(m.TIME_IN_FORCE, "0"))
        quantity = request.quantity(m.ORDER_QTY, required=True)
        if order_type is None or tif is None or quantity <= 0:
            raise FixDecodeError("unsupported OrdType/TimeInForce or no positive OrderQty", request.text())
        order, _ = self.exchange.submit(
            account,
            symbol=request.require(m.SYMBOL),
            side=m.side_of(request),
            quantity=quantity,
            order_type=order_type,
            limit_price=request.decimal(m.PRICE),
            stop_price=request.decimal(m.STOP_PX),
            time_in_force=tif,
            client_order_id=cl,
        )
        del order  # its reports went out through on_event as the kernel published them

    def _find(self, account: str, request: FixMessage) -> SimOrder | None:
        order_id = request.get(m.ORDER_ID) or self.chain.get((account, request.get(m.ORIG_CL_ORD_ID)))
        return self.exchange.account(account).orders.get(order_id) if order_id else None

    def cancel(self, account: str, request: FixMessage) -> None:
        self._change(account, request, "1")

    def replace(self, account: str, request: FixMessage) -> None:
        self._change(account, request, "2")

    def _change(self, account: str, request: FixMessage, response_to: str) -> None:
        cl, orig = request.require(m.CL_ORD_ID), request.require(m.ORIG_CL_ORD_ID)
        order = self._find(account, request)
        if order is None:
            self._cancel_reject(account, cl, orig, "NONE", "8", "1", response_to, "Unknown order")
            return
        try:
            if response_to == "1":
                self._prepare(order, cl, orig, "4")
                self.exchange.cancel(account, order.order_id, "cancelled by request")
            else:
                self._prepare(order, cl, orig, "5")
                self.exchange.modify(
                    account,
                    order.order_id,
                    quantity=request.quantity(m.ORDER_QTY) or None,
                    limit_price=request.decimal(m.PRICE),
                    stop_price=request.decimal(m.STOP_PX),
                )
        except SimError as exc:
            self.pending.pop(order.order_id, None)
            reason = "1" if exc.code in ("unknown_order",) else "0"  # 0: too late to cancel
            status = m.STATUS_OUT[order.status]
            self._cancel_reject(account, cl, orig, order.order_id, status, reason, response_to, str(exc))

    def _prepare(self, order: SimOrder, cl: str, orig: str, exec_type: str) -> None:
        """The request's report takes its ClOrdID; reports before it (a fill that beat the
        cancel) keep the order's current one."""
        self.pending[order.order_id] = (cl, orig, exec_type)

    def status(self, account: str, request: FixMessage) -> None:
        cl = request.require(m.CL_ORD_ID)
        order_id = request.get(m.ORDER_ID) or self.chain.get((account, cl))
        order = self.exchange.account(account).orders.get(order_id) if order_id else None
        version = self.begin_string_of(account)
        kind = [(m.EXEC_TRANS_TYPE, "3")] if version == m.FIX42 else []
        if order is None:
            self.send(
                account,
                m.EXECUTION_REPORT,
                [
                    (m.ORDER_ID, "NONE"),
                    (m.CL_ORD_ID, cl),
                    (m.EXEC_ID, self._exec_id()),
                    *kind,
                    (m.EXEC_TYPE, "8" if version == m.FIX42 else "I"),
                    (m.ORD_STATUS, "8"),
                    (m.ORD_REJ_REASON, m.UNKNOWN_ORDER),
                    (m.ACCOUNT, account),
                    (m.SYMBOL, request.require(m.SYMBOL)),
                    (m.SIDE, request.require(m.SIDE)),
                    (m.LEAVES_QTY, "0"),
                    (m.CUM_QTY, "0"),
                    (m.AVG_PX, "0"),
                    (m.TEXT, "Unknown order"),
                ],
            )
            return
        exec_type = m.STATUS_OUT[order.status] if version == m.FIX42 else "I"
        self.send(account, m.EXECUTION_REPORT, self._report(order, exec_type, kind))

    # -- kernel events → reports -----------------------------------------------------------------
    def on_event(self, event: KernelEvent) -> None:
        if isinstance(event, OrderEvent):
            self._order_event(event)
        elif isinstance(event, FillEvent):
            self._fill(event)
        elif isinstance(event, FillCorrection):
            self._correction(event)

    def _order(self, account: str, order_id: str) -> SimOrder | None:
        owner = self.exchange.accounts.get(account)
        return owner.orders.get(order_id) if owner else None

    def _order_event(self, event: OrderEvent) -> None:
        order = self._order(event.account_id, event.broker_order_id)
        if order is None or order.client_order_id is None:
            return  # not entered over FIX (a kernel-made order): no session to tell
        if order.order_id not in self.cl_ord_ids:
            self.cl_ord_ids[order.order_id] = order.client_order_id
            self.chain.setdefault((order.account, order.client_order_id), order.order_id)
        exec_type = None
        change = self.pending.get(order.order_id)
        if change is not None and (change[2] == "5" or event.status is OrderStatus.CANCELLED):
            del self.pending[order.order_id]
            cl, orig, exec_type = change
            self.cl_ord_ids[order.order_id] = cl
            self.orig[order.order_id] = orig
            self.chain[(order.account, cl)] = order.order_id
        if exec_type is None:
            exec_type = {
                OrderStatus.WORKING: "0",
                OrderStatus.PENDING: "A",
                OrderStatus.REJECTED: "8",
                OrderStatus.CANCELLED: "4",
                OrderStatus.EXPIRED: "C",
            }.get(event.status, "")
            if not exec_type:
                return  # a fill's state change: the trade report that follows carries it
        trans = [(m.EXEC_TRANS_TYPE, "0")] if self.begin_string_of(order.account) == m.FIX42 else []
        extra = [(m.TEXT, event.reason)] if event.reason and event.status is not OrderStatus.REJECTED else []
        self.send(order.account, m.EXECUTION_REPORT, self._report(order, exec_type, trans, extra))
        self.orig.pop(order.order_id, None)

    def _fill(self, fill: FillEvent) -> None:
        order = self._order(fill.account_id, fill.broker_order_id)
        if order is None or order.client_order_id is None:
            return
        if self.begin_string_of(order.account) == m.FIX42:
            head = [(m.EXEC_TRANS_TYPE, "0")]
            exec_type = "2" if fill.leaves_quantity == 0 else "1"
        else:
            head, exec_type = [], "F"
        last = [(m.LAST_QTY, str(fill.quantity)), (m.LAST_PX, m.price_text(fill.price))]
        self.send(order.account, m.EXECUTION_REPORT, self._report(order, exec_type, head, last, exec_id=fill.fill_id))

    def _correction(self, event: FillCorrection) -> None:
        order = self._order(event.account_id, event.broker_order_id)
        if order is None or order.client_order_id is None:
            return
        if self.begin_string_of(order.account) == m.FIX42:
            head, exec_type = [(m.EXEC_TRANS_TYPE, "1" if event.busted else "2")], "2"
        else:
            head, exec_type = [], "H" if event.busted else "G"
        last = [(m.EXEC_REF_ID, event.fill_id), (m.LAST_QTY, str(event.quantity))]
        last.append((m.LAST_PX, m.price_text(event.price if event.price is not None else event.original_price)))
        self.send(
            order.account, m.EXECUTION_REPORT, self._report(order, exec_type, head, last, exec_id=event.correction_id)
        )

    # -- building --------------------------------------------------------------------------------
    def _exec_id(self) -> str:
        return f"E{next(self._exec_ids)}"

    def _report(
        self,
        order: SimOrder,
        exec_type: str,
        head: m.Fields,
        extra: m.Fields | None = None,
        *,
        exec_id: str | None = None,
    ) -> m.Fields:
        orig = self.orig.get(order.order_id)
        fields: m.Fields = [
            (m.ORDER_ID, order.order_id),
            (m.CL_ORD_ID, self.cl_ord_ids.get(order.order_id, order.client_order_id or "")),
            *([(m.ORIG_CL_ORD_ID, orig)] if orig else []),
            (m.EXEC_ID, exec_id or self._exec_id()),
            *head,
            (m.EXEC_TYPE, exec_type),
            (m.ORD_STATUS, m.STATUS_OUT[order.status]),
            (m.ACCOUNT, order.account),
            (m.SYMBOL, order.symbol),
            (m.SIDE, m.SIDES[order.side]),
            (m.ORDER_QTY, str(order.quantity)),
            (m.ORD_TYPE, m.ORD_TYPES[order.order_type]),
            (m.LEAVES_QTY, str(order.leaves_quantity if not order.status.is_final else 0)),
            (m.CUM_QTY, str(order.filled_quantity)),
            (m.AVG_PX, m.price_text(order.average_price or Decimal(0))),
        ]
        if order.limit_price is not None:
            fields.append((m.PRICE, m.price_text(order.limit_price)))
        if order.stop_price is not None:
            fields.append((m.STOP_PX, m.price_text(order.stop_price)))
        if order.status is OrderStatus.REJECTED:
            fields.append((m.ORD_REJ_REASON, "99" if m.FIX44 == self.begin_string_of(order.account) else "0"))
            fields.append((m.TEXT, order.reason or "rejected"))
        return fields + list(extra or [])

    def _cancel_reject(
        self, account: str, cl: str, orig: str, order_id: str, status: str, reason: str, response_to: str, text: str
    ) -> None:
        self.send(
            account,
            m.CANCEL_REJECT,
            [
                (m.ORDER_ID, order_id),
                (m.CL_ORD_ID, cl),
                (m.ORIG_CL_ORD_ID, orig),
                (m.ORD_STATUS, status),
                (m.ACCOUNT, account),
                (m.CXL_REJ_RESPONSE_TO, response_to),
                (m.CXL_REJ_REASON, reason),
                (m.TEXT, text[:120]),
            ],
        )

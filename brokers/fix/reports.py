"""Incoming application messages → answers to waiting requests, and events (each once).

An ExecutionReport both answers the request whose ClOrdID it carries and tells the order's new
state; a trade in it is emitted once per ExecID (a resend repeats it). An OrderCancelReject,
a BusinessMessageReject (by BusinessRejectRefID) and a session-level Reject (by RefSeqNum, via
the sequence numbers ``toApp`` saw) answer the request they name.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from ..errors import BrokerError, BrokerUnavailable
from . import messages as m
from .codec import FixDecodeError, FixMessage

if TYPE_CHECKING:
    from .adapter import FixAdapter


class UnreadableAnswer(BrokerError):
    """The report answering our request holds a value we cannot read. The request may have been
    carried out, so the executor reports the outcome as unknown and looks the order up."""


class ReportRouter:
    def __init__(self, adapter: FixAdapter) -> None:
        self.adapter = adapter
        self.waiters: dict[str, asyncio.Future[FixMessage]] = {}  # request ClOrdID → its answer
        self.status_waiters: dict[str, asyncio.Future[FixMessage]] = {}
        self.old_news = 0  # reports of forgotten orders recognised as repeats (tests read it)

    def wait(self, cl_ord_id: str, *, status: bool = False) -> asyncio.Future[FixMessage]:
        table = self.status_waiters if status else self.waiters
        future: asyncio.Future[FixMessage] = asyncio.get_running_loop().create_future()
        table[cl_ord_id] = future
        return future

    async def answer(
        self, cl_ord_id: str, future: asyncio.Future[FixMessage], what: str, *, status: bool = False
    ) -> FixMessage:
        timeout = self.adapter.fix.request_timeout_s
        try:
            return await asyncio.wait_for(asyncio.shield(future), timeout)
        except TimeoutError:
            raise BrokerUnavailable(f"fix: no answer to {what} within {timeout} s", sent=True) from None
        finally:
            table = self.status_waiters if status else self.waiters
            if table.get(cl_ord_id) is future:
                del table[cl_ord_id]

    def fail_all(self, error: BrokerError) -> None:
        for table in (self.waiters, self.status_waiters):
            for future in table.values():
                if not future.done():
                    future.set_exception(error)
            table.clear()

    @staticmethod
    def _resolve(table: dict[str, asyncio.Future[FixMessage]], key: str, message: FixMessage) -> None:
        future = table.get(key)
        if future is not None and not future.done():
            future.set_result(message)

    @staticmethod
    def _fail(table: dict[str, asyncio.Future[FixMessage]], key: str, error: BrokerError) -> None:
        future = table.get(key)
        if future is not None and not future.done():
            future.set_exception(error)

    # -- routing -----------------------------------------------------------------------------
    def route(self, message: FixMessage) -> None:
        kind = message.msg_type
        if kind == m.EXECUTION_REPORT:
            self.execution_report(message)
        elif kind == m.CANCEL_REJECT:
            self._resolve(self.waiters, message.get(m.CL_ORD_ID), message)
        elif kind == m.BUSINESS_REJECT:
            self.business_reject(message)

    def session_reject(self, message: FixMessage) -> None:
        """35=3: the counterparty's engine refused one of our messages outright."""
        sent = self.adapter.sent_seq.get(int(message.quantity(m.REF_SEQ_NUM)))
        if sent is not None:
            msg_type, cl = sent
            self._resolve(self.status_waiters if msg_type == m.STATUS else self.waiters, cl, message)
        self.adapter.report(f"session-level Reject of our message {message.get(m.REF_SEQ_NUM)}: {message.get(m.TEXT)}")

    def business_reject(self, message: FixMessage) -> None:
        ref = message.get(m.BUSINESS_REJECT_REF_ID)
        sent = self.adapter.sent_seq.get(message.quantity(m.REF_SEQ_NUM)) if message.has(m.REF_SEQ_NUM) else None
        for cl in {ref, sent[1] if sent else ""} - {""}:
            self._resolve(self.waiters, cl, message)
            self._resolve(self.status_waiters, cl, message)

    def execution_report(self, report: FixMessage) -> None:
        adapter, book = self.adapter, self.adapter.book
        cl = report.get(m.CL_ORD_ID)
        try:
            kind = m.report_kind(adapter.fix.begin_string, report)
        except FixDecodeError as exc:
            self._fail(self.waiters, cl, UnreadableAnswer(f"fix: {exc}", code="BAD_ANSWER"))
            self._fail(self.status_waiters, cl, UnreadableAnswer(f"fix: {exc}", code="BAD_ANSWER"))
            raise
        if kind == m.STATUS_ANSWER:
            self._resolve(self.status_waiters, cl, report)
            return
        client = book.client_of(cl, report.get(m.ORIG_CL_ORD_ID)) or book.order_ids.get(report.get(m.ORDER_ID))
        if client is None and book.forgotten:
            found = self._forgotten(report, kind)
            if found is None:
                self._resolve(self.waiters, cl, report)
                return  # old news of a forgotten order
            client = found or None
        tracked = book.orders.get(client) if client else None
        account = adapter.account_of(report) or (tracked.account_id if tracked else None)
        try:
            if account is not None:
                self._emit_events(report, kind, account, client)
        except FixDecodeError as exc:
            self._fail(self.waiters, cl, UnreadableAnswer(f"fix: {exc}", code="BAD_ANSWER"))
            raise
        if tracked is not None and cl and report.get(m.ORD_STATUS) != "8":
            tracked.current_cl_ord_id = cl
        book.settle(client)
        self._resolve(self.waiters, cl, report)

    def _forgotten(self, report: FixMessage, kind: str) -> str | None:
        """A report naming no order held in full: for a forgotten order, None when it is old
        news (a resend, a replay), else the order brought back in full to handle it. Any other
        report gives ``""`` (no order of ours, handled as before)."""
        book = self.adapter.book
        order_id = report.get(m.ORDER_ID)
        client = book.forgotten_client(order_id, report.get(m.CL_ORD_ID), report.get(m.ORIG_CL_ORD_ID))
        if client is None:
            return ""
        correction = kind in (m.BUST, m.CORRECT)
        if book.old_news(client, report.get(m.EXEC_ID), order_id, report.quantity(m.CUM_QTY), correction=correction):
            self.old_news += 1
            return None
        book.revive(client)
        return client

    def _emit_events(self, report: FixMessage, kind: str, account: str, client: str | None) -> None:
        adapter, book = self.adapter, self.adapter.book
        if kind in (m.BUST, m.CORRECT):
            original = book.fills.get(report.get(m.EXEC_REF_ID))
            if original is None:
                adapter.report(f"a correction of execution {report.get(m.EXEC_REF_ID)!r} we never saw")
                return
            if report.get(m.EXEC_ID) in book.fills:
                return  # a resent correction
            correction = m.correction_event(report, account, client, original)
            book.correct(original, correction.quantity, correction.price, correction.busted)
            book.record_correction(client, correction.correction_id, original)
            adapter._emit(correction)
            adapter._emit(book.position(account, original.symbol))
            return
        event = m.order_event(report, account, client)
        fill = m.fill_event(report, account, client) if kind == m.TRADE else None
        if book.changed(client, event):
            adapter._emit(event)
        if fill is not None and book.new_fill(fill):
            adapter._emit(fill)
            adapter._emit(book.position(account, fill.symbol))

"""The quickfix.Application both ends use: QuickFIX's threads in, the asyncio loop out.

QuickFIX calls the application on its own threads, with C++ messages valid only during the call.
Each callback copies what it needs to text and hands it to the loop with
``loop.call_soon_threadsafe``: it never waits for the loop, so a busy loop cannot stall the
engine's heartbeats. Two decisions must be taken on the engine's thread because the engine
acts on the callback's outcome at once:

* ``toApp``: a NewOrderSingle, OrderCancelRequest or OrderCancelReplaceRequest being resent with
  PossDupFlag=Y (the engine answering a ResendRequest from its store) is turned into a gap fill.
  The counterparty must not be able to execute an order twice: whether the first one arrived is
  for :meth:`FixAdapter.lookup` to find out.
* ``fromAdmin`` on the acceptor: a Logon with the wrong Username/Password is refused.

QuickFIX's documented way for both is to raise ``DoNotSend`` / ``RejectLogon`` from the
callback, but with this binding (quickfix-ssl 1.15.1) any exception raised in a Python callback
ends in ``std::terminate``: the interpreter aborts (tests/brokers/fix/test_fix_application.py
shows the workarounds). So nothing is ever raised into the engine: the resend is rewritten in
place into the SequenceReset-GapFill the engine would have sent (:func:`into_gap_fill`; the
initiator also runs with PersistMessages=N, so its store holds no order to resend at all), and a
refused Logon is answered as QuickFIX answers RejectLogon: a Logout carrying the reason, then
the disconnect (:func:`refuse_logon`). ``toAdmin`` adds the credentials to our Logon.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass

import quickfix as fix

from .messages import ORDER_ENTRY

log = logging.getLogger(__name__)

USERNAME, PASSWORD, MSG_SEQ_NUM, MSG_TYPE, POSS_DUP, TEXT = 553, 554, 34, 35, 43, 58
GAP_FILL_FLAG, NEW_SEQ_NO = 123, 36


@dataclass(frozen=True, slots=True)
class SessionKey:
    """A QuickFIX SessionID as plain strings (the C++ object must not outlive the callback)."""

    begin_string: str
    sender_comp_id: str
    target_comp_id: str

    @classmethod
    def of(cls, session_id: fix.SessionID) -> SessionKey:
        return cls(
            session_id.getBeginString().getValue(),
            session_id.getSenderCompID().getValue(),
            session_id.getTargetCompID().getValue(),
        )

    def session_id(self) -> fix.SessionID:
        return fix.SessionID(self.begin_string, self.sender_comp_id, self.target_comp_id)


class Listener:
    """What the loop side implements; every method runs on the event loop."""

    def on_logon(self, key: SessionKey) -> None: ...

    def on_logout(self, key: SessionKey) -> None: ...

    def on_admin(self, key: SessionKey, raw: str) -> None: ...

    def on_app(self, key: SessionKey, raw: str) -> None: ...

    def on_sent(self, key: SessionKey, msg_type: str, seq_num: int, raw: str) -> None: ...


#: ``(key, raw Logon text) -> reason`` to refuse a Logon (acceptor), or None to accept it.
LogonCheck = Callable[[SessionKey, str], str | None]


def _header(message: fix.Message, tag: int) -> str:
    header = message.getHeader()
    return str(header.getField(tag)) if header.isSetField(tag) else ""


class Bridge(fix.Application):  # type: ignore[misc]  # quickfix ships no type hints
    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        listener: Listener,
        *,
        credentials: tuple[str | None, str | None] = (None, None),
        check_logon: LogonCheck | None = None,
    ) -> None:
        super().__init__()
        self.loop = loop
        self.listener = listener
        self.credentials = credentials
        self.check_logon = check_logon
        self.suppressed_resends = 0  # order entry turned into gap fills (tests read it)

    def _post(self, callback: Callable[..., None], *args: object) -> None:
        try:
            self.loop.call_soon_threadsafe(callback, *args)
        except RuntimeError:  # the loop closed while the engine was stopping
            pass

    # -- quickfix.Application ----------------------------------------------------------------
    def onCreate(self, session_id: fix.SessionID) -> None:  # noqa: N802 - QuickFIX's name
        pass

    def onLogon(self, session_id: fix.SessionID) -> None:  # noqa: N802
        try:
            self._post(self.listener.on_logon, SessionKey.of(session_id))
        except Exception:  # noqa: BLE001 - nothing may escape into the engine
            log.exception("fix: onLogon")

    def onLogout(self, session_id: fix.SessionID) -> None:  # noqa: N802
        try:
            self._post(self.listener.on_logout, SessionKey.of(session_id))
        except Exception:  # noqa: BLE001
            log.exception("fix: onLogout")

    def toAdmin(self, message: fix.Message, session_id: fix.SessionID) -> None:  # noqa: N802
        try:
            username, password = self.credentials
            if _header(message, MSG_TYPE) == "A":
                if username:
                    message.setField(fix.StringField(USERNAME, username))
                if password:
                    message.setField(fix.StringField(PASSWORD, password))
        except Exception:  # noqa: BLE001
            log.exception("fix: toAdmin")

    def fromAdmin(self, message: fix.Message, session_id: fix.SessionID) -> None:  # noqa: N802
        try:
            key, raw = SessionKey.of(session_id), message.toString()
            reason = None
            if self.check_logon is not None and _header(message, MSG_TYPE) == "A":
                reason = self.check_logon(key, raw)
            if reason is None:
                self._post(self.listener.on_admin, key, raw)
            else:
                refuse_logon(session_id, reason)
        except Exception:  # noqa: BLE001
            log.exception("fix: fromAdmin")

    def toApp(self, message: fix.Message, session_id: fix.SessionID) -> None:  # noqa: N802
        try:
            msg_type = _header(message, MSG_TYPE)
            seq = int(_header(message, MSG_SEQ_NUM) or 0)
            if _header(message, POSS_DUP) == "Y" and msg_type in ORDER_ENTRY:
                into_gap_fill(message, seq)
                self.suppressed_resends += 1
                return
            self._post(self.listener.on_sent, SessionKey.of(session_id), msg_type, seq, message.toString())
        except Exception:  # noqa: BLE001
            log.exception("fix: toApp")

    def fromApp(self, message: fix.Message, session_id: fix.SessionID) -> None:  # noqa: N802
        try:
            self._post(self.listener.on_app, SessionKey.of(session_id), message.toString())
        except Exception:  # noqa: BLE001
            log.exception("fix: fromApp")


HEADER_TAGS = frozenset(
    {8, 9, 35, 34, 49, 56, 52, 43, 97, 122, 115, 128, 50, 57, 142, 143, 144, 145, 212, 213, 347, 369, 627}
)


def into_gap_fill(message: fix.Message, seq_num: int) -> None:
    """Rewrite a resent order request, in place, into SequenceReset-GapFill over its own number.

    Keeps the header (PossDupFlag=Y, OrigSendingTime, MsgSeqNum) and replaces the body with
    GapFillFlag=Y and NewSeqNo=seq+1: exactly what the engine sends for a message it must not
    resend, so the counterparty's sequence stays whole and no order is executed twice.
    """
    body = {int(part.partition("=")[0]) for part in message.toString().split("\x01") if part}
    for tag in body - HEADER_TAGS - {10}:
        message.removeField(tag)
    message.getHeader().setField(fix.MsgType("4"))
    message.setField(fix.StringField(GAP_FILL_FLAG, "Y"))
    message.setField(fix.StringField(NEW_SEQ_NO, str(seq_num + 1)))


def refuse_logon(session_id: fix.SessionID, reason: str) -> None:
    """Answer a Logon with a Logout carrying ``reason`` and drop the connection (what QuickFIX
    does for RejectLogon), from inside ``fromAdmin``: before the engine answers the Logon."""
    logout = fix.Message()
    logout.getHeader().setField(fix.MsgType("5"))
    logout.setField(fix.StringField(TEXT, reason))
    fix.Session.sendToTarget(logout, session_id)
    session = fix.Session.lookupSession(session_id)
    if session is not None:
        session.disconnect()


def build_message(msg_type: str, fields: list[tuple[int, str]]) -> fix.Message:
    """A quickfix.Message of ``msg_type`` with ``fields`` in order (the engine fills the header)."""
    message = fix.Message()
    message.getHeader().setField(fix.MsgType(msg_type))
    for tag, value in fields:
        message.setField(fix.StringField(tag, value))
    return message


def send(key: SessionKey, msg_type: str, fields: list[tuple[int, str]]) -> bool:
    """Hand a message to the session's engine; False when the session does not exist."""
    return bool(fix.Session.sendToTarget(build_message(msg_type, fields), key.session_id()))

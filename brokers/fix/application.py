"""The quickfix.Application both ends use: QuickFIX's threads in, the asyncio loop out.

QuickFIX calls the application on its own threads, with C++ messages valid only during the call.
Each callback copies what it needs to text and hands it to the loop with
``loop.call_soon_threadsafe``: it never waits for the loop, so a busy loop cannot stall the
engine's heartbeats. Two decisions must be taken on the engine's thread because the engine
acts on the callback's outcome at once:

* ``toApp``: a NewOrderSingle, OrderCancelRequest or OrderCancelReplaceRequest being resent with
  PossDupFlag=Y (the engine answering a ResendRequest from its store) raises ``DoNotSend``, which
  QuickFIX turns into a gap fill. The counterparty must not be able to execute an order twice:
  whether the first one arrived is for :meth:`FixAdapter.lookup` to find out.
* ``fromAdmin`` on the acceptor: a Logon with the wrong Username/Password raises ``RejectLogon``.

A Python exception escaping a callback would travel into C++ through SWIG, so every callback
catches everything; ``toAdmin`` adds the credentials to our Logon.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass

import quickfix as fix

from .messages import ORDER_ENTRY

log = logging.getLogger(__name__)

USERNAME, PASSWORD, MSG_SEQ_NUM, MSG_TYPE = 553, 554, 34, 35


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
        reason: str | None = None
        try:
            key, raw = SessionKey.of(session_id), message.toString()
            if self.check_logon is not None and _header(message, MSG_TYPE) == "A":
                reason = self.check_logon(key, raw)
            if reason is None:
                self._post(self.listener.on_admin, key, raw)
        except Exception:  # noqa: BLE001
            log.exception("fix: fromAdmin")
            reason = "logon could not be checked" if self.check_logon is not None else None
        if reason is not None:
            raise fix.RejectLogon(reason)

    def toApp(self, message: fix.Message, session_id: fix.SessionID) -> None:  # noqa: N802
        resend_of_order = False
        try:
            msg_type = _header(message, MSG_TYPE)
            poss_dup = _header(message, 43) == "Y"
            if poss_dup and msg_type in ORDER_ENTRY:
                resend_of_order = True
                self.suppressed_resends += 1
            else:
                seq = _header(message, MSG_SEQ_NUM)
                raw = message.toString()
                self._post(self.listener.on_sent, SessionKey.of(session_id), msg_type, int(seq or 0), raw)
        except Exception:  # noqa: BLE001
            log.exception("fix: toApp")
        if resend_of_order:
            raise fix.DoNotSend()

    def fromApp(self, message: fix.Message, session_id: fix.SessionID) -> None:  # noqa: N802
        try:
            self._post(self.listener.on_app, SessionKey.of(session_id), message.toString())
        except Exception:  # noqa: BLE001
            log.exception("fix: fromApp")


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

"""Who is logged in where: the session limit (ForcedLogout 77) and the transport faults.

Session limit [PB78 response_login_info: ``tp_max_session_count``, ``op_max_session_count``; AR
base.py; I49]: a login past the user's limit on a plant gets a ForcedLogout (77) on the *older*
session, which the server then closes; async-rithmic reads 77 as "maximum number of concurrent
sessions?". The numbers are UNDOCUMENTED; the strictest plausible one is the default here:
``max_sessions=1`` per user and plant (a second ORDER-plant login of the same user evicts the
first), reported in 301 as both counts.

Transport faults (the kernel's :class:`FaultSwitches`, for the conformance suite):

* ``expire_token``: Rithmic has no token; the session *is* the login on the socket. The fault
  makes the server forget the login before the next request, which is then answered with Reject
  75 ``["1034", "invalid operation before login."]`` [PYR7] and not carried out.
* ``rate_limit_next``: Rithmic's rate limits are UNDOCUMENTED; the plausible answer used here is
  a Reject (75) ``["3", "rate limit exceeded"]`` — a request refused unhandled.
"""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING

from google.protobuf.message import Message

from .. import codec
from . import wire

if TYPE_CHECKING:
    from .server import RithmicSimulator, Session

RATE_LIMITED = ["3", "rate limit exceeded"]
#: Requests a transport fault may answer (heartbeats and logins are not "the next request").
FAULTABLE = frozenset({300, 302, 308, 310, 312, 314, 316, 320, 324, 336, 346, 3504, 400, 402})


class SessionBook:
    def __init__(self, sim: RithmicSimulator, max_sessions: int) -> None:
        self.sim = sim
        self.max_sessions = max_sessions
        self._order = itertools.count(1)
        #: Successful logins per user name (a client that fights another session shows here).
        self.logins: dict[str, int] = {}
        self.forced_logouts = 0

    def logged_in(self, session: Session) -> None:
        """Count the login and evict the user's oldest sessions on this plant past the limit."""
        assert session.user is not None
        session.login_order = next(self._order)
        self.logins[session.user] = self.logins.get(session.user, 0) + 1
        same = sorted(
            (
                s
                for s in self.sim.sessions
                if s is not session and s.user == session.user and s.infra_type == session.infra_type
            ),
            key=lambda s: s.login_order,
        )
        while len(same) + 1 > self.max_sessions:
            self.force_logout(same.pop(0))

    def force_logout(self, session: Session) -> None:
        """77, then the server closes the socket; the session is no one's from now on."""
        self.forced_logouts += 1
        self.sim.send(session, codec.build(77))
        self.forget(session)
        session.outbox.put_nowait(b"")  # the writer closes the socket after what is queued

    @staticmethod
    def forget(session: Session) -> None:
        session.user = None
        session.order_accounts.clear()
        session.pnl_accounts.clear()

    def fault_answer(self, session: Session, request: Message) -> Message | None:
        """A transport fault's answer to ``request`` (None: handle it as usual)."""
        template_id = codec.template_of(request)
        if session.user is None or template_id not in FAULTABLE:
            return None
        faults = [self.sim.exchange.account(a).faults for a in self.sim.accounts_of(session)]
        if any(f.take_rate_limit() for f in faults):
            return wire.reject(request, RATE_LIMITED)
        if any(f.take_expire_token() for f in faults):
            self.forget(session)
            return wire.reject(request, wire.BEFORE_LOGIN)
        return None

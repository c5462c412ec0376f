"""One client connection to the simulated DTC server: its encoding, logon state and clock."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

from ...simkernel.logins import SimLogin
from ..codec import Message, StreamDecoder, encode
from ..messages import Encoding


@dataclass(eq=False)
class Session:
    """Everything the server knows about one socket.

    ``encoding`` governs both directions; it starts binary and changes once, right after the
    ENCODING_RESPONSE is written (the response itself goes out in the old encoding).
    """

    writer: asyncio.StreamWriter
    decoder: StreamDecoder
    login: SimLogin | None = None
    trade_account: str = ""  # the logon's TradeAccount: the default for orders that name none
    heartbeat_s: float = 0.0
    last_received: float = field(default_factory=time.monotonic)
    closed: bool = False
    muted: bool = False  # fault: what is sent now is lost (the connection is about to reset)
    sent: int = 0

    @property
    def encoding(self) -> Encoding:
        return self.decoder.encoding

    @property
    def logged_on(self) -> bool:
        return self.login is not None

    def owns(self, account: str) -> bool:
        return self.login is not None and account in self.login.accounts

    def send(self, message: Message, encoding: Encoding | None = None) -> None:
        if self.closed or self.muted or self.writer.is_closing():
            return
        self.writer.write(encode(message, encoding or self.encoding))
        self.sent += 1

    def reset(self) -> None:
        """Drop the connection without sending what is still buffered (a reset, not a logoff)."""
        if not self.closed:
            self.closed = True
            self.writer.transport.abort()

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.writer.close()

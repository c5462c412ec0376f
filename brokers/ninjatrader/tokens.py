"""The ATI TCP framing: every token is ASCII text ended by a NUL byte, numbers as text.

Undocumented by NinjaTrader; known from a public reimplementation of its client DLL
(OrcaVenturers/tickr ``nt8/ati_socket.py`` and ``nt8/client.py``, N-tk): a message is a type
token followed by that type's tokens. Client → NinjaTrader: ``0`` COMMAND (one 13-field line),
``1`` DATA (an external quote: type, instrument, price, size, time), ``3`` CONFIRMORDERS
(an int), ``4`` SUBSCRIBE (instrument, 1|0). NinjaTrader → client: ``2`` VALUE (key, value).

Sans-I/O: :class:`TokenDecoder` takes bytes and yields whole messages, so the adapter, the
simulator and the fuzz tests share it. A token that is not ASCII, longer than
:data:`MAX_TOKEN`, or a message type nobody knows is a :class:`FramingError`: after it the
stream cannot be read further (the number of tokens that follow is unknown), so the reader
closes the connection. A known message whose arguments are wrong (CONFIRMORDERS ``x``) is
:class:`BadMessage`: that message is skipped and the stream goes on.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator
from dataclasses import dataclass

MAX_TOKEN = 65536  # an Orders|<acct> list can be long; a NUL must come within this


class MessageType(enum.IntEnum):
    COMMAND = 0
    DATA = 1
    VALUE = 2
    CONFIRMORDERS = 3
    SUBSCRIBE = 4


#: Tokens after the type token, per message type.
ARITY = {
    MessageType.COMMAND: 1,
    MessageType.DATA: 5,
    MessageType.VALUE: 2,
    MessageType.CONFIRMORDERS: 1,
    MessageType.SUBSCRIBE: 2,
}


class FramingError(ValueError):
    """The stream cannot be read further."""


class BadMessage(ValueError):
    """One message was framed right but its arguments are wrong; the stream goes on."""


@dataclass(frozen=True, slots=True)
class Frame:
    type: MessageType
    args: tuple[str, ...]


def token(value: str | int) -> bytes:
    text = str(value)
    data = text.encode("ascii")  # UnicodeEncodeError: a caller bug, never sent half-encoded
    if b"\x00" in data:
        raise ValueError("a token cannot hold NUL")
    return data + b"\x00"


def encode(message_type: MessageType, *args: str | int) -> bytes:
    if len(args) != ARITY[message_type]:
        raise ValueError(f"{message_type.name} takes {ARITY[message_type]} tokens, got {len(args)}")
    return token(int(message_type)) + b"".join(token(a) for a in args)


def command(line: str) -> bytes:
    return encode(MessageType.COMMAND, line)


def value(key: str, text: str) -> bytes:
    return encode(MessageType.VALUE, key, text)


def check(frame: Frame) -> Frame:
    """Argument rules of the typed messages (``BadMessage`` when broken)."""
    if frame.type is MessageType.CONFIRMORDERS and frame.args[0] not in ("0", "1"):
        raise BadMessage(f"CONFIRMORDERS takes 0 or 1, got {frame.args[0]!r}")
    if frame.type is MessageType.SUBSCRIBE and frame.args[1] not in ("0", "1"):
        raise BadMessage(f"SUBSCRIBE takes 1 or 0 after the instrument, got {frame.args[1]!r}")
    return frame


class TokenDecoder:
    """Feed bytes, iterate whole frames; raises :class:`FramingError` once the stream is lost."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._tokens: list[str] = []
        self.broken: str | None = None

    def feed(self, data: bytes) -> None:
        if self.broken is not None:
            raise FramingError(self.broken)
        self._buffer.extend(data)

    def _next_token(self) -> str | None:
        end = self._buffer.find(b"\x00")
        if end < 0:
            if len(self._buffer) > MAX_TOKEN:
                self._fail(f"no NUL within {MAX_TOKEN} bytes")
            return None
        raw = bytes(self._buffer[:end])
        del self._buffer[: end + 1]
        if end > MAX_TOKEN:
            self._fail(f"token of {end} bytes; at most {MAX_TOKEN}")
        try:
            return raw.decode("ascii")
        except UnicodeDecodeError:
            self._fail(f"token is not ASCII: {raw[:40]!r}")
        raise AssertionError("unreachable")

    def _fail(self, why: str) -> None:
        self.broken = why
        raise FramingError(why)

    def frames(self) -> Iterator[Frame | BadMessage]:
        """Every whole message buffered so far; a wrong-argument message yields its BadMessage."""
        while True:
            while not self._tokens or len(self._tokens) < 1 + ARITY.get(self._type(), 0):
                text = self._next_token()
                if text is None:
                    return
                self._tokens.append(text)
                if len(self._tokens) == 1:
                    self._type()  # an unknown type fails at once, before more is buffered
            message_type = self._type()
            args = tuple(self._tokens[1 : 1 + ARITY[message_type]])
            self._tokens.clear()
            try:
                yield check(Frame(message_type, args))
            except BadMessage as exc:
                yield exc

    def _type(self) -> MessageType:
        text = self._tokens[0]
        try:
            return MessageType(int(text)) if text.isdigit() and len(text) < 3 else MessageType(-1)
        except ValueError:
            self._fail(f"unknown message type {text[:20]!r}")
        raise AssertionError("unreachable")

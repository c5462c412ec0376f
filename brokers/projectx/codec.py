"""Sans-I/O SignalR JSON hub protocol: text in, messages out, no sockets.

The same codec serves the adapter's hub client, the simulator's hub server and the tests, so a
framing bug cannot hide by being symmetric in two hand-written copies. Wire facts (ASP.NET Core
SignalR hub protocol, JSON, version 1): every record ends with the 0x1E record separator; the
client opens with ``{"protocol":"json","version":1}`` and the server answers ``{}`` (or
``{"error": ...}``); then messages are JSON objects with a numeric ``type``.

Garbage is one error, never another: a record that is not JSON (or not strict JSON: ``NaN``,
``Infinity``, a float overflow like ``1e999999``, nesting past the recursion limit, an integer
past the 4300-digit limit) or not a hub message raises :class:`ProtocolError` with the record's
raw text truncated. With an ``on_bad`` callback the decoder reports such a record and goes on
with the next one: the separator keeps the framing intact, so one bad record costs only itself.
Message types this codec does not know are skipped, as the SignalR clients do so that later
protocol versions can add types (@microsoft/signalr JsonHubProtocol logs and skips them).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

from ..errors import BrokerError
from ..wire import excerpt, strict_json

RS = "\x1e"


class MessageType(IntEnum):
    INVOCATION = 1
    STREAM_ITEM = 2
    COMPLETION = 3
    STREAM_INVOCATION = 4
    CANCEL_INVOCATION = 5
    PING = 6
    CLOSE = 7


#: The longest record the decoder buffers while waiting for its separator. ProjectX pushes are
#: a few hundred bytes; a peer that sends megabytes without a separator is not speaking the
#: protocol, and buffering it forever would only grow memory.
MAX_RECORD = 4 * 1024 * 1024


class ProtocolError(BrokerError, ValueError):
    """A peer sent something that is not the JSON hub protocol, or an answer that is not JSON.

    ``raw`` is the offending text, truncated; ``code`` is ``BAD_ANSWER``, the code the executor
    reports an unreadable broker answer under. Still a ``ValueError`` for older callers.
    """

    def __init__(self, message: str, raw: str | bytes | None = None) -> None:
        super().__init__(message, code="BAD_ANSWER")
        self.raw = excerpt(raw)


def loads(text: str | bytes, what: str = "JSON") -> Any:
    """Strict JSON: any failure (syntax, NaN, overflow, depth, huge ints, bad UTF-8) is ProtocolError."""
    try:
        return strict_json(text)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise ProtocolError(f"bad {what}: {str(exc)[:200]}", text) from None


def show(value: Any, limit: int = 80) -> str:
    """A short repr for an error message; a structure too deep to repr is named, not shown."""
    try:
        return excerpt(repr(value), limit)
    except RecursionError:
        return f"<{type(value).__name__} nested too deep to show>"


@dataclass(frozen=True, slots=True)
class Message:
    """One hub message; ``raw`` keeps fields this codec does not model (headers, streamIds)."""

    type: MessageType
    target: str | None = None
    arguments: tuple[Any, ...] = ()
    invocation_id: str | None = None
    result: Any = None
    error: str | None = None
    allow_reconnect: bool | None = None
    raw: dict[str, Any] = field(default_factory=dict, compare=False)


# --------------------------------------------------------------------------- encoding


def dumps(obj: Any) -> str:
    """JSON text as the gateway writes it (Decimal prices become numbers)."""
    return json.dumps(obj, separators=(",", ":"), default=_json_default)


def _frame(obj: dict[str, Any]) -> str:
    return dumps(obj) + RS


def _json_default(value: Any) -> Any:
    # Decimal prices go out as JSON numbers, which is what the gateway sends.
    from decimal import Decimal

    if isinstance(value, Decimal):
        return float(value)
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


def handshake_request(protocol: str = "json", version: int = 1) -> str:
    return _frame({"protocol": protocol, "version": version})


def handshake_response(error: str | None = None) -> str:
    return _frame({"error": error} if error else {})


def invocation(target: str, arguments: list[Any] | tuple[Any, ...], invocation_id: str | None = None) -> str:
    obj: dict[str, Any] = {"type": int(MessageType.INVOCATION), "target": target, "arguments": list(arguments)}
    if invocation_id is not None:
        obj["invocationId"] = invocation_id
    return _frame(obj)


def completion(invocation_id: str, result: Any = None, error: str | None = None, *, has_result: bool = False) -> str:
    obj: dict[str, Any] = {"type": int(MessageType.COMPLETION), "invocationId": invocation_id}
    if error is not None:
        obj["error"] = error
    elif has_result or result is not None:
        obj["result"] = result
    return _frame(obj)


def ping() -> str:
    return _frame({"type": int(MessageType.PING)})


def close(error: str | None = None, allow_reconnect: bool | None = None) -> str:
    obj: dict[str, Any] = {"type": int(MessageType.CLOSE)}
    if error is not None:
        obj["error"] = error
    if allow_reconnect is not None:
        obj["allowReconnect"] = allow_reconnect
    return _frame(obj)


def encode(message: Message) -> str:
    """Encode any modelled message (used by round-trip tests and the simulator)."""
    if message.type is MessageType.INVOCATION:
        assert message.target is not None
        return invocation(message.target, message.arguments, message.invocation_id)
    if message.type is MessageType.COMPLETION:
        assert message.invocation_id is not None
        return completion(message.invocation_id, message.result, message.error, has_result="result" in message.raw)
    if message.type is MessageType.PING:
        return ping()
    if message.type is MessageType.CLOSE:
        return close(message.error, message.allow_reconnect)
    return _frame(dict(message.raw) or {"type": int(message.type)})


# --------------------------------------------------------------------------- decoding


def _optional(obj: dict[str, Any], key: str, kind: type, record: str) -> Any:
    value = obj.get(key)
    if value is not None and not isinstance(value, kind):
        raise ProtocolError(f"{key} is not a {kind.__name__}: {show(value)}", record)
    return value


def _to_message(obj: Any, record: str) -> Message | None:
    """One record's message; ``None`` for a message type this codec does not know (skipped)."""
    if not isinstance(obj, dict) or "type" not in obj:
        raise ProtocolError(f"not a hub message: {show(obj)}", record)
    kind_value = obj["type"]
    if isinstance(kind_value, bool) or not isinstance(kind_value, int):
        raise ProtocolError(f"message type is not an integer: {show(kind_value)}", record)
    if kind_value not in MessageType._value2member_map_:
        return None
    kind = MessageType(kind_value)
    arguments = obj.get("arguments")
    if arguments is not None and not isinstance(arguments, list):
        raise ProtocolError(f"arguments is not an array: {show(arguments)}", record)
    target = _optional(obj, "target", str, record)
    if kind in (MessageType.INVOCATION, MessageType.STREAM_INVOCATION) and not target:
        raise ProtocolError("invocation without a target", record)
    error = _optional(obj, "error", str, record)
    allow_reconnect = _optional(obj, "allowReconnect", bool, record)
    invocation_id = _optional(obj, "invocationId", str, record)
    if kind is MessageType.COMPLETION and invocation_id is None:
        raise ProtocolError("completion without an invocationId", record)
    return Message(
        type=kind,
        target=target,
        arguments=tuple(arguments or ()),
        invocation_id=invocation_id,
        result=obj.get("result"),
        error=error,
        allow_reconnect=allow_reconnect,
        raw=obj,
    )


class Decoder:
    """Incremental decoder: feed text as it arrives, get whole messages back.

    WebSocket frames need not align with records (one frame may carry several records or half of
    one), so the decoder buffers up to the next separator. The first record is the handshake:
    ``expect_handshake`` is ``"request"`` on the server, ``"response"`` on the client, or ``None``
    when the handshake is already done.
    """

    def __init__(self, expect_handshake: str | None = None, max_record: int = MAX_RECORD) -> None:
        if expect_handshake not in (None, "request", "response"):
            raise ValueError("expect_handshake must be None, 'request' or 'response'")
        self._buffer = ""
        self._max_record = max_record
        self._skipping = False  # dropping the rest of an overlong record, up to its separator
        self._expect = expect_handshake
        self.handshake: dict[str, Any] | None = None

    def feed(
        self, data: str | bytes, on_bad: Callable[[ProtocolError], None] | None = None, *, whole: bool = False
    ) -> list[Message]:
        """Whole messages of the records completed by ``data``.

        A bad record raises ProtocolError, or, given ``on_bad``, is handed to it and skipped so
        the records after it still come out. The handshake is never skipped: a bad one raises.
        ``whole``: ``data`` is one WebSocket message, which carries complete records only (the
        @microsoft/signalr client refuses one that does not end with the separator as
        incomplete), so a tail without its separator is a bad record, not the start of the next
        one — buffered, it would spoil the good record that follows.
        """
        if isinstance(data, bytes):
            try:
                data = data.decode("utf-8")
            except UnicodeDecodeError as exc:
                error = ProtocolError(f"frame is not UTF-8: {exc}", data)
                if on_bad is None or self._expect is not None:
                    raise error from None
                on_bad(error)
                return []
        if self._skipping:
            if RS not in data:
                return []
            data = data.split(RS, 1)[1]
            self._skipping = False
        self._buffer += data
        messages: list[Message] = []
        if RS not in self._buffer and len(self._buffer) > self._max_record:
            error = ProtocolError(f"record longer than {self._max_record} characters", self._buffer)
            self._buffer, self._skipping = "", True
            if on_bad is None or self._expect is not None:
                raise error
            on_bad(error)
            return []
        while RS in self._buffer:
            record, self._buffer = self._buffer.split(RS, 1)
            try:
                message = self._record(record)
            except ProtocolError as exc:
                if on_bad is None or self._expect is not None:
                    raise
                on_bad(exc)
                continue
            if message is not None:
                messages.append(message)
        if whole and self._buffer and self._expect is None:
            error = ProtocolError("frame does not end with the record separator", self._buffer)
            self._buffer = ""
            if on_bad is None:
                raise error
            on_bad(error)
        return messages

    @property
    def buffered(self) -> int:
        """Characters waiting for their record separator (a peer that never sends one grows it)."""
        return len(self._buffer)

    def _record(self, record: str) -> Message | None:
        obj = loads(record, "JSON record")
        if self._expect is not None:
            if isinstance(obj, dict) and obj.get("type") == MessageType.PING and "protocol" not in obj:
                return None  # signalrcore's keep-alive thread can ping before its handshake lands
            self._check_handshake(obj, record)
            return None
        return _to_message(obj, record)

    def _check_handshake(self, obj: Any, record: str) -> None:
        if not isinstance(obj, dict):
            raise ProtocolError(f"bad handshake: {show(obj)}", record)
        if self._expect == "request":
            if obj.get("protocol") != "json":
                raise ProtocolError(f"handshake expected, got {show(obj, 160)}", record)
            # ASP.NET Core's JsonHubProtocol.IsVersionSupported is ``version <= 1``: signalrcore
            # sends its negotiateVersion (often 0) here, and real gateways accept it.
            version = obj.get("version")
            if isinstance(version, bool) or not isinstance(version, int) or not 0 <= version <= 1:
                raise ProtocolError(f"unsupported protocol version {show(version)}", record)
        elif obj.get("error"):
            raise ProtocolError(f"handshake refused: {show(obj['error'], 200)}", record)
        self.handshake = obj
        self._expect = None

    @property
    def handshake_done(self) -> bool:
        return self._expect is None

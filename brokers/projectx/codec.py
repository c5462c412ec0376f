"""Sans-I/O SignalR JSON hub protocol: text in, messages out, no sockets.

The same codec serves the adapter's hub client, the simulator's hub server and the tests, so a
framing bug cannot hide by being symmetric in two hand-written copies. Wire facts (ASP.NET Core
SignalR hub protocol, JSON, version 1): every record ends with the 0x1E record separator; the
client opens with ``{"protocol":"json","version":1}`` and the server answers ``{}`` (or
``{"error": ...}``); then messages are JSON objects with a numeric ``type``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

RS = "\x1e"


class MessageType(IntEnum):
    INVOCATION = 1
    STREAM_ITEM = 2
    COMPLETION = 3
    STREAM_INVOCATION = 4
    CANCEL_INVOCATION = 5
    PING = 6
    CLOSE = 7


class ProtocolError(ValueError):
    """A peer sent something that is not the JSON hub protocol."""


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


def _to_message(obj: Any) -> Message:
    if not isinstance(obj, dict) or "type" not in obj:
        raise ProtocolError(f"not a hub message: {obj!r}")
    try:
        kind = MessageType(int(obj["type"]))
    except (ValueError, TypeError):
        raise ProtocolError(f"unknown message type {obj.get('type')!r}") from None
    arguments = obj.get("arguments") or ()
    return Message(
        type=kind,
        target=obj.get("target"),
        arguments=tuple(arguments),
        invocation_id=obj.get("invocationId"),
        result=obj.get("result"),
        error=obj.get("error"),
        allow_reconnect=obj.get("allowReconnect"),
        raw=obj,
    )


class Decoder:
    """Incremental decoder: feed text as it arrives, get whole messages back.

    WebSocket frames need not align with records (one frame may carry several records or half of
    one), so the decoder buffers up to the next separator. The first record is the handshake:
    ``expect_handshake`` is ``"request"`` on the server, ``"response"`` on the client, or ``None``
    when the handshake is already done.
    """

    def __init__(self, expect_handshake: str | None = None) -> None:
        if expect_handshake not in (None, "request", "response"):
            raise ValueError("expect_handshake must be None, 'request' or 'response'")
        self._buffer = ""
        self._expect = expect_handshake
        self.handshake: dict[str, Any] | None = None

    def feed(self, data: str | bytes) -> list[Message]:
        if isinstance(data, bytes):
            data = data.decode("utf-8")
        self._buffer += data
        messages: list[Message] = []
        while RS in self._buffer:
            record, self._buffer = self._buffer.split(RS, 1)
            try:
                obj = json.loads(record)
            except json.JSONDecodeError as exc:
                raise ProtocolError(f"bad JSON record: {record[:80]!r}") from exc
            if self._expect is not None:
                if isinstance(obj, dict) and obj.get("type") == MessageType.PING and "protocol" not in obj:
                    continue  # signalrcore's keep-alive thread can ping before its handshake lands
                self._check_handshake(obj)
                continue
            messages.append(_to_message(obj))
        return messages

    def _check_handshake(self, obj: Any) -> None:
        if not isinstance(obj, dict):
            raise ProtocolError(f"bad handshake: {obj!r}")
        if self._expect == "request":
            if obj.get("protocol") != "json":
                raise ProtocolError(f"handshake expected, got {str(obj)[:160]}")
            # ASP.NET Core's JsonHubProtocol.IsVersionSupported is ``version <= 1``: signalrcore
            # sends its negotiateVersion (often 0) here, and real gateways accept it.
            version = obj.get("version")
            if not isinstance(version, int) or not 0 <= version <= 1:
                raise ProtocolError(f"unsupported protocol version {version!r}")
        elif obj.get("error"):
            raise ProtocolError(f"handshake refused: {obj['error']}")
        self.handshake = obj
        self._expect = None

    @property
    def handshake_done(self) -> bool:
        return self._expect is None

"""Sans-I/O codec of Tradovate's WebSocket protocol (SockJS-style frames).

Bytes in, messages out, no sockets: the adapter, the simulator and the tests share it, so a
framing bug shows up in all three at once instead of in a test-only copy.

Server → client text frames: ``o`` (open), ``h`` (heartbeat), ``a[...]`` (a JSON array of
replies ``{"i","s","d"}`` and pushes ``{"e","d"}``) and ``c[code,"reason"]`` (close).
Client → server: ``endpoint\\nid\\nquery\\nbody`` requests and ``[]`` heartbeats. The body is
everything after the third newline, so a pretty-printed JSON body (one public client sends
``JSON.stringify(body, null, 2)``) survives intact.

Garbage is one error, never another: every decode entry point (server frames, client frames,
REST answer bodies) either returns a value or raises :class:`CodecError` carrying the raw text
(truncated to :data:`RAW_LIMIT`), so a caller can report the bad answer and read on. JSON is
read strictly: ``NaN``/``Infinity`` and numbers that overflow a float (``1e999999``) are
refused (Tradovate sends neither, and a price of ``inf`` must never reach an order), as are
nesting deeper than Python's recursion and integers longer than its 4300-digit limit.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from ..errors import BrokerError
from ..wire import excerpt, strict_json

HEARTBEAT = "[]"
OPEN = "o"
SERVER_HEARTBEAT = "h"


class CodecError(BrokerError, ValueError):
    """A frame or answer that is not valid Tradovate framing or JSON.

    ``raw`` is the offending text, truncated; ``code`` is ``BAD_ANSWER``, the code the executor
    reports an unreadable broker answer under. A ``ValueError`` too, so older callers that
    caught one still do.
    """

    def __init__(self, message: str, raw: str | bytes | None = None) -> None:
        super().__init__(message, code="BAD_ANSWER")
        self.raw = excerpt(raw)


def loads(text: str | bytes, what: str = "JSON", raw: str | None = None) -> Any:
    """Strict JSON: any failure (syntax, NaN, overflow, depth, huge ints, bad UTF-8) is CodecError
    carrying ``raw`` (the whole frame the JSON came in), or else ``text``."""
    try:
        return strict_json(text)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise CodecError(f"bad {what}: {str(exc)[:200]}", text if raw is None else raw) from None


def decode_answer(body: str | bytes) -> Any:
    """A REST answer body → its JSON value (an empty body is ``None``), or CodecError."""
    if not body.strip():
        return None
    return loads(body, "REST answer")


# --------------------------------------------------------------------------- server frames


@dataclass(frozen=True, slots=True)
class OpenFrame:
    pass


@dataclass(frozen=True, slots=True)
class HeartbeatFrame:
    pass


@dataclass(frozen=True, slots=True)
class CloseFrame:
    code: int
    reason: str


@dataclass(frozen=True, slots=True)
class Response:
    """Reply to request ``request_id``; ``status`` is an HTTP-like code (200, 401, 429...)."""

    request_id: int
    status: int
    data: Any = None


@dataclass(frozen=True, slots=True)
class Push:
    """Unsolicited server event, e.g. ``e="props"`` with an entity change in ``data``."""

    event: str
    data: Any = None


@dataclass(frozen=True, slots=True)
class DataFrame:
    """An ``a[...]`` frame. ``bad`` holds one CodecError per item that was not a reply or a push:
    one unreadable item must not take the good ones of the same frame down with it."""

    items: tuple[Response | Push, ...] = field(default_factory=tuple)
    bad: tuple[CodecError, ...] = field(default=(), compare=False)


ServerFrame = OpenFrame | HeartbeatFrame | CloseFrame | DataFrame


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def encode_server_frame(frame: ServerFrame) -> str:
    if isinstance(frame, OpenFrame):
        return OPEN
    if isinstance(frame, HeartbeatFrame):
        return SERVER_HEARTBEAT
    if isinstance(frame, CloseFrame):
        return "c" + _dumps([frame.code, frame.reason])
    items: list[dict[str, Any]] = []
    for item in frame.items:
        if isinstance(item, Response):
            reply: dict[str, Any] = {"s": item.status, "i": item.request_id}
            if item.data is not None:
                reply["d"] = item.data
            items.append(reply)
        else:
            items.append({"e": item.event, "d": item.data})
    return "a" + _dumps(items)


def show(value: Any, limit: int = 80) -> str:
    """A short repr for an error message; a structure too deep to repr is named, not shown."""
    try:
        return excerpt(repr(value), limit)
    except RecursionError:
        return f"<{type(value).__name__} nested too deep to show>"


_INT_TEXT = re.compile(r"-?[0-9]{1,18}")


def _int(value: Any) -> int | None:
    """An integer field as sent (a number or a numeric string), or None when it is not one."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and _INT_TEXT.fullmatch(value.strip()):
        return int(value)
    return None


def _item(raw: Any, text: str) -> Response | Push:
    if not isinstance(raw, dict):
        raise CodecError(f"array item is not an object: {show(raw)}", text)
    if "e" in raw:
        if not isinstance(raw["e"], str):
            raise CodecError(f"push event name is not a string: {show(raw['e'])}", text)
        return Push(event=raw["e"], data=raw.get("d"))
    if "i" in raw and "s" in raw:
        status = _int(raw["s"])
        if status is None:
            raise CodecError(f"reply status is not an integer: {show(raw['s'])}", text)
        request_id = _int(raw["i"])  # the rate-limit doc shows a string id; keep the frame usable
        return Response(request_id=-1 if request_id is None else request_id, status=status, data=raw.get("d"))
    raise CodecError(f"array item is neither a reply nor a push: {show(raw)}", text)


def decode_server_frame(text: str) -> ServerFrame:
    """One server frame; anything else (including any frame type but o/h/a/c) is CodecError."""
    if not text:
        raise CodecError("empty frame", text)
    kind, payload = text[0], text[1:]
    if kind in ("o", "h"):
        if payload.strip():
            raise CodecError(f"{kind!r} frame with a payload", text)
        return OpenFrame() if kind == "o" else HeartbeatFrame()
    if kind not in ("a", "c"):
        raise CodecError(f"unknown frame type {excerpt(kind, 8)!r}", text)
    value = loads(payload, f"JSON in {kind!r} frame", text) if payload else []
    if kind == "c":
        if not isinstance(value, list):
            return CloseFrame(code=0, reason=value if isinstance(value, str) else show(value, 200))
        code, reason = (value + [0, ""])[:2]
        number = _int(code)
        if number is None:
            raise CodecError(f"close code is not an integer: {show(code)}", text)
        return CloseFrame(code=number, reason=reason if isinstance(reason, str) else show(reason, 200))
    if not isinstance(value, list):
        raise CodecError("a-frame payload is not an array", text)
    items: list[Response | Push] = []
    bad: list[CodecError] = []
    for raw in value:
        try:
            items.append(_item(raw, text))
        except CodecError as exc:
            bad.append(exc)
    return DataFrame(items=tuple(items), bad=tuple(bad))


# --------------------------------------------------------------------------- client frames


@dataclass(frozen=True, slots=True)
class Request:
    """``endpoint\\nid\\nquery\\nbody``; ``body`` is the raw text (JSON or a bare token)."""

    endpoint: str
    request_id: int
    query: str = ""
    body: str = ""

    def json_body(self) -> Any:
        """The body as JSON; ``None`` when empty. A bare token is returned as the string."""
        if not self.body.strip():
            return None
        try:
            return loads(self.body)
        except CodecError:
            return self.body.strip()

    def query_params(self) -> dict[str, str]:
        from urllib.parse import parse_qsl

        return dict(parse_qsl(self.query, keep_blank_values=True))


@dataclass(frozen=True, slots=True)
class ClientHeartbeat:
    pass


ClientFrame = Request | ClientHeartbeat


def encode_request(endpoint: str, request_id: int, query: str = "", body: Any = None) -> str:
    """A request frame; ``body`` may be a dict (JSON-encoded), a raw string, or ``None``."""
    if body is None:
        text = ""
    elif isinstance(body, str):
        text = body
    else:
        text = _dumps(body)
    return f"{endpoint}\n{request_id}\n{query}\n{text}"


def encode_client_frame(frame: ClientFrame) -> str:
    if isinstance(frame, ClientHeartbeat):
        return HEARTBEAT
    return encode_request(frame.endpoint, frame.request_id, frame.query, frame.body)


def decode_client_frame(text: str) -> ClientFrame:
    if text.strip() == HEARTBEAT:
        return ClientHeartbeat()
    parts = text.split("\n", 3)
    if len(parts) < 2:
        raise CodecError(f"request needs at least endpoint and id lines: {text[:40]!r}", text)
    endpoint, raw_id = parts[0].strip(), parts[1].strip()
    request_id = _int(raw_id)
    if request_id is None:
        raise CodecError(f"request id is not an integer: {excerpt(raw_id, 40)!r}", text)
    query = parts[2] if len(parts) > 2 else ""
    body = parts[3] if len(parts) > 3 else ""
    return Request(endpoint=endpoint, request_id=request_id, query=query.strip(), body=body)


def token_from_body(body: str) -> str:
    """The token of an ``authorize`` request: bare text, or a JSON string (one client quotes it)."""
    text = body.strip()
    if text.startswith('"'):
        try:
            value = loads(text)
        except CodecError:
            return text.strip('"')
        return str(value)
    return text

"""Sans-I/O codec of Tradovate's WebSocket protocol (SockJS-style frames).

Bytes in, messages out, no sockets: the adapter, the simulator and the tests share it, so a
framing bug shows up in all three at once instead of in a test-only copy.

Server → client text frames: ``o`` (open), ``h`` (heartbeat), ``a[...]`` (a JSON array of
replies ``{"i","s","d"}`` and pushes ``{"e","d"}``) and ``c[code,"reason"]`` (close).
Client → server: ``endpoint\\nid\\nquery\\nbody`` requests and ``[]`` heartbeats. The body is
everything after the third newline, so a pretty-printed JSON body (one public client sends
``JSON.stringify(body, null, 2)``) survives intact.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

HEARTBEAT = "[]"
OPEN = "o"
SERVER_HEARTBEAT = "h"


class CodecError(ValueError):
    """A frame that is not valid Tradovate framing."""


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
    items: tuple[Response | Push, ...] = field(default_factory=tuple)


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


def _item(raw: Any) -> Response | Push:
    if not isinstance(raw, dict):
        raise CodecError(f"array item is not an object: {raw!r}")
    if "e" in raw:
        return Push(event=str(raw["e"]), data=raw.get("d"))
    if "i" in raw and "s" in raw:
        try:
            request_id = int(raw["i"])
        except (TypeError, ValueError):
            request_id = -1  # the rate-limit doc shows a string id; keep the frame usable
        return Response(request_id=request_id, status=int(raw["s"]), data=raw.get("d"))
    raise CodecError(f"array item is neither a reply nor a push: {raw!r}")


def decode_server_frame(text: str) -> ServerFrame:
    if not text:
        raise CodecError("empty frame")
    kind, payload = text[0], text[1:]
    if kind == "o":
        return OpenFrame()
    if kind == "h":
        return HeartbeatFrame()
    try:
        value = json.loads(payload) if payload else []
    except json.JSONDecodeError as exc:
        raise CodecError(f"bad JSON in {kind!r} frame: {exc}") from None
    if kind == "c":
        code, reason = (value + [0, ""])[:2] if isinstance(value, list) else (0, str(value))
        return CloseFrame(code=int(code), reason=str(reason))
    if kind == "a":
        if not isinstance(value, list):
            raise CodecError("a-frame payload is not an array")
        return DataFrame(items=tuple(_item(raw) for raw in value))
    raise CodecError(f"unknown frame type {kind!r}")


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
            return json.loads(self.body)
        except json.JSONDecodeError:
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
        raise CodecError(f"request needs at least endpoint and id lines: {text[:40]!r}")
    endpoint, raw_id = parts[0].strip(), parts[1].strip()
    try:
        request_id = int(raw_id)
    except ValueError:
        raise CodecError(f"request id is not an integer: {raw_id!r}") from None
    query = parts[2] if len(parts) > 2 else ""
    body = parts[3] if len(parts) > 3 else ""
    return Request(endpoint=endpoint, request_id=request_id, query=query.strip(), body=body)


def token_from_body(body: str) -> str:
    """The token of an ``authorize`` request: bare text, or a JSON string (one client quotes it)."""
    text = body.strip()
    if text.startswith('"'):
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            return text.strip('"')
        return str(value)
    return text

"""Sans-I/O DTC codec: messages to bytes and back, in binary and JSON encodings.

Shared by the simulator, the test client and the adapter. Nothing here touches a
socket: :class:`StreamDecoder` takes bytes as they arrive and hands out whole messages, or a
:class:`DecodeError` value for anything malformed, so a hostile or buggy peer can never crash
the reader. The decoder can switch encoding between two messages, which the DTC encoding
handshake needs (ENCODING_RESPONSE arrives in binary, everything after it in the granted one).
"""

from __future__ import annotations

import json
import math
import struct
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

from .messages import MESSAGES, Encoding, Field, MessageSpec, MsgType, Value, spec_for

__all__ = [
    "RAW_LIMIT",
    "DecodeError",
    "EncodeError",
    "Message",
    "StreamDecoder",
    "decode_binary",
    "decode_json",
    "encode",
    "encode_binary",
    "encode_json",
    "make",
]

#: How many bytes of an offending frame a :class:`DecodeError` keeps (for logs, not for replay).
RAW_LIMIT = 64
#: Longest JSON message accepted before a NUL arrives. DTC's binary Size is a uint16, and public
#: clients size their buffers to 65,536 as the "maximum DTC message size".
MAX_JSON_BYTES = 65536


class EncodeError(ValueError):
    """Our own code tried to send a message the wire cannot carry (a bug, not a peer's fault)."""


@dataclass(frozen=True, slots=True)
class Message:
    """One DTC message: its spec and every field's value (defaults filled in)."""

    spec: MessageSpec
    values: Mapping[str, Value] = field(default_factory=dict)

    @property
    def type(self) -> MsgType:
        return self.spec.type

    def __getitem__(self, name: str) -> Value:
        return self.values[name]

    def as_int(self, name: str) -> int:
        value = self.values[name]
        if not isinstance(value, int):
            raise TypeError(f"{self.spec.name}.{name} is not an integer")
        return value

    def as_float(self, name: str) -> float:
        value = self.values[name]
        if isinstance(value, str):
            raise TypeError(f"{self.spec.name}.{name} is not a number")
        return float(value)

    def as_text(self, name: str) -> str:
        value = self.values[name]
        if not isinstance(value, str):
            raise TypeError(f"{self.spec.name}.{name} is not text")
        return value


@dataclass(frozen=True, slots=True)
class DecodeError:
    """A frame (or a whole stream) that could not be read.

    ``fatal`` means framing is lost (binary Size below the header, a frame over the limit, a JSON
    message with no NUL in sight): the reader cannot find the next message and must drop the
    connection. A non-fatal error skipped exactly one frame.
    """

    kind: str  # unknown_type | bad_size | bad_frame | bad_json | bad_field | too_large
    detail: str
    raw: bytes
    fatal: bool = False


def _check(spec: MessageSpec, f: Field, value: object) -> Value:
    """Validate one field value against its kind; raises ValueError/TypeError with the reason."""
    if f.kind == "s":
        if not isinstance(value, str):
            raise TypeError(f"{spec.name}.{f.name} must be text")
        return value
    if f.kind == "f64":
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise TypeError(f"{spec.name}.{f.name} must be a number")
        return float(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{spec.name}.{f.name} must be an integer")
    bounds = f.int_range()
    if bounds is not None and not bounds[0] <= value <= bounds[1]:
        raise ValueError(f"{spec.name}.{f.name}={value} is out of range for {f.kind}")
    return value


def make(msg_type: MsgType, **values: Value) -> Message:
    """Build a message with the header's defaults for every field not given."""
    spec = MESSAGES[msg_type]
    out: dict[str, Value] = {}
    for f in spec.fields:
        try:
            out[f.name] = _check(spec, f, values.pop(f.name)) if f.name in values else f.zero
        except (TypeError, ValueError) as exc:
            raise EncodeError(str(exc)) from None
    if values:
        raise EncodeError(f"{spec.name} has no field(s) {sorted(values)}")
    return Message(spec, out)


# -- binary ---------------------------------------------------------------------------------
def encode_binary(message: Message) -> bytes:
    spec = message.spec
    args: list[object] = [spec.size, int(spec.type)]
    for f in spec.fields:
        value = message.values[f.name]
        if f.kind == "s":
            data = str(value).encode("utf-8")
            if len(data) >= f.width:  # the header's setters keep room for the NUL
                raise EncodeError(f"{spec.name}.{f.name} is {len(data)} bytes; at most {f.width - 1} fit")
            args.append(data)
        else:
            args.append(value)
    try:
        return struct.pack(spec.fmt, *args)
    except struct.error as exc:
        raise EncodeError(f"{spec.name}: {exc}") from None


def decode_binary(frame: bytes, *, exact_size: bool = True) -> Message | DecodeError:
    """Read one complete binary frame (``Size`` bytes, header included).

    With ``exact_size`` (the default) the size must be the struct's: a size we do not expect
    means a protocol version we have not checked, so it is reported. Without it the header's own
    rule applies (``CopyFrom``): copy ``min(sizeof, Size)`` bytes over a default struct, so a
    shorter, older message keeps later fields at their defaults and a longer one is truncated.
    """
    raw = bytes(frame[:RAW_LIMIT])
    if len(frame) < 4:
        return DecodeError("bad_frame", f"{len(frame)} bytes cannot hold a header", raw, fatal=True)
    size, msg_type = struct.unpack_from("<HH", frame)
    spec = spec_for(msg_type)
    if spec is None:
        return DecodeError("unknown_type", f"message type {msg_type} is not supported", raw)
    if size != len(frame) or (exact_size and size != spec.size):
        return DecodeError("bad_size", f"{spec.name} has Size {size}; the struct is {spec.size} bytes", raw)
    if size != spec.size:
        defaults = encode_binary(make(spec.type))
        frame = defaults[:4] + frame[4 : spec.size] + defaults[size:]
    items = struct.unpack(spec.fmt, frame)[2:]
    values: dict[str, Value] = {}
    for f, item in zip(spec.fields, items, strict=True):
        if f.kind == "s":
            assert isinstance(item, bytes)
            values[f.name] = item.split(b"\0", 1)[0].decode("utf-8", errors="replace")
        else:
            assert isinstance(item, int | float)
            values[f.name] = item
    return Message(spec, values)


# -- JSON -------------------------------------------------------------------------------------
def _json_number(value: float) -> float | None:
    return value if math.isfinite(value) else None


def encode_json(message: Message) -> bytes:
    """One JSON object with ``"Type"`` first and the struct's field names, then a NUL."""
    body: dict[str, object] = {"Type": int(message.type)}
    for f in message.spec.fields:
        value = message.values[f.name]
        body[f.name] = _json_number(value) if isinstance(value, float) else value
    return json.dumps(body, separators=(",", ":"), allow_nan=False).encode("utf-8") + b"\0"


def decode_json(payload: bytes) -> Message | DecodeError:
    """Read one JSON message (without its NUL). Missing fields take the header's defaults."""
    raw = bytes(payload[:RAW_LIMIT])
    try:
        body = json.loads(payload.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        return DecodeError("bad_json", f"not JSON: {exc}", raw)
    if not isinstance(body, dict):
        return DecodeError("bad_json", "a DTC JSON message must be an object", raw)
    msg_type = body.get("Type")
    if isinstance(msg_type, bool) or not isinstance(msg_type, int):
        return DecodeError("bad_json", "no integer Type field", raw)
    spec = spec_for(msg_type)
    if spec is None:
        return DecodeError("unknown_type", f"message type {msg_type} is not supported", raw)
    values: dict[str, Value] = {}
    for f in spec.fields:
        if f.name not in body or body[f.name] is None:
            values[f.name] = f.zero
            continue
        try:
            values[f.name] = _check(spec, f, body[f.name])
        except (TypeError, ValueError) as exc:
            return DecodeError("bad_field", str(exc), raw)
    return Message(spec, values)


def encode(message: Message, encoding: Encoding) -> bytes:
    if encoding is Encoding.BINARY:
        return encode_binary(message)
    if encoding is Encoding.JSON:
        return encode_json(message)
    raise EncodeError(f"encoding {encoding.name} is not implemented")


# -- stream -----------------------------------------------------------------------------------
class StreamDecoder:
    """Split a byte stream into messages; the encoding may change between two messages.

    ``max_size`` caps a binary frame (the largest struct here is 688 bytes; anything over the cap
    is taken as garbage rather than waited for); ``exact_size`` is as in :func:`decode_binary`.
    After a fatal error the buffer is dropped and the decoder yields nothing more: the connection
    must be closed.
    """

    def __init__(self, encoding: Encoding = Encoding.BINARY, *, max_size: int = 4096, exact_size: bool = True) -> None:
        if encoding not in (Encoding.BINARY, Encoding.JSON):
            raise ValueError(f"encoding {encoding.name} is not implemented")
        self.encoding: Encoding = encoding
        self.max_size = max_size
        self.exact_size = exact_size
        self.broken = False
        self._buffer = bytearray()

    def feed(self, data: bytes) -> None:
        if not self.broken:
            self._buffer += data

    @property
    def pending(self) -> int:
        return len(self._buffer)

    def next(self) -> Message | DecodeError | None:
        """The next whole message, an error for one bad frame, or ``None`` until more bytes come."""
        if self.broken:
            return None
        if self.encoding is Encoding.BINARY:
            return self._next_binary()
        return self._next_json()

    def __iter__(self) -> Iterator[Message | DecodeError]:
        while (item := self.next()) is not None:
            yield item

    def _fatal(self, kind: str, detail: str) -> DecodeError:
        error = DecodeError(kind, detail, bytes(self._buffer[:RAW_LIMIT]), fatal=True)
        self._buffer.clear()
        self.broken = True
        return error

    def _next_binary(self) -> Message | DecodeError | None:
        if len(self._buffer) < 4:
            return None
        size = int.from_bytes(self._buffer[:2], "little")
        if size < 4:
            return self._fatal("bad_frame", f"Size {size} is smaller than the 4-byte header")
        if size > self.max_size:
            return self._fatal("too_large", f"Size {size} is over the {self.max_size}-byte limit")
        if len(self._buffer) < size:
            return None
        frame = bytes(self._buffer[:size])
        del self._buffer[:size]
        return decode_binary(frame, exact_size=self.exact_size)

    def _next_json(self) -> Message | DecodeError | None:
        end = self._buffer.find(b"\0", 0, MAX_JSON_BYTES + 1)
        if end < 0:
            if len(self._buffer) > MAX_JSON_BYTES:
                return self._fatal("too_large", f"no NUL within {MAX_JSON_BYTES} bytes")
            return None
        payload = bytes(self._buffer[:end])
        del self._buffer[: end + 1]
        return decode_json(payload)

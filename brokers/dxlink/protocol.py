"""dxLink message shapes (dxFeed/dxLink asyncapi.yml 1.0.2), validated strictly with msgspec.

Every message is one JSON object ``{"type": ..., "channel": <int>, ...}``; ``type`` selects the
shape. Anything else — not JSON, not an object, an unknown ``type``, a wrong field type — becomes
one :class:`ProtocolError` naming what was wrong, so neither side of the wire ever crashes on a
peer's bad frame (the spec answers such frames with ``ERROR INVALID_MESSAGE``).
"""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Any, Final, Literal

import msgspec

PROTOCOL_VERSION: Final = "0.1"
FEED: Final = "FEED"
CONNECTION_CHANNEL: Final = 0

DataFormat = Literal["FULL", "COMPACT"]
AuthStateName = Literal["AUTHORIZED", "UNAUTHORIZED"]
ErrorKind = Literal["UNKNOWN", "UNSUPPORTED_PROTOCOL", "TIMEOUT", "UNAUTHORIZED", "INVALID_MESSAGE", "BAD_ACTION"]
# A JSON double that may be missing: the spec's JsonDouble allows these three strings.
NON_FINITE: Final = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


class ProtocolError(ValueError):
    """A frame that is not a valid dxLink message; ``kind`` is the ERROR type to answer with."""

    def __init__(self, message: str, kind: ErrorKind = "INVALID_MESSAGE") -> None:
        super().__init__(message)
        self.kind: ErrorKind = kind


class _Message(msgspec.Struct, tag_field="type", kw_only=True, omit_defaults=True):
    channel: int


class Setup(_Message, tag="SETUP"):
    version: str
    keepaliveTimeout: int | float | None = None  # noqa: N815 - the wire's field names
    acceptKeepaliveTimeout: int | float | None = None  # noqa: N815


class Auth(_Message, tag="AUTH"):
    token: str


class AuthState(_Message, tag="AUTH_STATE"):
    state: AuthStateName
    userId: str | None = None  # noqa: N815


class Keepalive(_Message, tag="KEEPALIVE"):
    pass


class Error(_Message, tag="ERROR"):
    error: ErrorKind
    message: str


class ChannelRequest(_Message, tag="CHANNEL_REQUEST"):
    service: str
    parameters: dict[str, Any] = {}


class ChannelOpened(_Message, tag="CHANNEL_OPENED"):
    service: str
    parameters: dict[str, Any] = {}


class ChannelCancel(_Message, tag="CHANNEL_CANCEL"):
    pass


class ChannelClosed(_Message, tag="CHANNEL_CLOSED"):
    pass


class FeedSetup(_Message, tag="FEED_SETUP"):
    acceptAggregationPeriod: int | float | None = None  # noqa: N815
    acceptDataFormat: DataFormat | None = None  # noqa: N815
    acceptEventFields: dict[str, list[str]] | None = None  # noqa: N815


class FeedConfig(_Message, tag="FEED_CONFIG"):
    dataFormat: DataFormat  # noqa: N815
    aggregationPeriod: int | float = 0  # noqa: N815
    eventFields: dict[str, list[str]] | None = None  # noqa: N815


class Subscription(msgspec.Struct, kw_only=True, omit_defaults=True, forbid_unknown_fields=True):
    """One FEED_SUBSCRIPTION entry: plain, time-series (``fromTime``) or indexed (``source``)."""

    type: str
    symbol: str
    fromTime: int | None = None  # noqa: N815
    source: str | None = None

    @property
    def key(self) -> tuple[str, str]:
        return self.type, self.symbol


class FeedSubscription(_Message, tag="FEED_SUBSCRIPTION"):
    add: list[Subscription] | None = None
    remove: list[Subscription] | None = None
    reset: bool | None = None


class FeedData(_Message, tag="FEED_DATA"):
    data: list[Any]


Message = (
    Setup
    | Auth
    | AuthState
    | Keepalive
    | Error
    | ChannelRequest
    | ChannelOpened
    | ChannelCancel
    | ChannelClosed
    | FeedSetup
    | FeedConfig
    | FeedSubscription
    | FeedData
)
TYPES: Final = frozenset(cls.__struct_config__.tag for cls in Message.__args__)

_decoder: msgspec.json.Decoder[Message] = msgspec.json.Decoder(Message)
_envelope = msgspec.json.Decoder(dict[str, Any])
_encoder = msgspec.json.Encoder()


def decode(raw: str | bytes) -> Message:
    """One frame → its message, or :class:`ProtocolError` saying why not (never another error)."""
    try:
        return _decoder.decode(raw)
    except msgspec.ValidationError as exc:
        raise ProtocolError(_explain(raw, str(exc))) from None
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:
        raise ProtocolError(f"not JSON: {exc}") from None


def _explain(raw: str | bytes, reason: str) -> str:
    """Say "unknown message type X" rather than msgspec's tag wording, which names no type."""
    try:
        envelope = _envelope.decode(raw)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return f"not a JSON object: {reason}"
    kind = envelope.get("type")
    if not isinstance(kind, str):
        return "message has no string `type`"
    if kind not in TYPES:
        return f"unknown message type {kind[:64]!r}"
    return f"invalid {kind}: {reason}"


def encode(message: Message) -> str:
    """A message as the text frame the wire carries (the JS client parses text only)."""
    return _encoder.encode(message).decode()


# --------------------------------------------------------------------------- FEED_DATA bodies


def full_events(data: list[Any]) -> list[dict[str, Any]]:
    """FULL: a list of event objects, each with ``eventType`` and ``eventSymbol``."""
    events: list[dict[str, Any]] = []
    for item in data:
        if not isinstance(item, dict) or not isinstance(item.get("eventType"), str):
            raise ProtocolError("FULL FEED_DATA item is not an event object with an eventType")
        events.append(item)
    return events


def compact_events(data: list[Any], event_fields: dict[str, list[str]]) -> list[dict[str, Any]]:
    """COMPACT: ``[type, [values…], type, [values…], …]``, values in FEED_CONFIG's field order.

    Every pair is decoded (the spec allows several types per message; JS client 0.3.0 reads
    only the first, which is why the simulator sends one type per message).
    """
    if len(data) % 2:
        raise ProtocolError("COMPACT FEED_DATA must alternate event type and values")
    events: list[dict[str, Any]] = []
    for index in range(0, len(data), 2):
        kind, values = data[index], data[index + 1]
        if not isinstance(kind, str) or not isinstance(values, list):
            raise ProtocolError("COMPACT FEED_DATA pair is not (type, [values])")
        fields = event_fields.get(kind)
        if not fields:
            raise ProtocolError(f"no eventFields for {kind[:64]!r} in FEED_CONFIG")
        if len(values) % len(fields):
            raise ProtocolError(f"{kind[:64]} values do not fill whole events of {len(fields)} fields")
        for start in range(0, len(values), len(fields)):
            event = dict(zip(fields, values[start : start + len(fields)], strict=True))
            event["eventType"] = kind
            events.append(event)
    return events


def to_decimal(value: Any) -> Decimal | None:
    """A JsonDouble as a Decimal; ``None`` for NaN/±Infinity (a missing price), never a float."""
    if isinstance(value, str):
        if value in NON_FINITE:
            return None
        raise ProtocolError(f"not a number: {value[:32]!r}")
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ProtocolError(f"not a number: {value!r}")
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return Decimal(repr(value)) if isinstance(value, float) else Decimal(value)

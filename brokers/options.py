"""A platform's settings (a session's ``options``): one schema per platform, checked at every door.

Why: the settings reach an adapter through three doors (the YAML file, the dashboard's account
form and API, the ``copy.controls`` account records), and each door checked only their shape
(names, scalars, bounds of 1e15). The adapter then read them with ``float(options.get(...))``
when it connected, so a misspelt setting (``heartbeat_sec``) was silently ignored, ``live:
"false"`` read as true, and ``heartbeat_s: 0`` or ``reconnect_max_s: 1e9`` passed every door and
spun or stalled a session minutes later, as a DOWN account with no field named.

Now each platform's settings are a msgspec ``Struct`` (``brokers/<platform>/options.py``: no
unknown names, finite numbers within bounds that say why) that every door checks, naming the
field, and that the adapter's config reads: the door and the adapter cannot disagree. The
conversion is lax (:func:`~copytrader.common.schema_codec.convert`): the dashboard's secret form
sends text, so ``"8"`` is 8 and ``"false"`` is false, and ``"no"`` is refused.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from decimal import Decimal
from typing import Annotated, Any, TypeVar

import msgspec

from ..common.bounds import MAX_ACCOUNT_SIZE, MAX_OPTION_TEXT_LEN, MAX_URL_LEN, BoundError, check_decimal
from ..common.schema_codec import SchemaError, convert
from .warm_http import MAX_WARM_EVERY_S

T = TypeVar("T", bound=msgspec.Struct)

#: Platform → its settings' schema, imported lazily like the adapters (``registry.py``).
OPTION_SCHEMAS: dict[str, str] = {
    "paper": "copytrader.brokers.paper.options:PaperOptions",
    "tradovate": "copytrader.brokers.tradovate.options:TradovateOptions",
    "projectx": "copytrader.brokers.projectx.options:ProjectXOptions",
    "rithmic": "copytrader.brokers.rithmic.options:RithmicOptions",
    "dtc": "copytrader.brokers.dtc.options:DtcOptions",
    "dxlink": "copytrader.brokers.dxlink.options:DxLinkOptions",
    "ninjatrader": "copytrader.brokers.ninjatrader.options:NinjaTraderOptions",
    "fix": "copytrader.brokers.fix.options:FixOptions",
}

# Bounded kinds of setting shared by the platforms; each bound says what it protects.
#: How long one request, logon or handshake may wait: 0 would fail every call, an hour hides a
#: dead connection.
Timeout = Annotated[float, msgspec.Meta(ge=0.05, le=600.0)]
#: A reconnect or retry delay: 0 would spin against a server that is down; over an hour is a
#: session nobody will wait for.
RetryDelay = Annotated[float, msgspec.Meta(ge=0.01, le=3600.0)]
#: How many times a step is tried: at least once; a hundred tries is already a storm.
Attempts = Annotated[int, msgspec.Meta(ge=1, le=100)]
#: Free text a platform echoes (app names, versions, ids of a device or a server).
Text = Annotated[str, msgspec.Meta(max_length=MAX_OPTION_TEXT_LEN)]
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=128)]
#: Another address of the platform's (a WebSocket or hub URL beside the REST endpoint).
Url = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_URL_LEN, pattern=r"^(https?|wss?)://[^\s]+$")]
#: ``warm_every_s`` (``warm_http.py``): 0 turns warming off; over an hour keeps nothing warm.
WarmEvery = Annotated[float, msgspec.Meta(ge=0.0, le=MAX_WARM_EVERY_S)]
#: A request budget ``[requests, seconds]``: at least one request, in a window of up to a day.
RateLimit = tuple[Annotated[int, msgspec.Meta(ge=1, le=1_000_000)], Annotated[float, msgspec.Meta(gt=0.0, le=86400.0)]]


class PlatformOptions(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    """Base of every platform's settings: unknown names are refused, every field has a default."""


def check_balance(value: Decimal | None, what: str = "balance") -> None:
    """A simulated or reported account balance: finite, positive, at most MAX_ACCOUNT_SIZE."""
    try:
        check_decimal(value, maximum=MAX_ACCOUNT_SIZE, what=what)
    except BoundError as exc:
        raise ValueError(f"{what}: {exc}") from None


def ordered(low: float, high: float, low_name: str, high_name: str) -> None:
    """A backoff's first delay cannot exceed its last (``reconnect_min_s`` ≤ ``reconnect_max_s``)."""
    if low > high:
        raise ValueError(f"{high_name}: must be at least {low_name} ({low:g}), got {high:g}")


def option_schema(platform: str) -> type[PlatformOptions]:
    try:
        module, _, name = OPTION_SCHEMAS[platform].partition(":")
    except KeyError:
        raise ValueError(f"unknown platform {platform!r}; known: {', '.join(sorted(OPTION_SCHEMAS))}") from None
    schema = getattr(importlib.import_module(module), name)
    assert isinstance(schema, type) and issubclass(schema, PlatformOptions)
    return schema


def check_options(platform: str, options: Mapping[str, Any]) -> PlatformOptions:
    """``options`` through the platform's schema; :class:`SchemaError` names the field."""
    return convert(dict(options), option_schema(platform), strict=False)


def read_options(schema: type[T], options: Mapping[str, Any]) -> T:
    """What an adapter's config reads: the settings through its own schema, a refusal as a
    ``ValueError`` naming the option (the doors refused it already; this is the last check)."""
    try:
        return convert(dict(options), schema, strict=False)
    except SchemaError as exc:
        raise ValueError(str(exc.nested("options"))) from None

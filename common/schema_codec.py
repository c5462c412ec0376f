"""Decoding through a schema, with every failure turned into one :class:`SchemaError`.

msgspec reports a failure as ``Expected `int`, got `float` - at `$.rule.quantity```; callers
want the field (``rule.quantity``) and the reason apart: the web answers ``{field: reason}``,
the config loader prefixes its own path, a Kafka stage puts both on ``order.errors``.
"""

from __future__ import annotations

import re
from typing import Any, TypeVar

import msgspec

T = TypeVar("T")
# "- at `$.path`", or for a mapping's key "- at `key` in `$.path`" (the mapping is named).
_AT = re.compile(r"^(?P<reason>.*?)(?: - at (?:`key` in )?`\$(?P<path>[^`]*)`)?$", re.DOTALL)
_MISSING = re.compile(r"^Object missing required field `(?P<name>[^`]+)`$")
_UNKNOWN = re.compile(r"^Object contains unknown field `(?P<name>[^`]+)`$")
# A ``__post_init__`` check names its field first: ``limit_price: must be a finite price``.
_FIELD = re.compile(r"^(?P<name>[a-z_]+): (?P<reason>.*)$", re.DOTALL)
_decoders: dict[Any, msgspec.json.Decoder[Any]] = {}


class SchemaError(ValueError):
    """A value the schema refuses; ``field`` is a dotted path (``""`` for the whole body)."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}" if field else reason)
        self.field = field
        self.reason = reason

    def nested(self, prefix: str) -> SchemaError:
        """The same error under a parent path (``rule`` + ``quantity`` → ``rule.quantity``)."""
        field = f"{prefix}{'' if not self.field or self.field.startswith('[') else '.'}{self.field}"
        return SchemaError(field, self.reason)


def _from_msgspec(exc: Exception) -> SchemaError:
    match = _AT.match(str(exc))
    reason = match.group("reason") if match else str(exc)
    path = (match.group("path") or "") if match else ""
    path = path[1:] if path.startswith(".") else path
    path = path.replace("[...]", "")  # a value inside a mapping: name the mapping
    missing = _MISSING.match(reason)
    if missing:
        name = missing.group("name")
        return SchemaError(f"{path}.{name}" if path else name, "required")
    unknown = _UNKNOWN.match(reason)
    if unknown:
        name = unknown.group("name")[:64]
        return SchemaError(f"{path}.{name}" if path else name, "unknown field")
    named = _FIELD.match(reason)
    if named:
        name = named.group("name")
        return SchemaError(f"{path}.{name}" if path else name, named.group("reason"))
    return SchemaError(path, reason.replace("`", ""))


def decode(raw: bytes | str, schema: type[T]) -> T:
    """JSON bytes → a validated ``schema`` instance (strict: no "5" → 5, no true → 1)."""
    decoder = _decoders.get(schema)
    if decoder is None:
        decoder = _decoders[schema] = msgspec.json.Decoder(schema, strict=True)
    try:
        return decoder.decode(raw)  # type: ignore[no-any-return]  # the decoder is typed per schema
    except msgspec.ValidationError as exc:
        raise _from_msgspec(exc) from None
    except msgspec.DecodeError as exc:
        raise SchemaError("", f"not valid JSON ({exc})") from None
    except RecursionError:
        raise SchemaError("", "nested too deeply") from None


def convert(data: Any, schema: type[T], *, strict: bool = True) -> T:
    """Already-parsed data (YAML, a dict from a test or a caller) → a validated ``schema``.

    ``strict=False`` only for a platform's settings (``brokers/options.py``): they arrive as
    text from the dashboard's secret form, so ``"8"`` is 8 and ``"false"`` is false there (and
    ``"no"`` is refused, never read as true)."""
    try:
        return msgspec.convert(data, schema, strict=strict)
    except msgspec.ValidationError as exc:
        raise _from_msgspec(exc) from None
    except RecursionError:
        raise SchemaError("", "nested too deeply") from None


def to_builtins(value: Any) -> Any:
    """A schema instance back to JSON-ready builtins (Decimals as strings)."""
    return msgspec.to_builtins(value)

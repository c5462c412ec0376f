"""Decoding the topics' records with msgspec instead of Faust's per-field coercion.

Why: every consumer of ``trade.executions`` (tracker, database sink, dashboard, the bench's
observer) decodes every execution. Faust's ``Record.loads`` takes 40–70 µs per execution (a
Python-level coercion per field, a namespace lookup per nested record); a msgspec decoder
generated from the same fields takes about 2 µs, and building the Faust record from its
result about 8 µs (#16: 0.1 ms of CPU per copy per consumer at 200 followers).

What stays the same: the records are the same Faust classes (``Execution``, ``Position``, …),
their ``__post_init__`` checks run as before, JSON on the wire is unchanged, and a value
Faust's encoder writes decodes to an equal record (a property test compares both decoders).
What is stricter: types are checked, not coerced — ``"2"``, ``2.5`` or ``true`` where an integer
belongs is refused with the field's path, as every door should (Faust would have turned
``"2"`` into 2 and left ``true`` as a bool), and ``null`` is accepted only where the field may
be None (Faust read it as the default; its encoder never writes it).
"""

from __future__ import annotations

import re
import types
import typing
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import Any, TypeVar, Union, cast, get_args, get_origin

import faust
import msgspec

R = TypeVar("R", bound=faust.Record)

#: Built per record class on first use: the msgspec type and the function that turns a decoded
#: struct into the Faust record.
_STRUCTS: dict[type, type[msgspec.Struct]] = {}
_BUILDERS: dict[type, Callable[[Any], Any]] = {}
_DECODERS: dict[type, msgspec.json.Decoder[Any]] = {}


class RecordError(ValueError):
    """A record failed validation; ``field`` names the offending field."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


#: msgspec ends its message with the value's path: ``... - at `$.executions[0].quantity```.
_PATH = re.compile(r" - at `\$\.?([^`]*)`$")


class RecordDecodeError(RecordError):
    """A record the schema refuses (not JSON, a wrong type, a missing field); ``field`` is the
    value's path inside the record (``executions[0].quantity``), or the record's name."""

    @classmethod
    def of(cls, record: type, exc: Exception) -> RecordDecodeError:
        message = str(exc)
        found = _PATH.search(message)
        if found is None:
            return cls(record.__name__, message)
        return cls(found.group(1) or record.__name__, message[: found.start()])


def _is_record(kind: object) -> bool:
    return isinstance(kind, type) and issubclass(kind, faust.Record)


def _wire_type(kind: Any) -> Any:
    """The msgspec type for one Faust field type: nested records become their structs."""
    if _is_record(kind):
        return struct_for(kind)
    origin = get_origin(kind)
    if origin is list:
        (item,) = get_args(kind)
        return list[_wire_type(item)]  # type: ignore[misc]
    if origin is dict:
        key, value = get_args(kind)
        return dict[key, _wire_type(value)]  # type: ignore[valid-type,misc]
    if origin in (Union, types.UnionType):
        return Union[tuple(_wire_type(arg) for arg in get_args(kind))]  # noqa: UP007 - built at run time
    if kind is typing.Any:
        return Any
    return kind


def _default(value: Any) -> Any:
    """A record's default as a msgspec default: mutable ones are made afresh for each record."""
    if isinstance(value, list | dict | set):
        return msgspec.field(default_factory=lambda: value.copy())
    return value


def struct_for(record: type[faust.Record]) -> type[msgspec.Struct]:
    """The msgspec struct with ``record``'s fields and defaults (cached)."""
    known = _STRUCTS.get(record)
    if known is not None:
        return known
    options = record._options
    fields: list[tuple[str, Any] | tuple[str, Any, Any]] = []
    for name, kind in options.fields.items():
        wire = _wire_type(kind)
        if name in options.optionalset:
            default = options.defaults[name]
            if default is None:  # e.g. a DatetimeField(default=None) that __post_init__ fills in
                wire = Union[wire, None]  # noqa: UP007 - built at run time
            fields.append((name, wire, _default(default)))
        else:
            fields.append((name, wire))
    struct = msgspec.defstruct(f"{record.__name__}Wire", fields, kw_only=True)
    _STRUCTS[record] = struct
    return struct


def _converter(kind: Any) -> Callable[[Any], Any] | None:
    """How a decoded field value becomes the record's value (None: as decoded)."""
    if _is_record(kind):
        return builder_for(kind)
    if get_origin(kind) is list:
        (item,) = get_args(kind)
        inner = _converter(item)
        if inner is not None:
            return lambda values: [inner(v) for v in values]
    return None


def builder_for(record: type[R]) -> Callable[[Any], R]:
    """A function from ``record``'s struct to the Faust record, without Faust's ``__init__``:
    the fields are already typed and defaulted, so only nested records and ``__post_init__``
    are left to do."""
    known = _BUILDERS.get(record)
    if known is not None:
        return cast(Callable[[Any], R], known)
    converted = [(name, c) for name, kind in record._options.fields.items() if (c := _converter(kind)) is not None]
    post_init = getattr(record, "__post_init__", None)
    new = record.__new__
    as_dict = msgspec.structs.asdict

    def build(struct: Any) -> R:
        obj = new(record)
        values = as_dict(struct)
        for name, convert in converted:
            values[name] = convert(values[name])
        values["__evaluated_fields__"] = set()
        obj.__dict__.update(values)
        if post_init is not None:
            post_init(obj)
        return obj

    _BUILDERS[record] = build
    return build


def decoder_for(record: type[faust.Record]) -> msgspec.json.Decoder[Any]:
    known = _DECODERS.get(record)
    if known is None:
        known = _DECODERS[record] = msgspec.json.Decoder(struct_for(record))
    return known


def decode(record: type[R], raw: bytes | str) -> R:
    """One record of type ``record`` from its JSON; ``RecordDecodeError`` names what is wrong.
    The record's own checks (``__post_init__``) raise their ``RecordError`` as before."""
    try:
        struct = decoder_for(record).decode(raw)
    except msgspec.DecodeError as exc:  # ValidationError included
        raise RecordDecodeError.of(record, exc) from None
    return builder_for(record)(struct)


def convert(record: type[R], data: object) -> R:
    """``decode`` for JSON already parsed into Python objects."""
    try:
        struct = msgspec.convert(data, struct_for(record))
    except msgspec.ValidationError as exc:
        raise RecordDecodeError.of(record, exc) from None
    return builder_for(record)(struct)


#: Classes a field's value keeps unchanged through Faust's coercion, by descriptor type: such a
#: value skips the descriptor (the same value results); any other goes through it.
_KEPT: dict[str, tuple[type, ...]] = {
    "StringField": (str,),
    "IntegerField": (int,),
    "BooleanField": (bool,),
    "DecimalField": (Decimal,),
    "FloatField": (float,),
    "DatetimeField": (datetime,),
}
_MAKERS: dict[type, Callable[..., Any]] = {}


def maker_for(record: type[R]) -> Callable[..., R]:
    """``record(**fields)`` as Faust's ``__init__`` builds it, without its descriptors.

    Why: the executor builds two ``Execution``s per copy, and Faust's generated ``__init__``
    runs a descriptor's ``__set__`` per field (about 45 µs a record). Here a value whose class
    the field keeps as it is (a ``str`` for a text field, an ``int`` for a whole number...) is
    stored directly; ``None`` for an optional field becomes the field's default; anything else
    goes through the field's own descriptor, as in Faust. Then ``__post_init__`` runs, so the
    record's checks are the same. A missing required field or an unknown one goes to Faust's
    ``__init__``, which raises its own ``TypeError``. One difference, on purpose: a mutable
    default (a ``dict``, a ``list``) is copied per record, where Faust shares one object between
    every record built without the field (nothing here mutates one in place; this keeps it so).
    """
    known = _MAKERS.get(record)
    if known is not None:
        return cast(Callable[..., R], known)
    options = record._options
    descriptors = options.descriptors
    names = list(options.fields)
    required = frozenset(name for name in names if name not in options.optionalset)
    missing = object()
    template = {name: options.defaults.get(name, missing) for name in names}
    mutable = [name for name, default in template.items() if isinstance(default, dict | list)]
    kept: dict[str, tuple[type, ...] | None] = {}  # None: stored as given, whatever it is
    for name in names:
        descriptor = descriptors[name]
        if getattr(descriptor, "tag", None) is not None or getattr(descriptor, "trim_whitespace", False):
            kept[name] = ()
        elif type(descriptor) is faust.models.fields.FieldDescriptor:  # no coercion (a dict, a list)
            kept[name] = None
        else:
            kept[name] = _KEPT.get(type(descriptor).__name__, ())
    optional = frozenset(options.optionalset)
    none_by_default = frozenset(name for name in optional if template[name] is None)  # None: stored as it is
    post_init = getattr(record, "__post_init__", None)
    validate = bool(options.validation)
    new = record.__new__

    def slow(name: str, value: Any) -> Any:
        if value is None and name in optional:
            default = template[name]
            return default.copy() if name in mutable else default
        return _through_descriptor(descriptors[name], value)

    # Faust's own layout: ``__evaluated_fields__`` first, then the fields in their order.
    layout = {"__evaluated_fields__": None, **template}
    size = len(layout)

    def make(**given: Any) -> R:
        values = layout.copy()
        values.update(given)
        if len(values) != size or not required <= given.keys():
            return record(**given)  # Faust names the unknown or missing field in its own words
        values["__evaluated_fields__"] = set()
        for name in mutable:
            if name not in given:
                values[name] = values[name].copy()
        for name, value in given.items():
            if value is None:
                if name not in none_by_default:
                    values[name] = slow(name, value)
                continue
            classes = kept[name]
            if classes is not None and value.__class__ not in classes:
                values[name] = slow(name, value)
        obj = new(record)
        obj.__dict__.update(values)
        if post_init is not None:
            post_init(obj)
        if validate:
            obj.validate_or_raise()
        return obj

    _MAKERS[record] = make
    return make


def _through_descriptor(descriptor: Any, value: Any) -> Any:
    """What Faust's ``FieldDescriptor.__set__`` stores for ``value``."""
    value = descriptor.prepare_value(value)
    return descriptor.tag(value, field=descriptor.field) if descriptor.tag else value


__all__ = [
    "RecordDecodeError",
    "RecordError",
    "builder_for",
    "convert",
    "decode",
    "decoder_for",
    "maker_for",
    "struct_for",
]

"""Building an :class:`OrderIntent` without Faust's ``__init__`` when nothing needs coercing.

Why (docs/benchmarks.md, "Fan-out and the produce hop"): the planner builds one intent per
follower, and Faust's generated ``__init__`` passes each of the 21 fields through its field
descriptor (``should_coerce``, ``prepare_value``, ``int(...)``, ``Decimal(...)``, ...): about
half of the planner's CPU per copy, paid while the copy's ``fanned_out`` stamp is already
taken, so it is part of the produce stage's time.

What stays the same: the planner hands over values of exactly the field's type (a ``str`` for
a ``str`` field, a ``Decimal`` or ``None`` for ``Decimal | None``, ...), on which Faust's
coercion is the identity (``str(s)``, ``int(i)``, ``Decimal(d)``, ``float(f)`` and ``bool(b)``
give back an equal value of the same type). For those the record is built as
``core/record_codec.py`` builds a decoded one — the fields in their order, Faust's
``__evaluated_fields__``, then the record's own ``__post_init__`` checks. Any other value (an
``int`` where a ``float`` belongs, a ``str`` subclass, ``None`` in a required field, a missing
field without a default) goes through Faust's own ``__init__``, so the result is always the
record Faust would have built (a property test compares both, ``dumps()`` included).
"""

from __future__ import annotations

import types
from collections.abc import Callable
from decimal import Decimal
from typing import Any, Union, get_args, get_origin

from ...core.records import OrderIntent

#: The field types whose coercion is the identity on a value of exactly that class.
_PLAIN = (str, int, float, bool, Decimal)
_MISSING = object()


def _exact_class(kind: Any) -> tuple[type, bool] | None:
    """(the one class a value must have to skip coercion, whether ``None`` is allowed), or
    None when the type is not one this builder knows (the field then always goes to Faust)."""
    optional = False
    if get_origin(kind) in (Union, types.UnionType):
        args = [arg for arg in get_args(kind) if arg is not type(None)]
        optional = len(args) < len(get_args(kind))
        if len(args) != 1:
            return None
        kind = args[0]
    if kind in _PLAIN:
        return kind, optional
    if get_origin(kind) is dict:  # a plain descriptor: Faust keeps the value as given
        return dict, optional
    return None


def _builder() -> Callable[..., OrderIntent]:
    options = OrderIntent._options
    checks: list[tuple[str, type, bool]] = []
    for name, kind in options.fields.items():
        exact = _exact_class(kind)
        if exact is None:  # pragma: no cover - guarded by the test of every field's class
            raise TypeError(f"OrderIntent.{name}: no fast path for {kind!r}")
        checks.append((name, *exact))
    defaults = dict(options.defaults)
    post_init = OrderIntent.__post_init__
    new = OrderIntent.__new__
    faust_init = OrderIntent
    known = frozenset(options.fields)

    def build(**values: Any) -> OrderIntent:
        if not values.keys() <= known:
            return faust_init(**values)  # an unknown keyword: Faust's own error
        fields: dict[str, Any] = {"__evaluated_fields__": set()}
        for name, cls, optional in checks:
            value = values.get(name, _MISSING)
            if value is _MISSING:
                if name not in defaults:
                    return faust_init(**values)  # Faust names the missing field
                value = defaults[name]
                if value.__class__ is dict:
                    value = dict(value)  # never share a default dict between records
            elif value.__class__ is not cls and not (value is None and optional):
                return faust_init(**values)
            fields[name] = value
        intent = new(OrderIntent)
        intent.__dict__.update(fields)
        post_init(intent)
        return intent

    return build


#: ``OrderIntent(**fields)``, cheaper when every value already has its field's exact type.
build_intent = _builder()

__all__ = ["build_intent"]

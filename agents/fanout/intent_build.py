"""Building an :class:`OrderIntent` without Faust's per-field coercion.

Why (docs/benchmarks.md, "Fan-out and the produce hop"): the planner builds one intent per
follower, and Faust's generated ``__init__`` passes each of the 21 fields through its field
descriptor: about half of the planner's CPU per copy, paid while the copy's ``fanned_out``
stamp is already taken, so it is part of the produce stage's time. The planner hands over
values of exactly the field's type, on which that coercion is the identity, so the record is
built as :func:`~copytrader.core.record_codec.maker_for` builds the executor's outcomes (the
record's own checks run; any other value goes through Faust's descriptor).
"""

from __future__ import annotations

from ...core.record_codec import maker_for
from ...core.records import OrderIntent

#: ``OrderIntent(**fields)``, cheaper when every value already has its field's exact type.
build_intent = maker_for(OrderIntent)

__all__ = ["build_intent"]

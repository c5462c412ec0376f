"""The wire form of a signal on ``trade.signals``: one encoder, one strict decoder.

Every producer (a leader watcher, the webhook, ``copytrader send``, a script) and every reader
(the fan-out, the web, the bench observer, storage) goes through these two functions, so a
signal means the same thing at every door.
"""

from __future__ import annotations

from . import schemas
from .records import RecordError, TradeSignal
from .schemas import SchemaError, SignalIn

__all__ = ["decode_signal", "encode_signal"]


def encode_signal(signal: TradeSignal) -> bytes:
    """Wire form of a signal on ``trade.signals`` (JSON, as any producer may send it)."""
    return signal.dumps()


def decode_signal(payload: bytes | str | dict[str, object]) -> TradeSignal:
    """Parse and validate a signal from any producer through the one signal schema.

    Raises ``RecordError`` (a ``ValueError``) naming the field: fan-out puts it on
    ``order.errors``, the web answers 400 with it. Strict: ``"5"``, ``true`` or ``1.5`` is not
    a quantity, a price must be a finite positive decimal, unknown fields are refused.
    """
    try:
        parsed = schemas.convert(payload, SignalIn) if isinstance(payload, dict) else schemas.decode(payload, SignalIn)
    except SchemaError as exc:
        if exc.reason == "required":
            raise RecordError(exc.field, "missing field") from None
        if not exc.field and exc.reason.startswith("Expected object"):
            raise RecordError("body", "signal must be a JSON object, got " + exc.reason.rsplit(" ", 1)[-1]) from None
        raise RecordError(exc.field or "body", exc.reason) from None
    try:
        return TradeSignal(**parsed.fields())
    except (TypeError, ArithmeticError) as exc:  # a rule between fields the schema cannot state
        raise RecordError("body", f"bad field: {exc}") from None

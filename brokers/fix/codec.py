"""Raw FIX tag=value text ↔ a plain, validated message record, without the engine.

QuickFIX hands the application a C++ message valid only inside its callback, on its own thread.
The bridge copies it to text at once (``Message::toString``) and everything after that reads the
text here: the adapter's code then runs on the event loop, and the parsing that could meet
garbage is plain Python a fuzzer can hammer (tests/brokers/fix/test_fix_codec_fuzz.py).
Every accessor is strict: a value that does not fit its type raises :class:`FixDecodeError`,
which the adapter reports with the raw text; nothing here raises anything else.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

SOH = "\x01"
RAW_LIMIT = 300  # characters of a bad message kept in an error report
MAX_PRICE = Decimal("1e12")
MAX_QUANTITY = 10_000_000


class FixDecodeError(ValueError):
    """A FIX message (or one of its values) that cannot be read; ``raw`` is its first characters."""

    def __init__(self, message: str, raw: str = "") -> None:
        super().__init__(message)
        self.raw = raw[:RAW_LIMIT]


@dataclass(frozen=True, slots=True)
class FixMessage:
    """One message as ordered (tag, value) pairs; ``get`` reads the first occurrence."""

    fields: tuple[tuple[int, str], ...]

    @property
    def msg_type(self) -> str:
        return self.get(35)

    def get(self, tag: int, default: str = "") -> str:
        for number, value in self.fields:
            if number == tag:
                return value
        return default

    def has(self, tag: int) -> bool:
        return any(number == tag for number, _ in self.fields)

    def text(self) -> str:
        """The message as FIX text with ``|`` for SOH (for logs and error reports)."""
        return "|".join(f"{tag}={value}" for tag, value in self.fields)[:RAW_LIMIT]

    # -- typed accessors: each raises FixDecodeError, never anything else ----------------------
    def require(self, tag: int) -> str:
        value = self.get(tag)
        if not value:
            raise FixDecodeError(f"tag {tag} is missing", self.text())
        return value

    def decimal(self, tag: int, *, required: bool = False) -> Decimal | None:
        value = self.require(tag) if required else self.get(tag)
        if not value:
            return None
        try:
            number = Decimal(value)
        except InvalidOperation:
            raise FixDecodeError(f"tag {tag}={value[:40]!r} is not a number", self.text()) from None
        if not number.is_finite() or abs(number) > MAX_PRICE:
            raise FixDecodeError(f"tag {tag}={value[:40]!r} is out of range", self.text())
        return number

    def quantity(self, tag: int, *, required: bool = False) -> int:
        number = self.decimal(tag, required=required)
        if number is None:
            return 0
        if number != number.to_integral_value() or not 0 <= number <= MAX_QUANTITY:
            raise FixDecodeError(f"tag {tag}={number} is not a whole quantity in 0..{MAX_QUANTITY}", self.text())
        return int(number)


def parse(raw: str) -> FixMessage:
    """Split FIX text (SOH-delimited ``tag=value``) into a :class:`FixMessage`.

    Only the framing is checked here (tags are positive integers, each field has ``=``, a
    message type exists); checksum and body length were checked by the engine that framed it.
    """
    if not isinstance(raw, str):
        raise FixDecodeError(f"expected text, got {type(raw).__name__}")
    fields: list[tuple[int, str]] = []
    for part in raw.split(SOH):
        if not part:
            continue
        tag, sep, value = part.partition("=")
        if not sep or not tag.isdigit() or not tag.isascii() or len(tag) > 9 or int(tag) <= 0:
            raise FixDecodeError(f"malformed field {part[:40]!r}", raw)
        fields.append((int(tag), value))
    message = FixMessage(tuple(fields))
    if not message.get(35):
        raise FixDecodeError("no MsgType (35)", raw)
    return message


def serialize(fields: Iterable[tuple[int, str]]) -> str:
    """Fields as SOH-delimited text (no header arithmetic: the engine adds 9 and 10)."""
    return "".join(f"{tag}={value}{SOH}" for tag, value in fields)

"""Reading ProjectX REST answers and hub payloads without letting a wrong shape escape.

Why: the gateway's answers are read with plain indexing (``data["orderId"]``, ``int(...)``). An
answer of the wrong shape — a string where a number belongs, a missing id, a list instead of an
object — must surface as one error carrying the raw answer (:class:`~.codec.ProtocolError`,
code ``BAD_ANSWER``), never as a ``KeyError`` or ``TypeError`` the executor could only report as
a crash, and never stop the hub feed. Every reader here returns a value or raises that error.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from ..wire import excerpt
from . import codec

#: What a wrong-shaped answer raises when read with plain indexing and conversions.
SHAPE_ERRORS = (KeyError, IndexError, TypeError, ValueError, ArithmeticError, AttributeError, RecursionError)


def raw_text(answer: Any) -> str:
    """The answer as JSON text (what was on the wire, near enough), truncated."""
    try:
        return excerpt(codec.dumps(answer))
    except (ValueError, TypeError, RecursionError):
        return f"<unprintable {type(answer).__name__}>"


@contextlib.contextmanager
def reading(what: str, answer: Any) -> Iterator[None]:
    """Turn a wrong-shaped ``answer`` into ProtocolError naming ``what`` and carrying the answer."""
    try:
        yield
    except codec.ProtocolError:
        raise
    except SHAPE_ERRORS as exc:
        message = f"{what}: unreadable answer ({type(exc).__name__}: {str(exc)[:120]})"
        raise codec.ProtocolError(message, raw_text(answer)) from None


#: Ids, codes and sizes are 64-bit integers on the gateway (.NET ``long``); beyond is garbage.
INT64 = 2**63


def integer(value: Any, what: str, answer: Any) -> int:
    """An id, code or size: a JSON integer (or an integral number) within 64 bits; anything else
    is ProtocolError."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise codec.ProtocolError(f"{what} is not an integer: {codec.show(value, 40)}", raw_text(answer))
    if (isinstance(value, float) and not value.is_integer()) or not -INT64 <= value < INT64:
        raise codec.ProtocolError(f"{what} is not a 64-bit integer: {codec.show(value, 40)}", raw_text(answer))
    return int(value)


def decode(body: bytes | str, path: str) -> dict[str, Any]:
    """A REST answer body: every gateway answer is a JSON object."""
    data = codec.loads(body, f"answer of {path}")
    if not isinstance(data, dict):
        raise codec.ProtocolError(f"{path} answered a non-object", body)
    return data


def error_code(data: dict[str, Any]) -> int:
    """``errorCode`` of an answer (0 when absent)."""
    return integer(data.get("errorCode") or 0, "errorCode", data)


def order_id(data: dict[str, Any], key: str = "orderId") -> str:
    """The order id of an answer, as our broker order id (the gateway's ids are integers)."""
    return str(integer(data.get(key), key, data))


def rows(data: dict[str, Any], key: str) -> list[dict[str, Any]]:
    """A list of objects in an answer (``accounts``, ``orders``, ``positions``, ``trades``...)."""
    value = data.get(key)
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(row, dict) for row in value):
        raise codec.ProtocolError(f"{key} is not a list of objects", raw_text(data))
    return value


def accounts(data: dict[str, Any]) -> dict[str, int]:
    """``Account/search`` → name → accountId."""
    found: dict[str, int] = {}
    for row in rows(data, "accounts"):
        if not isinstance(row.get("name"), str):
            raise codec.ProtocolError("account without a name", raw_text(data))
        found[row["name"]] = integer(row.get("id"), "account id", data)
    return found

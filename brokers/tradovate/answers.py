"""Readers of Tradovate's REST answers (auth, accounts, orders, positions, contracts).

Why a module of its own: an answer of the wrong shape (a string where a number belongs, a
missing id, a list instead of an object) must surface as one error carrying the raw answer —
:class:`~.codec.CodecError`, code ``BAD_ANSWER`` — never as a ``KeyError`` or ``TypeError``
from deep inside the adapter, which the executor could only report as a crash. Every reader
here returns a value or raises CodecError (or, for a refused login, ``AuthenticationFailed``).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ..errors import AuthenticationFailed
from ..wire import excerpt
from . import codec
from . import schemas as s

Json = dict[str, Any]

#: What a wrong-shaped answer raises when read with plain indexing and conversions.
SHAPE_ERRORS = (KeyError, IndexError, TypeError, ValueError, ArithmeticError, AttributeError, RecursionError)


def raw_text(answer: Any) -> str:
    """The answer as JSON text (what was on the wire, near enough), truncated."""
    try:
        return excerpt(json.dumps(answer, default=str))
    except (ValueError, TypeError, RecursionError):
        return excerpt(f"<unprintable {type(answer).__name__}>")


@contextlib.contextmanager
def reading(what: str, answer: Any) -> Iterator[None]:
    """Turn a wrong-shaped ``answer`` into CodecError naming ``what`` and carrying the answer."""
    try:
        yield
    except codec.CodecError:
        raise
    except SHAPE_ERRORS as exc:
        raise codec.CodecError(
            f"{what}: unreadable answer ({type(exc).__name__}: {str(exc)[:120]})", raw_text(answer)
        ) from None


#: Ids and quantities are 64-bit integers on the platform (Java ``long``); beyond is garbage.
INT64 = 2**63


def integer(value: Any, what: str, answer: Any) -> int:
    """An id or a quantity: a JSON integer (or an integral number) within 64 bits; anything else
    is CodecError."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise codec.CodecError(f"{what} is not an integer: {codec.show(value, 40)}", raw_text(answer))
    if (isinstance(value, float) and not value.is_integer()) or not -INT64 <= value < INT64:
        raise codec.CodecError(f"{what} is not a 64-bit integer: {codec.show(value, 40)}", raw_text(answer))
    return int(value)


@dataclass(frozen=True, slots=True)
class TokenGrant:
    token: str
    expires: datetime | None
    user_id: int | None


def token_grant(data: Any) -> TokenGrant:
    """``accesstokenrequest`` / ``renewaccesstoken``: a refusal is AuthenticationFailed with its text."""
    if not isinstance(data, dict) or data.get("errorText") or not data.get("accessToken"):
        text = data.get("errorText") if isinstance(data, dict) else None
        raise AuthenticationFailed(str(text)[:500] if text else "no access token in reply", code="errorText")
    token = data["accessToken"]
    if not isinstance(token, str):
        raise codec.CodecError("accessToken is not a string", raw_text(data))
    with reading("expirationTime", data):
        expires = s.parse_iso(data["expirationTime"]) if data.get("expirationTime") else None
    user_id = integer(data["userId"], "userId", data) if data.get("userId") is not None else None
    return TokenGrant(token, expires, user_id)


def order_id(reply: Any, key: str = "orderId") -> int:
    """The order id of a successful place answer (a failure was read before this)."""
    if not isinstance(reply, dict) or key not in reply:
        raise codec.CodecError(f"no {key} in the order answer", raw_text(reply))
    return integer(reply[key], key, reply)


def accounts(listed: Any) -> dict[str, int]:
    """``account/list`` → name → accountId."""
    if listed is None:
        return {}
    if not isinstance(listed, list):
        raise codec.CodecError("account/list did not answer a list", raw_text(listed))
    found: dict[str, int] = {}
    for row in listed:
        if not isinstance(row, dict) or not isinstance(row.get("name"), str):
            raise codec.CodecError("account/list row without a name", raw_text(listed))
        found[row["name"]] = integer(row.get("id"), "account id", listed)
    return found


def contract(found: Any) -> tuple[int, str] | None:
    """``contract/item`` / ``contract/find`` → (id, name); ``None`` when not found (404)."""
    if found is None:
        return None
    if not isinstance(found, dict) or not isinstance(found.get("name"), str):
        raise codec.CodecError("contract answer without a name", raw_text(found))
    return integer(found.get("id"), "contract id", found), found["name"]


def positions(reply: Any) -> dict[int, int]:
    """``position/deps`` → contractId → netPos (rows that are not objects are skipped)."""
    if not isinstance(reply, list):
        raise codec.CodecError("position/deps did not answer a list", raw_text(reply))
    net: dict[int, int] = {}
    for row in reply:
        if isinstance(row, dict):
            contract_id = integer(row.get("contractId"), "position contractId", reply)
            net[contract_id] = integer(row.get("netPos") or 0, "netPos", reply)
    return net

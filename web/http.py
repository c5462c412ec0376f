"""Small HTTP helpers shared by the views: JSON responses and field-level input validation.

Every bad body must become a 4xx naming the field and the reason, never a 500, so validation
raises :class:`FieldErrors` and :func:`guarded` turns it (and malformed JSON) into a 400/422.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable
from decimal import Decimal, InvalidOperation
from typing import Any, TypeVar

import orjson
from aiohttp import web as aioweb

log = logging.getLogger(__name__)
MAX_BODY = 64 * 1024
T = TypeVar("T")


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> aioweb.Response:
    body = orjson.dumps(data, default=_default)
    return aioweb.Response(body=body, status=status, content_type="application/json", headers=headers)


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, (set, frozenset)):
        return sorted(value)
    return str(value)


def error(status: int, message: str, **extra: Any) -> aioweb.Response:
    return json_response({"error": message, **extra}, status=status)


class FieldErrors(Exception):
    """One or more fields are wrong: ``{"field": "reason"}``; answered with 422."""

    def __init__(self, fields: dict[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in fields.items()))
        self.fields = fields


class HttpError(Exception):
    """A deliberate non-2xx answer from deep inside a handler (404, 409...)."""

    def __init__(self, status: int, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.extra = extra


async def read_json(request: aioweb.Request) -> dict[str, Any]:
    """The body as a JSON object; anything else is a 400 with the reason."""
    raw = await request.content.read(MAX_BODY + 1)
    if len(raw) > MAX_BODY:
        raise HttpError(413, "body too large", limit=MAX_BODY)
    try:
        data = orjson.loads(raw or b"{}")
    except orjson.JSONDecodeError as exc:
        raise HttpError(400, "body is not valid JSON", reason=str(exc)) from None
    if not isinstance(data, dict):
        raise FieldErrors({"body": f"must be a JSON object, got {type(data).__name__}"})
    return data


def guarded(handler: Callable[..., Awaitable[aioweb.StreamResponse]]) -> Callable[..., Awaitable[aioweb.StreamResponse]]:
    """Map validation and deliberate errors to 4xx; log (never echo) anything unexpected."""

    @functools.wraps(handler)
    async def wrapper(*args: Any, **kwargs: Any) -> aioweb.StreamResponse:
        try:
            return await handler(*args, **kwargs)
        except FieldErrors as exc:
            return error(422, "invalid input", fields=exc.fields)
        except HttpError as exc:
            return error(exc.status, exc.message, **exc.extra)

    return wrapper


class Fields:
    """Collects field errors while reading a body, so one answer lists every bad field."""

    def __init__(self, data: dict[str, Any], prefix: str = "") -> None:
        self.data = data
        self.prefix = prefix
        self.errors: dict[str, str] = {}

    def _bad(self, name: str, reason: str) -> None:
        self.errors[f"{self.prefix}{name}"] = reason

    def string(self, name: str, *, required: bool = True, max_len: int = 128, pattern: Any = None) -> str | None:
        value = self.data.get(name)
        if value is None:
            if required:
                self._bad(name, "required")
            return None
        if not isinstance(value, str) or not value.strip():
            self._bad(name, "must be a non-empty string")
            return None
        if len(value) > max_len:
            self._bad(name, f"at most {max_len} characters")
            return None
        if pattern is not None and not pattern.fullmatch(value):
            self._bad(name, f"must match {pattern.pattern}")
            return None
        return value

    def choice(self, name: str, allowed: tuple[str, ...] | list[str], *, required: bool = True) -> str | None:
        value = self.string(name, required=required)
        if value is not None and value not in allowed:
            self._bad(name, f"must be one of {', '.join(allowed)}")
            return None
        return value

    def boolean(self, name: str, *, required: bool = False, default: bool | None = None) -> bool | None:
        value = self.data.get(name, default)
        if value is None:
            if required:
                self._bad(name, "required")
            return None
        if not isinstance(value, bool):
            self._bad(name, "must be true or false")
            return None
        return value

    def positive_decimal(self, name: str, *, required: bool = False) -> Decimal | None:
        value = self.data.get(name)
        if value is None:
            if required:
                self._bad(name, "required")
            return None
        if isinstance(value, bool):
            self._bad(name, "must be a number")
            return None
        try:
            number = Decimal(str(value))
        except InvalidOperation:
            self._bad(name, "must be a number")
            return None
        if not number.is_finite() or number <= 0:
            self._bad(name, "must be a positive number")
            return None
        return number

    def mapping(self, name: str, *, required: bool = False) -> dict[str, Any] | None:
        value = self.data.get(name)
        if value is None:
            if required:
                self._bad(name, "required")
            return None
        if not isinstance(value, dict):
            self._bad(name, "must be an object")
            return None
        return value

    def unknown(self, allowed: set[str]) -> None:
        for key in self.data:
            if key not in allowed:
                self._bad(key, f"unknown field; allowed: {', '.join(sorted(allowed))}")

    def check(self) -> None:
        if self.errors:
            raise FieldErrors(self.errors)


def query_int(request: aioweb.Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise FieldErrors({name: "must be a whole number"}) from None
    if not low <= value <= high:
        raise FieldErrors({name: f"must be between {low} and {high}"})
    return value

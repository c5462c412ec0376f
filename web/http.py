"""Small HTTP helpers shared by the views: JSON responses and bodies read through a schema.

Every bad body must become a 4xx naming the field and the reason, never a 500: bodies are
decoded by their schema (``app.schemas.web``), which raises :class:`FieldErrors`, and
:func:`guarded` turns it (and malformed JSON) into a 400/422.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any, TypeVar

import orjson
from aiohttp import web as aioweb

from ..core import schemas
from ..core.schemas import SchemaError

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


async def read_body(request: aioweb.Request, limit: int = MAX_BODY) -> bytes:
    """The whole body, up to ``limit`` bytes (413 beyond).

    Read until EOF, not once: one ``read()`` returns what has arrived so far, so a body sent
    in two TCP segments used to be cut in half and refused as "not valid JSON".
    """
    chunks: list[bytes] = []
    size = 0
    while True:
        chunk = await request.content.read(limit + 1 - size)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
        if size > limit:
            raise HttpError(413, "body too large", limit=limit)
    return b"".join(chunks)


async def read_model(request: aioweb.Request, schema: type[T]) -> T:
    """The body validated by its schema (``app.schemas``): 400 for malformed JSON, 422 naming
    the field for anything the schema refuses (wrong type, out of bounds, unknown field)."""
    raw = await read_body(request)
    try:
        return schemas.decode(raw or b"{}", schema)
    except SchemaError as exc:
        if not exc.field and exc.reason.startswith("not valid JSON"):
            raise HttpError(400, "body is not valid JSON", reason=exc.reason) from None
        if not exc.field and exc.reason.startswith("Expected object"):
            raise FieldErrors({"body": "must be a JSON object"}) from None
        raise FieldErrors({exc.field or "body": exc.reason}) from None


def guarded(
    handler: Callable[..., Awaitable[aioweb.StreamResponse]],
) -> Callable[..., Awaitable[aioweb.StreamResponse]]:
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

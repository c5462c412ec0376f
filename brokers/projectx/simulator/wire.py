"""What every simulated gateway route shares: the ``{success, errorCode, errorMessage}`` envelope,
the bearer token, and the authenticated user stored on the request by the middleware."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from .. import codec
from .auth import Claims

USER = web.RequestKey("projectx_user", Claims)


def envelope(error_code: int = 0, message: str | None = None, **fields: Any) -> web.Response:
    body = {**fields, "success": error_code == 0, "errorCode": int(error_code), "errorMessage": message}
    return web.json_response(body, dumps=codec.dumps)


def bearer(request: web.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip()
    return request.query.get("access_token")

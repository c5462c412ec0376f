"""What every simulated gateway route shares: the ``{success, errorCode, errorMessage}`` envelope,
the bearer token, the JSON body, and the authenticated user stored on the request by the
middleware (with the account a request names, seen only by the login that owns it)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiohttp import web

from .. import codec
from .auth import Claims

if TYPE_CHECKING:
    from .server import ProjectXSimulator
    from .state import GatewayAccount

USER = web.RequestKey("projectx_user", Claims)


def envelope(error_code: int = 0, message: str | None = None, **fields: Any) -> web.Response:
    body = {**fields, "success": error_code == 0, "errorCode": int(error_code), "errorMessage": message}
    return web.json_response(body, dumps=codec.dumps)


def bearer(request: web.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip()
    return request.query.get("access_token")


async def read_body(request: web.Request) -> dict[str, Any]:
    """The request's JSON object; anything else is a 400, as the gateway answers it."""
    try:
        data = codec.loads(await request.read())
    except codec.ProtocolError:  # not JSON, not UTF-8, too deep, NaN: the client's garbage
        raise web.HTTPBadRequest(text="body must be JSON") from None
    if not isinstance(data, dict):
        raise web.HTTPBadRequest(text="body must be a JSON object")
    return data


def account_of(sim: ProjectXSimulator, request: web.Request, data: dict[str, Any]) -> GatewayAccount | None:
    """The request's account, if the caller's login sees it (another user's is "not found")."""
    account = sim.state.by_id(data.get("accountId"))
    if account is None or not sim.visible(request[USER].user, account.name):
        return None
    return account

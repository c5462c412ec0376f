"""Login, logout and "who am I" (which also hands the page its CSRF token).

The login form itself is protected by a double-submit token: ``GET /login`` sets a random,
SameSite=Strict ``ct_login`` cookie that the page echoes in ``X-CSRF-Token``; another site can
neither read nor send it, so it cannot log a victim into the attacker's account.
"""

from __future__ import annotations

import hmac
from typing import TYPE_CHECKING

import faust
from aiohttp import web as aioweb
from faust import web

from ...core import schemas
from ..auth import COOKIE, CSRF_HEADER, SESSION_KEY, LoginRefused
from ..http import error, guarded, json_response, read_model
from ..redirects import safe_next

if TYPE_CHECKING:
    from ..server import WebContext

LOGIN_COOKIE = "ct_login"


def install(app: faust.App, ctx: WebContext) -> None:
    @app.page("/api/session")
    class SessionView(web.View):
        @guarded
        async def get(self, request: aioweb.Request) -> aioweb.Response:
            session = request[SESSION_KEY]
            return json_response({"username": session.username, "csrf": session.csrf})

        @guarded
        async def post(self, request: aioweb.Request) -> aioweb.Response:
            presented = request.headers.get(CSRF_HEADER, "")
            expected = request.cookies.get(LOGIN_COOKIE, "")
            if not expected or not hmac.compare_digest(expected, presented):
                return error(403, "missing or wrong login CSRF token; reload /login")
            body = await read_model(request, schemas.LoginBody)
            try:
                session = await ctx.auth.login(body.username, body.password, request.remote or "unknown")
            except LoginRefused as exc:
                headers = {"Retry-After": str(exc.retry_after)} if exc.retry_after else None
                return json_response({"error": exc.message}, status=exc.status, headers=headers)
            response = json_response({"username": session.username, "csrf": session.csrf, "next": safe_next(body.next)})
            response.set_cookie(COOKIE, session.token, **ctx.auth.cookie_options())
            response.del_cookie(LOGIN_COOKIE, path="/")
            return response

        @guarded
        async def delete(self, request: aioweb.Request) -> aioweb.Response:
            session = request[SESSION_KEY]
            await ctx.auth.sessions.delete(session.token)
            await ctx.hub.end_session(session.token)
            response = json_response({"ok": True})
            response.del_cookie(COOKIE, path="/")
            return response

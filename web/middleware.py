"""One gate in front of every route: default deny, CSRF on writes, security headers.

Why a middleware and not a check in each view: a route added later is protected without anyone
remembering to protect it. Only the paths listed in ``PUBLIC`` (login, probes, static assets)
and ``SELF_AUTHENTICATED`` (the webhook ingestion path, which accepts an HMAC signature
instead of a session) pass without a session. The Socket.IO handshake is behind the same gate,
so an unauthenticated socket gets a plain HTTP 401 before Engine.IO sees it.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from aiohttp import web as aioweb

from .auth import CSRF_HEADER, SESSION_KEY, Auth
from .http import error

log = logging.getLogger(__name__)
Handler = Callable[[aioweb.Request], Awaitable[aioweb.StreamResponse]]
PUBLIC_EXACT = {"/login", "/healthz", "/readyz", "/metrics", "/favicon.ico"}
PUBLIC_PREFIX = ("/static/",)
SELF_AUTHENTICATED = {"/api/signals"}
#: TradingView's alert URLs carry their own token (``views.alerts``).
SELF_AUTHENTICATED_PREFIX = ("/hooks/tradingview/",)
LOGIN = ("POST", "/api/session")
UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; frame-ancestors 'none'; base-uri 'none'; "
    "form-action 'self'"
)
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
}


NO_STORE_TYPES = ("application/json", "text/csv")


def _secure(response: aioweb.StreamResponse, api: bool = False) -> aioweb.StreamResponse:
    """Security headers; ``no-store`` on every API answer (JSON, CSV exports: account data
    must not stay in a shared or browser cache)."""
    if not response.prepared:
        for name, value in HEADERS.items():
            response.headers.setdefault(name, value)
        if api or response.content_type in NO_STORE_TYPES:
            response.headers.setdefault("Cache-Control", "no-store")
    return response


def make_middleware(
    auth: Auth, metrics_public: bool = True
) -> Callable[[aioweb.Request, Handler], Awaitable[aioweb.StreamResponse]]:
    """``metrics_public``: False when ``/metrics`` has its own port (then, here, it needs a
    session like any other path; the route itself is not even installed)."""
    public_exact = PUBLIC_EXACT if metrics_public else PUBLIC_EXACT - {"/metrics"}

    @aioweb.middleware
    async def gate(request: aioweb.Request, handler: Handler) -> aioweb.StreamResponse:
        path = request.path
        is_api = path.startswith(("/api/", "/socket.io", "/hooks/"))
        public = path in public_exact or path.startswith(PUBLIC_PREFIX) or (request.method, path) == LOGIN
        if not public and path not in SELF_AUTHENTICATED and not path.startswith(SELF_AUTHENTICATED_PREFIX):
            session = await auth.session_for(request.cookies)
            if session is None:
                if is_api:
                    return _secure(error(401, "authentication required"))
                raise aioweb.HTTPFound("/login")
            writes = request.method in UNSAFE and not path.startswith("/socket.io")
            if writes and not auth.csrf_ok(session, request.headers.get(CSRF_HEADER)):
                return _secure(error(403, "missing or wrong CSRF token", header=CSRF_HEADER))
            request[SESSION_KEY] = session
        try:
            response = await handler(request)
        except aioweb.HTTPException as exc:
            _secure(exc, is_api)
            raise
        except Exception:
            log.exception("unhandled error on %s %s", request.method, path)
            return _secure(error(500, "internal error"), is_api)
        return _secure(response, is_api)

    return gate

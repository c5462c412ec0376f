"""HTML pages and static assets (plain ES modules; vendored libraries under /static/vendor)."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import TYPE_CHECKING

import faust
from aiohttp import web as aioweb
from faust import web

from ..openapi import document_yaml
from .session import LOGIN_COOKIE

if TYPE_CHECKING:
    from ..server import WebContext

STATIC = Path(__file__).resolve().parent.parent / "static"
APP_PAGES = ("/", "/trading", "/accounts", "/reports")


def _html(name: str) -> aioweb.Response:
    return aioweb.Response(
        body=(STATIC / name).read_bytes(), content_type="text/html", headers={"Cache-Control": "no-store"}
    )


def install(app: faust.App, ctx: WebContext) -> None:
    app.web.add_static("/static/", STATIC)

    @app.page("/login")
    class Login(web.View):
        async def get(self, request: aioweb.Request) -> aioweb.Response:
            response = _html("login.html")
            response.set_cookie(
                LOGIN_COOKIE,
                secrets.token_urlsafe(24),
                httponly=False,
                samesite="Strict",
                path="/",
                secure=ctx.auth.secure_cookie,
                max_age=3600,
            )
            return response

    for path in APP_PAGES:

        @app.page(path, name=f"page{path.replace('/', '_') or '_root'}")
        class Page(web.View):
            async def get(self, request: aioweb.Request) -> aioweb.Response:
                return _html("app.html")

    @app.page("/api/openapi.yaml")
    class OpenApi(web.View):
        async def get(self, request: aioweb.Request) -> aioweb.Response:
            return aioweb.Response(body=document_yaml(), content_type="application/yaml")

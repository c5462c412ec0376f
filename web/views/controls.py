"""Pause/resume a follower or all copying; flatten one account or all followers."""

from __future__ import annotations

from typing import TYPE_CHECKING

import faust
from aiohttp import web as aioweb
from faust import web

from ...core import schemas
from ..auth import SESSION_KEY
from ..http import HttpError, guarded, json_response, read_model

if TYPE_CHECKING:
    from ..server import WebContext


def install(app: faust.App, ctx: WebContext) -> None:
    live = ctx.live

    async def _target(request: aioweb.Request) -> str:
        account = (await read_model(request, schemas.ControlTarget)).account_id
        if account != "*" and account not in live.accounts:
            raise HttpError(404, "no such account", account_id=account)
        return account

    @app.page("/api/controls")
    class Controls(web.View):
        @guarded
        async def get(self, request: aioweb.Request) -> aioweb.Response:
            paused = sorted(a for a, v in live.accounts.items() if v.paused)
            return json_response({"paused_all": live.paused_all, "paused_accounts": paused})

    @app.page("/api/controls/pause")
    class Pause(web.View):
        @guarded
        async def post(self, request: aioweb.Request) -> aioweb.Response:
            account = await _target(request)
            return json_response(
                await ctx.commands.set_paused(account, True, request[SESSION_KEY].username), status=202
            )

    @app.page("/api/controls/resume")
    class Resume(web.View):
        @guarded
        async def post(self, request: aioweb.Request) -> aioweb.Response:
            account = await _target(request)
            return json_response(
                await ctx.commands.set_paused(account, False, request[SESSION_KEY].username), status=202
            )

    @app.page("/api/controls/kill")
    class Kill(web.View):
        @guarded
        async def post(self, request: aioweb.Request) -> aioweb.Response:
            """Pause all copying, cancel every follower's working orders, close their positions."""
            return json_response(await ctx.commands.kill(request[SESSION_KEY].username), status=202)

    @app.page("/api/controls/flatten")
    class Flatten(web.View):
        @guarded
        async def post(self, request: aioweb.Request) -> aioweb.Response:
            account = await _target(request)
            accounts = ctx.commands.followers() if account == "*" else [account]
            return json_response(await ctx.commands.flatten(accounts, request[SESSION_KEY].username), status=202)

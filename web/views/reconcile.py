"""``POST /api/reconcile`` (every follower, or one) and ``GET /api/reconcile`` (the last
reconciliation of each account, as the grid shows it).

The request is a record on ``copy.controls`` (``core.reconcile.request``), the same one the
dashboard button and ``copytrader reconcile`` send: the ingest workers answer it with fresh
leader snapshots, the executors with a reconciliation of their followers, reported on
``account.status`` and ``order.errors``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import faust
from aiohttp import web as aioweb
from faust import web

from ...core import reconcile
from ...core.control_records import ALL_ACCOUNTS
from ...core.schemas.reconcile import ReconcileBody
from ..auth import SESSION_KEY
from ..http import HttpError, guarded, json_response, read_model

if TYPE_CHECKING:
    from ..server import WebContext


def install(app: faust.App, ctx: WebContext) -> None:
    live = ctx.live

    @app.page("/api/reconcile")
    class Reconcile(web.View):
        @guarded
        async def get(self, request: aioweb.Request) -> aioweb.Response:
            rows = {a: v.reconcile for a, v in sorted(live.accounts.items()) if v.role == "follower"}
            return json_response({"accounts": rows})

        @guarded
        async def post(self, request: aioweb.Request) -> aioweb.Response:
            body = await read_model(request, ReconcileBody)
            account = body.account_id or ALL_ACCOUNTS
            try:
                command = reconcile.request(ctx.runtime.config, account, request[SESSION_KEY].username)
            except KeyError:
                raise HttpError(404, "no such follower", account_id=account) from None
            await ctx.commands.controls_topic.send(key=command.key.encode(), value=command.encode())
            return json_response(
                {"command_id": command.command_id, "account_id": account, "by": command.by}, status=202
            )

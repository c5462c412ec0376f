"""Read-only trading views: order log, executions, positions, errors, account grid, dashboard.

The same data the Socket.IO streams carry (``LiveState``), for scripts and first paint.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import faust
from aiohttp import web as aioweb
from faust import web

from ..http import FieldErrors, guarded, json_response, query_int

if TYPE_CHECKING:
    from ..server import WebContext

KINDS = ("ack", "fill", "partial_fill", "reject", "modified", "cancelled", "flattened", "fill_bust", "fill_correction")


def _filtered(rows: list[dict[str, Any]], request: aioweb.Request) -> list[dict[str, Any]]:
    account = request.query.get("account")
    symbol = request.query.get("symbol")
    kind = request.query.get("kind")
    if kind is not None and kind not in KINDS:
        raise FieldErrors({"kind": f"must be one of {', '.join(KINDS)}"})
    limit = query_int(request, "limit", 200, 1, 1000)
    out = [
        r
        for r in reversed(rows)
        if (account is None or r.get("account_id") == account)
        and (symbol is None or r.get("symbol") == symbol)
        and (kind is None or r.get("kind") == kind)
    ]
    return out[:limit]


def install(app: faust.App, ctx: WebContext) -> None:
    live = ctx.live

    @app.page("/api/orders")
    class Orders(web.View):
        @guarded
        async def get(self, request: aioweb.Request) -> aioweb.Response:
            rows = [r for r in live.orders if r.get("request_outcome") or r.get("is_leader")]
            return json_response({"orders": _filtered(rows, request), "cursor": live.cursors["orders"]})

    @app.page("/api/executions")
    class Executions(web.View):
        @guarded
        async def get(self, request: aioweb.Request) -> aioweb.Response:
            return json_response(
                {"executions": _filtered(list(live.orders), request), "cursor": live.cursors["orders"]}
            )

    @app.page("/api/positions")
    class Positions(web.View):
        @guarded
        async def get(self, request: aioweb.Request) -> aioweb.Response:
            account = request.query.get("account")
            rows = [
                {**r, **ctx.marks.position(r)}  # mark, unrealized_pnl (None = unknown), quote_age_s
                for r in live.positions.values()
                if account is None or r["account_id"] == account
            ]
            return json_response({"positions": rows, "cursor": live.cursors["positions"]})

    @app.page("/api/errors")
    class Errors(web.View):
        @guarded
        async def get(self, request: aioweb.Request) -> aioweb.Response:
            return json_response({"errors": _filtered(list(live.errors), request), "cursor": live.cursors["errors"]})

    @app.page("/api/grid")
    class Grid(web.View):
        @guarded
        async def get(self, request: aioweb.Request) -> aioweb.Response:
            return json_response(live.snapshot("grid"))

    @app.page("/api/dashboard")
    class Dashboard(web.View):
        @guarded
        async def get(self, request: aioweb.Request) -> aioweb.Response:
            return json_response(live.dashboard())

"""Market prices and marks: the chart's history and every position's unrealised P&L.

The same data the ``prices`` Socket.IO room carries (``web.prices``), for scripts and first paint.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import faust
from aiohttp import web as aioweb
from faust import web

from ..http import guarded, json_response

if TYPE_CHECKING:
    from ..server import WebContext


def install(app: faust.App, ctx: WebContext) -> None:
    @app.page("/api/marks")
    class MarksView(web.View):
        @guarded
        async def get(self, request: aioweb.Request) -> aioweb.Response:
            return json_response(ctx.marks.snapshot())

    @app.page("/api/prices")
    class PricesView(web.View):
        @guarded
        async def get(self, request: aioweb.Request) -> aioweb.Response:
            return json_response(ctx.prices.snapshot())

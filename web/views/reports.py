"""Reports as JSON or CSV: ``/api/reports/{pnl|latency|rejects}?start=&end=&format=csv``."""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING

import faust
from aiohttp import web as aioweb
from faust import web

from ...storage.csv_export import to_csv
from ..http import FieldErrors, HttpError, guarded, json_response
from ..reports import REPORTS

if TYPE_CHECKING:
    from ..server import WebContext


def _date(request: aioweb.Request, name: str) -> date | None:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise FieldErrors({name: "must be a date, YYYY-MM-DD"}) from None


def install(app: faust.App, ctx: WebContext) -> None:
    @app.page("/api/reports/{report}")
    class Report(web.View):
        @guarded
        async def get(self, request: aioweb.Request, report: str) -> aioweb.StreamResponse:
            if report not in REPORTS:
                raise HttpError(404, "no such report", known=list(REPORTS))
            start, end = _date(request, "start"), _date(request, "end")
            fmt = request.query.get("format", "json")
            if fmt not in ("json", "csv"):
                raise FieldErrors({"format": "must be json or csv"})
            rows = await ctx.reports.rows(report, start, end)
            if fmt == "csv":
                return aioweb.Response(
                    text=to_csv(rows),
                    content_type="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="copytrader-{report}.csv"'},
                )
            return json_response({"report": report, "source": ctx.reports.name, "rows": rows})

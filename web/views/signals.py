"""``POST /api/signals``: the REST ingestion path, now authenticated.

Either a browser session (cookie + CSRF header) or a signed webhook
(``X-CopyTrader-Signature``, see ``web.webhook``). The body is validated exactly as before: a
bad one is answered 400 with the reason and nothing is published.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import faust
from aiohttp import web as aioweb
from faust import web

from ...core.records import RecordError
from ...core.signals import decode_signal, encode_signal
from ..auth import CSRF_HEADER
from ..http import HttpError, error, json_response, read_body
from ..webhook import HEADER, WebhookRefused

if TYPE_CHECKING:
    from ..server import WebContext


def install(app: faust.App, ctx: WebContext) -> None:
    runtime = ctx.runtime

    @app.page("/api/signals")
    class Signals(web.View):
        async def post(self, request: aioweb.Request) -> aioweb.Response:
            try:
                body = await read_body(request)
            except HttpError as exc:
                return error(exc.status, exc.message, **exc.extra)
            signature = request.headers.get(HEADER)
            if signature is not None:
                try:
                    await ctx.webhook.verify(signature, body)
                except WebhookRefused as exc:
                    return error(401, "webhook refused", reason=str(exc))
                source = "webhook"
            else:
                session = await ctx.auth.session_for(request.cookies)
                if session is None:
                    return error(401, "authentication required", accepts=["session", HEADER])
                if not ctx.auth.csrf_ok(session, request.headers.get(CSRF_HEADER)):
                    return error(403, "missing or wrong CSRF token", header=CSRF_HEADER)
                source = "rest"
            try:
                signal = decode_signal(body)
            except RecordError as exc:
                return error(400, "invalid signal", reason=str(exc), field=exc.field)
            now = time.time()
            signal.source = source
            signal.stamps = {"detected": now, **signal.stamps, "published": now}
            await runtime.outbox.signal(signal.symbol, encode_signal(signal))
            return json_response({"accepted": True, "signal_id": signal.signal_id}, status=202)

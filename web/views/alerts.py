"""TradingView alert URLs: make, list and revoke a copy group's tokens; receive its alerts.

``POST /hooks/tradingview/<group>/<token>`` authenticates by its token alone (TradingView can
send no header we choose), so it sits outside the session gate (``middleware``); every other
route here needs a session and, to write, its CSRF token, like the rest of the API.
"""

from __future__ import annotations

import math
import secrets
import time
from typing import TYPE_CHECKING

import faust
from aiohttp import web as aioweb
from faust import web

from ...core import schemas
from ...core.control_records import AlertTokenCommand
from ...core.records import RecordError
from ...core.schemas.tradingview import AlertTokenBody, TradingViewAlertIn
from ...core.signals import encode_signal
from ..alerts import AlertRefused, alert_signal, new_token
from ..auth import SESSION_KEY
from ..http import HttpError, error, guarded, json_response, read_body, read_model

if TYPE_CHECKING:
    from ..server import WebContext

HOOK_PREFIX = "/hooks/tradingview/"
#: TradingView's alert message is at most a few kilobytes of text.
MAX_ALERT_BODY = 8 * 1024


def install(app: faust.App, ctx: WebContext) -> None:
    tokens = ctx.alert_tokens

    def leader_of(group_id: str) -> str:
        leader = ctx.accounts.leaders.get(group_id)
        if leader is None:
            raise HttpError(404, "no such copy group", id=group_id)
        return leader

    @app.page("/api/copy-groups/{group_id}/alert-tokens")
    class AlertTokens(web.View):
        @guarded
        async def get(self, request: aioweb.Request, group_id: str) -> aioweb.Response:
            leader_of(group_id)
            return json_response({"tokens": [t.public() for t in tokens.of_group(group_id)]})

        @guarded
        async def post(self, request: aioweb.Request, group_id: str) -> aioweb.Response:
            leader_of(group_id)
            body = await read_model(request, AlertTokenBody)
            token_id, token, digest = new_token()
            command = AlertTokenCommand(
                command_id=f"alert-{secrets.token_hex(8)}",
                token_id=token_id,
                group_id=group_id,
                digest=digest,
                label=body.label,
                ticker_map=dict(body.ticker_map),
                per_minute=body.per_minute,
                by=request[SESSION_KEY].username,
                at=time.time(),
            )
            await ctx.commands.set_alert_token(command)
            tokens.apply(command)
            path = f"{HOOK_PREFIX}{group_id}/{token}"
            made = tokens.get(token_id)
            assert made is not None
            # The only time the token is ever shown: it is kept nowhere.
            return json_response({**made.public(), "path": path, "token": token}, status=201)

    @app.page("/api/copy-groups/{group_id}/alert-tokens/{token_id}")
    class AlertToken(web.View):
        @guarded
        async def delete(self, request: aioweb.Request, group_id: str, token_id: str) -> aioweb.Response:
            known = tokens.get(token_id)
            if known is None or known.group_id != group_id:
                raise HttpError(404, "no such alert token", token_id=token_id)
            command = AlertTokenCommand(
                command_id=f"alert-{secrets.token_hex(8)}",
                token_id=token_id,
                group_id=group_id,
                digest=known.digest,
                revoked=True,
                label=known.label,
                ticker_map=dict(known.ticker_map),
                per_minute=known.per_minute,
                by=request[SESSION_KEY].username,
                at=time.time(),
            )
            await ctx.commands.set_alert_token(command)
            tokens.apply(command)
            return json_response(known.public())

    @app.page(HOOK_PREFIX + "{group_id}/{token}")
    class TradingViewHook(web.View):
        async def post(self, request: aioweb.Request, group_id: str, token: str) -> aioweb.Response:
            try:
                found = tokens.admit(group_id, token)
            except AlertRefused as exc:
                if exc.retry_after_s is None:
                    return error(exc.status, str(exc))
                refused = error(exc.status, str(exc), retry_after_s=round(exc.retry_after_s, 3))
                refused.headers["Retry-After"] = str(max(1, math.ceil(exc.retry_after_s)))
                return refused
            leader = ctx.accounts.leaders.get(group_id)
            if leader is None:
                return error(404, "no such copy group", id=group_id)
            try:
                body = await read_body(request, limit=MAX_ALERT_BODY)
                alert = schemas.decode(body, TradingViewAlertIn)
                signal = alert_signal(found, leader, alert, body, time.time())
            except HttpError as exc:
                return error(exc.status, exc.message, **exc.extra)
            except schemas.SchemaError as exc:
                return error(422, "invalid alert", field=exc.field or "body", reason=exc.reason)
            except (ValueError, RecordError) as exc:
                field, _, reason = str(exc).partition(": ")
                return error(422, "invalid alert", field=getattr(exc, "field", field), reason=reason or str(exc))
            signal.stamps = {**signal.stamps, "published": time.time()}
            await ctx.runtime.outbox.signal(signal.symbol, encode_signal(signal))
            return json_response({"accepted": True, "signal_id": signal.signal_id}, status=202)

"""Accounts (list, create, update, disable, test a connection) and copy groups/rules."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import faust
from aiohttp import web as aioweb
from faust import web

from ...brokers.registry import ADAPTERS
from ...core import schemas
from ...core.control_records import AccountCommand
from ..accounts import rule_dict
from ..auth import SESSION_KEY
from ..http import guarded, json_response, read_model

if TYPE_CHECKING:
    from ..server import WebContext


def install(app: faust.App, ctx: WebContext) -> None:
    store = ctx.accounts

    @app.page("/api/accounts")
    class Accounts(web.View):
        @guarded
        async def get(self, request: aioweb.Request) -> aioweb.Response:
            return json_response({"accounts": store.all(), "platforms": sorted(ADAPTERS)})

        @guarded
        async def post(self, request: aioweb.Request) -> aioweb.Response:
            command = store.create(await read_model(request, schemas.AccountCreate), request[SESSION_KEY].username)
            return json_response(await publish(command), status=201)

    @app.page("/api/accounts/{account_id}")
    class Account(web.View):
        @guarded
        async def get(self, request: aioweb.Request, account_id: str) -> aioweb.Response:
            return json_response(store.get(account_id).public())

        @guarded
        async def patch(self, request: aioweb.Request, account_id: str) -> aioweb.Response:
            body = await read_model(request, schemas.AccountPatch)
            updated = await publish(store.update(account_id, body, request[SESSION_KEY].username))
            if body.enabled is not schemas.UNSET:
                await publish_enabled(request, account_id, updated["enabled"])
            return json_response(updated)

        @guarded
        async def delete(self, request: aioweb.Request, account_id: str) -> aioweb.Response:
            disabled = await publish(store.disable(account_id, request[SESSION_KEY].username))
            await publish_enabled(request, account_id, False)
            return json_response(disabled)

    async def publish(command: AccountCommand) -> dict[str, Any]:
        """On ``copy.controls`` first (so nothing is shown that the workers will not apply), then here."""
        await ctx.commands.set_account(command)
        return store.apply_account_command(command)

    async def publish_enabled(request: aioweb.Request, account_id: str, enabled: bool) -> None:
        """Disabling an account stops its copying now, in every fan-out worker (a rule command
        per copy group it follows in, with its current rule)."""
        user = request[SESSION_KEY].username
        for group_id, rule in store.follower_rules(account_id):
            store.apply_rule_command(group_id, account_id, rule, enabled)
            await ctx.commands.set_rule(group_id, account_id, rule_dict(rule), enabled, user)

    @app.page("/api/accounts/{account_id}/test")
    class AccountTest(web.View):
        @guarded
        async def post(self, request: aioweb.Request, account_id: str) -> aioweb.Response:
            return json_response(await store.test_connection(account_id))

    @app.page("/api/copy-groups")
    class Groups(web.View):
        @guarded
        async def get(self, request: aioweb.Request) -> aioweb.Response:
            return json_response({"groups": store.groups()})

    @app.page("/api/copy-groups/{group_id}/followers/{account_id}")
    class FollowerRule(web.View):
        @guarded
        async def put(self, request: aioweb.Request, group_id: str, account_id: str) -> aioweb.Response:
            saved = store.set_rule(group_id, account_id, await read_model(request, schemas.FollowerRuleBody))
            await ctx.commands.set_rule(
                group_id, account_id, saved["rule"], saved["enabled"], request[SESSION_KEY].username
            )
            return json_response(saved)

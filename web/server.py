"""Wiring of the ``web`` role: auth, live state, Socket.IO, the Kafka feed and the views.

Everything the views need travels in one :class:`WebContext` (the wiring keeps it as
``Runtime.web``), so views stay small and tests can build a context by hand.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any

import faust

from ..agents.shared import jobs
from ..agents.shared.context import StageContext
from ..common.crypto import optional_cipher
from ..core.control_records import AccountCommand, AlertTokenCommand, GuardsCommand, RuleCommand
from . import guard_edits as guard_edit_views
from . import guards as guard_views
from .accounts import AccountRegistry, allowed_hosts
from .alerts import AlertTokens
from .auth import (
    Auth,
    MemorySessions,
    RedisSessions,
    SessionStore,
    SqlUsers,
    StaticUsers,
    UserStore,
)
from .commands import Commands
from .guard_edits import GuardEditor
from .live import LiveState
from .marks import Marks
from .middleware import make_middleware
from .prices import PricePush
from .realtime import KafkaFeed, SocketHub
from .reports import LiveReports, ReportSource, SqlReports
from .webhook import MemoryReplayCache, RedisReplayCache, ReplayCache, WebhookVerifier

log = logging.getLogger(__name__)


@dataclass(slots=True)
class WebContext:
    runtime: StageContext
    auth: Auth
    live: LiveState
    hub: SocketHub
    feed: KafkaFeed
    accounts: AccountRegistry
    reports: ReportSource
    webhook: WebhookVerifier
    commands: Commands
    alert_tokens: AlertTokens
    marks: Marks
    prices: PricePush
    guard_edits: GuardEditor


def _database(settings: Any) -> Any | None:
    """A session factory when a database is configured (and ``storage`` imports), else None."""
    if not settings.database_url:
        return None
    try:
        from ..storage.db import make_engine, session_factory

        return session_factory(make_engine(settings.database_url))
    except Exception:
        log.exception("database unavailable; reports fall back to live data")
        return None


LOOPBACK = frozenset({"127.0.0.1", "::1", "localhost"})


def secure_cookies(env: dict[str, str], web_host: str) -> bool:
    """The session cookie's Secure flag: on unless ``COPYTRADER_SECURE_COOKIES=0``, or unset
    while the dashboard listens on loopback only (plain HTTP on this machine, the demo).

    Why on by default: a server reachable from elsewhere sits behind TLS (an ingress, a
    proxy); a cookie that may travel over plain HTTP there is a session anyone on the path
    can take.
    """
    flag = env.get("COPYTRADER_SECURE_COOKIES", "").strip().lower()
    if flag:
        return flag not in ("0", "false", "no", "off")
    return web_host.strip("[]").lower() not in LOOPBACK


def build_context(app: faust.App, runtime: StageContext, env: dict[str, str] | None = None) -> WebContext:
    env = dict(os.environ) if env is None else env
    settings = runtime.settings
    redis_url = settings.redis_url
    static_users = StaticUsers.from_env(settings.data_dir, env)
    db = _database(settings)
    users: UserStore = static_users if db is None else SqlUsers(db, static_users)
    sessions: SessionStore = RedisSessions(redis_url) if redis_url else MemorySessions()
    cache: ReplayCache = RedisReplayCache(redis_url) if redis_url else MemoryReplayCache()
    auth = Auth(users, sessions, secure_cookie=secure_cookies(env, settings.web_host))
    live = LiveState(runtime.config)
    live.guards.use_quotes(runtime.quotes)
    hub = SocketHub(auth, live, redis_url)
    feed = KafkaFeed(settings.bootstrap_servers, settings.topic_prefix, live, hub, decoded=runtime.decoded)
    reports: ReportSource = SqlReports(db, LiveReports(live)) if db is not None else LiveReports(live)
    accounts = AccountRegistry(runtime.config, optional_cipher(env), allowed_hosts(env))
    alert_tokens = AlertTokens()
    guards = GuardEditor(runtime.config, live.guards)

    def on_command(command: RuleCommand | AccountCommand | AlertTokenCommand | GuardsCommand) -> None:
        if isinstance(command, AlertTokenCommand):
            alert_tokens.apply(command)
        elif isinstance(command, GuardsCommand):
            guards.apply(command)
        else:
            accounts.apply_command(command)

    feed.on_command = on_command
    marks = Marks(live.positions, runtime.quotes, live.feeds)
    return WebContext(
        runtime=runtime,
        auth=auth,
        live=live,
        hub=hub,
        feed=feed,
        accounts=accounts,
        reports=reports,
        webhook=WebhookVerifier(env.get("COPYTRADER_WEBHOOK_SECRET"), cache),
        commands=Commands(app, runtime),
        alert_tokens=alert_tokens,
        marks=marks,
        prices=PricePush(hub, runtime.quotes, marks),
        guard_edits=guards,
    )


def install(app: faust.App, shared: StageContext) -> WebContext:
    """Role ``web``: the gate, Socket.IO (attached before the server starts), feed and views."""
    from .views import install_views

    ctx = build_context(app, shared)
    web_app = app.web.web_app  # type: ignore[attr-defined]  # the aiohttp driver's Application
    web_app.middlewares.append(make_middleware(ctx.auth, metrics_public=not shared.settings.metrics_port))
    ctx.hub.attach(web_app)
    install_views(app, ctx)
    guard_views.install(app, ctx)
    guard_edit_views.install(app, ctx)

    @jobs.task(app)
    async def dashboard_feed() -> None:
        await ctx.feed.run()

    @jobs.task(app)
    async def socket_sweep() -> None:
        await ctx.hub.sweep()

    if shared.quotes is not None:

        @jobs.task(app)
        async def price_push() -> None:
            await ctx.prices.run()

    return ctx

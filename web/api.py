"""Entry points of the worker's web server (Faust web views).

``install_probes`` runs on every worker (``/healthz``, ``/readyz``, ``/metrics``); ``install``
adds the dashboard, the REST API and Socket.IO when the worker has the ``web`` role (the views
live in ``web.views``, the wiring in ``web.server``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import faust
import orjson
from faust import web

from ..agents.shared import jobs
from ..agents.shared.context import StageContext
from ..agents.shared.warmup import Warmup
from ..core.metrics import serve_metrics, setup_metrics

if TYPE_CHECKING:
    from .server import WebContext


def _json(view: web.View, data: Any, status: int = 200) -> web.Response:
    return view.bytes(orjson.dumps(data, default=str), content_type="application/json", status=status)


def install_probes(
    app: faust.App, runtime: StageContext, assigned_partitions: Callable[[], int], warmup: Warmup | None = None
) -> None:
    """Every worker, whatever its roles, serves ``/healthz`` and ``/metrics`` (probes, scrapes);
    ``/metrics`` on its own port when ``COPYTRADER_METRICS_PORT`` is set. ``/readyz`` waits for
    the worker's ``warmup`` too, when it has one."""
    port = runtime.settings.metrics_port
    setup_metrics(app, serve=not port)
    if port:

        @jobs.task(app)
        async def metrics_server() -> None:
            runner = await serve_metrics(runtime.settings.web_host, port)
            try:
                await asyncio.Event().wait()  # until the worker stops (cancelled)
            finally:
                await runner.cleanup()

    @app.page("/healthz")
    class Health(web.View):
        async def get(self, request: web.Request) -> web.Response:
            return _json(
                self, {"status": "ok", "app_id": runtime.settings.app_id, "roles": list(runtime.settings.roles)}
            )

    @app.page("/readyz")
    class Ready(web.View):
        async def get(self, request: web.Request) -> web.Response:
            body = readiness(bool(app.rebalancing), assigned_partitions(), warmup)
            ready = body["ready"]
            return _json(self, body, status=200 if ready else 503)


def readiness(rebalancing: bool, assigned: int, warmup: Warmup | None) -> dict[str, Any]:
    """``/readyz``'s answer: ready once partitions are assigned, no rebalance is under way, the
    warm-up finished and its gates hold; a failed warm-up says why (``warmup.error``), a gate
    that does not hold yet is named (``warmup.waiting_for``)."""
    ready = not rebalancing and assigned > 0 and (warmup is None or warmup.ready)
    body: dict[str, Any] = {"ready": ready, "assigned_partitions": assigned, "rebalancing": rebalancing}
    if warmup is not None:
        body["warmup"] = warmup.status()
    return body


def install(app: faust.App, runtime: StageContext) -> WebContext:
    """The REST API, pages and live push (role ``web``): see ``web.server``."""
    from .server import install as install_web

    return install_web(app, runtime)

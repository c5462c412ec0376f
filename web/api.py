"""REST endpoints of the worker's web server (Faust web views).

``POST /api/signals`` is the REST ingestion path: the body is validated here and a bad one is
answered with 400 and the field's reason (nothing is published); a good one is published to
``trade.signals`` exactly as a leader adapter would publish it.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import orjson
from faust import web

from ..agents.ingestion import decode_signal, encode_signal
from ..app.metrics import setup_metrics

if TYPE_CHECKING:
    from ..app.factory import CopyTraderApp


def _json(view: web.View, data: Any, status: int = 200) -> web.Response:
    return view.bytes(orjson.dumps(data, default=str), content_type="application/json", status=status)


def install_probes(app: "CopyTraderApp") -> None:
    """Every worker, whatever its roles, serves ``/healthz`` and ``/metrics`` (probes, scrapes)."""
    runtime = app.runtime
    setup_metrics(app)

    @app.page("/healthz")
    class Health(web.View):
        async def get(self, request: web.Request) -> web.Response:
            return _json(self, {"status": "ok", "app_id": runtime.settings.app_id, "roles": list(runtime.settings.roles)})

    @app.page("/readyz")
    class Ready(web.View):
        async def get(self, request: web.Request) -> web.Response:
            assigned = len(app.consumer.assignment()) if app.consumer else 0
            ready = not app.rebalancing and assigned > 0
            body = {"ready": ready, "assigned_partitions": assigned, "rebalancing": bool(app.rebalancing)}
            return _json(self, body, status=200 if ready else 503)


def install(app: "CopyTraderApp") -> None:
    """The REST API (role ``web``)."""
    runtime = app.runtime

    @app.page("/api/signals")
    class Signals(web.View):
        async def post(self, request: web.Request) -> web.Response:
            body = await request.read()
            try:
                signal = decode_signal(body)
            except ValueError as exc:
                return _json(self, {"error": "invalid signal", "reason": str(exc)}, status=400)
            now = time.time()
            signal.source = "rest"
            signal.stamps = {"detected": now, **signal.stamps, "published": now}
            await runtime.outbox.signal(signal.symbol, encode_signal(signal))
            return _json(self, {"accepted": True, "signal_id": signal.signal_id}, status=202)

    @app.page("/api/positions")
    class Positions(web.View):
        async def get(self, request: web.Request) -> web.Response:
            table = runtime.tables.get("positions")
            if table is None:
                return _json(self, {"error": "this worker does not run the tracker"}, status=404)
            rows = [
                {k: v for k, v in p.as_dict().items() if k != "recent_fill_ids"}
                for p in table.values()
            ]
            return _json(self, {"positions": rows})

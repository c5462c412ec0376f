"""The module-level Faust app the CLI needs (``faust -A copytrader.app.main:app`` also works)."""

from __future__ import annotations

from . import kill, reconcile
from .factory import create_app

app = create_app()
kill.install(app)  # ``copytrader kill``: an app command, it needs the app's producer and topics
reconcile.install(app)  # ``copytrader reconcile``: a copy.controls request, like ``kill``

"""The module-level Faust app the CLI needs (``faust -A copytrader.app.main:app`` also works)."""

from __future__ import annotations

from .factory import create_app

app = create_app()

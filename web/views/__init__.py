"""The dashboard's HTTP routes, one module per area; ``install_views`` registers them all."""

from __future__ import annotations

from typing import TYPE_CHECKING

import faust

if TYPE_CHECKING:
    from ..server import WebContext


def install_views(app: faust.App, ctx: WebContext) -> None:
    from . import accounts, alerts, controls, pages, prices, reconcile, reports, session, signals, trading

    for module in (session, accounts, alerts, trading, prices, controls, reports, signals, pages):
        module.install(app, ctx)
    reconcile.install(app, ctx)

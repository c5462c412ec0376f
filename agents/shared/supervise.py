"""Keep a long-running consumer loop alive across broker hiccups."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)


async def restart_on_failure(step: Callable[[], Awaitable[None]], what: str, delay_s: float = 1.0) -> None:
    """Run ``step`` until cancelled, restarting it after any failure (logged) with a short pause."""
    while True:
        try:
            await step()
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - a feed must outlive one bad broker answer
            log.exception("%s failed; restarting in %.0f s", what, delay_s)
            await asyncio.sleep(delay_s)

"""A copy finds its REST connection open (#16 item 3; ``brokers/warm_http.py``).

As on Tradovate: the user hub's negotiate and socket took the sign-in's idle REST connection,
so every session's first order opened a connection, and aiohttp dropped idle ones after 15 s.
The simulator names the client connection of each REST request (``rest_requests``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from projectx_helpers import ACCOUNTS

from copytrader.brokers.model import PlaceOrder, Side
from copytrader.brokers.projectx import schemas as px
from copytrader.brokers.projectx.adapter import ProjectXAdapter
from copytrader.brokers.projectx.simulator import ProjectXSimulator

AdapterFactory = Callable[..., Awaitable[ProjectXAdapter]]
ACCOUNT = next(iter(ACCOUNTS))


def _connections(sim: ProjectXSimulator, path: str | None = None) -> set[object]:
    return {peer for name, peer in sim.rest_requests if path is None or name == path}


async def test_the_first_order_uses_the_connection_the_sign_in_opened(
    adapter: ProjectXAdapter, sim: ProjectXSimulator
) -> None:
    signed_in = _connections(sim)
    await adapter.place(PlaceOrder(ACCOUNT, "pxwarm-1", "ESZ6", Side.BUY, 1))
    assert _connections(sim, px.ORDER_PLACE) <= signed_in


async def test_an_idle_session_keeps_its_connection_with_a_cheap_read(
    make_adapter: AdapterFactory, sim: ProjectXSimulator
) -> None:
    adapter = await make_adapter(warm_every_s=0.3)
    await adapter.place(PlaceOrder(ACCOUNT, "pxwarm-2", "ESZ6", Side.BUY, 1))
    before, searches = _connections(sim), len(_connections(sim, px.ACCOUNT_SEARCH))
    await asyncio.sleep(1.0)
    warming = [name for name, _ in sim.rest_requests if name == px.ACCOUNT_SEARCH]
    assert len(warming) - searches >= 2
    await adapter.place(PlaceOrder(ACCOUNT, "pxwarm-3", "ESZ6", Side.BUY, 1))
    assert _connections(sim) == before


async def test_warming_can_be_switched_off(make_adapter: AdapterFactory, sim: ProjectXSimulator) -> None:
    await make_adapter(warm_every_s=0)
    searched = sum(1 for name, _ in sim.rest_requests if name == px.ACCOUNT_SEARCH)
    await asyncio.sleep(0.3)
    assert sum(1 for name, _ in sim.rest_requests if name == px.ACCOUNT_SEARCH) == searched

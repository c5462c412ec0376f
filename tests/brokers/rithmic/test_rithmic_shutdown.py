"""A recovery that is being stopped stops: cancelling the adapter's work is never swallowed."""

from __future__ import annotations

import asyncio

from ci_skips import require_module

require_module("async_rithmic", "third-party client", "async-rithmic (install_requires in setup.cfg)")

from rithmic_helpers import wait_until  # noqa: E402

from copytrader.brokers.base import SessionConfig  # noqa: E402
from copytrader.brokers.model import ConnectionState  # noqa: E402
from copytrader.brokers.rithmic.adapter import RithmicAdapter  # noqa: E402
from copytrader.brokers.rithmic.simulator import RithmicSimulator, create_simulator  # noqa: E402
from copytrader.brokers.rithmic.transport import PlantConnection  # noqa: E402


async def test_disconnect_ends_a_recovery_against_a_vanished_server() -> None:
    sim = create_simulator(tick_ms=0)
    await sim.start()
    options = {"system_name": sim.system_name, "reconnect_min_s": 0.01, "reconnect_max_s": 0.02}
    adapter = RithmicAdapter(
        SessionConfig("rithmic", "s1", {"a": "RITHMIC-LEADER"}, sim.url, "sim-user", "sim-pass", options)
    )
    await adapter.connect()
    await sim.stop()  # the gateway is gone: the session retries for ever, with backoff
    await wait_until(lambda: adapter.state is ConnectionState.DEGRADED, what="degraded")
    recovering = adapter.plants._recovering
    assert recovering is not None and not recovering.done()
    await asyncio.wait_for(adapter.disconnect(), 5)  # a swallowed cancel would retry for ever
    assert recovering.done() and adapter.state is ConnectionState.DISCONNECTED


async def test_cancelling_a_close_in_progress_cancels_it(sim: RithmicSimulator) -> None:
    """The caller of ``close`` is cancelled while close waits for its reader: the cancellation
    reaches the caller (a recovery stopped mid-close must not carry on retrying)."""
    plant = PlantConnection(sim.url)
    await plant.open()
    await plant.login("sim-user", "sim-pass", sim.system_name, "sim:test", "1.0")
    plant.login_reply = None  # skip the logout round trip: close goes straight to its tasks
    closing = asyncio.get_running_loop().create_task(plant.close())
    await asyncio.sleep(0)  # close runs up to its first wait (on the reader and heartbeat tasks)
    closing.cancel()
    await asyncio.wait_for(asyncio.gather(closing, return_exceptions=True), 5)
    assert closing.cancelled()
    await plant.close()

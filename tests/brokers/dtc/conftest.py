"""Fixtures: a DTC simulator on an ephemeral port, and clients in either encoding."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from adapter_helpers import adapter_for, frozen
from dtc_client import ClientFactory, DtcClient

from copytrader.brokers.dtc.adapter import DtcAdapter
from copytrader.brokers.dtc.messages import Encoding
from copytrader.brokers.dtc.simulator import DtcSimulator, create_simulator
from copytrader.brokers.simkernel.exchange import SimExchange


@pytest.fixture
async def sim() -> AsyncIterator[DtcSimulator]:
    # Real heartbeat time (a 5 s logon interval), so a busy machine cannot drop a client mid-test;
    # heartbeat tests set FAST before logging on.
    simulator = DtcSimulator(SimExchange(seed=11))
    await simulator.start()
    try:
        yield simulator
    finally:
        await simulator.stop()


@pytest.fixture
async def dsim() -> AsyncIterator[DtcSimulator]:
    """The adapter tests' simulator: the shared kernel with frozen prices (``adapter_helpers``)."""
    simulator = create_simulator(exchange=frozen())
    await simulator.start()
    try:
        yield simulator
    finally:
        await simulator.stop()


@pytest.fixture
async def adapter(dsim: DtcSimulator, encoding: Encoding) -> AsyncIterator[DtcAdapter]:
    """A connected adapter on ``dsim`` in the parametrised encoding."""
    made = adapter_for(dsim, encoding)
    await made.connect()
    try:
        yield made
    finally:
        await made.disconnect()


@pytest.fixture(params=[Encoding.BINARY, Encoding.JSON], ids=["binary", "json"])
def encoding(request: pytest.FixtureRequest) -> Encoding:
    value: Encoding = request.param
    return value


@pytest.fixture
async def connect(sim: DtcSimulator, encoding: Encoding) -> AsyncIterator[ClientFactory]:
    made: list[DtcClient] = []

    async def factory(*, logon: bool = True, heartbeats: bool = True, **options: object) -> DtcClient:
        client = await DtcClient.connect(sim.port, encoding)
        made.append(client)
        if logon:
            response = await client.logon(**options)  # type: ignore[arg-type]  # logon fields
            assert response["Result"] == 1, response
            if heartbeats:
                client.start_heartbeats(0.05)
        return client

    yield factory
    for client in made:
        await client.close()

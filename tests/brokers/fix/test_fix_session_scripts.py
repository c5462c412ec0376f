"""Session-level behaviour of the simulator's acceptor (a real QuickFIX engine), checked with
send/expect scripts in the style of QuickFIX's acceptance suite, in FIX 4.2 and FIX 4.4."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from fix_helpers import frozen
from fix_script import ScriptRun

from copytrader.brokers.fix.simulator import FixSimulator, create_simulator
from copytrader.brokers.simkernel.logins import SimLogin

SCRIPTS = sorted((Path(__file__).parent / "scripts").glob("*.def"))


@pytest.fixture
async def acceptor() -> AsyncIterator[FixSimulator]:
    simulator = create_simulator(exchange=frozen(), logins=[SimLogin("TW", "pw", ("FIX-LEADER",))])
    await simulator.start()
    try:
        yield simulator
    finally:
        await simulator.stop()


@pytest.mark.parametrize("begin", ["FIX.4.2", "FIX.4.4"], ids=["fix42", "fix44"])
@pytest.mark.parametrize("script", SCRIPTS, ids=[s.stem for s in SCRIPTS])
async def test_session_script(acceptor: FixSimulator, script: Path, begin: str) -> None:
    run = ScriptRun("127.0.0.1", acceptor.port, begin)
    try:
        await asyncio.to_thread(run.run, script)
    finally:
        run.close()
    assert not acceptor.exchange.account("FIX-LEADER").orders  # no script may create an order


def test_runner_frames_like_the_engine() -> None:
    """The runner's BodyLength and CheckSum are the ones FIX defines (a known message)."""
    from fix_script import frame

    raw = frame("8=FIX.4.2|35=0|34=2|49=TW|52=20261201-00:00:00|56=ISLD", "FIX.4.2")
    body = b"35=0\x0134=2\x0149=TW\x0152=20261201-00:00:00\x0156=ISLD\x01"
    assert raw.startswith(b"8=FIX.4.2\x019=%d\x01" % len(body))
    assert raw.endswith(b"10=%03d\x01" % (sum(raw[: raw.rindex(b"10=")]) % 256))

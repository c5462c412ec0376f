"""Every conformance scenario (tests/conformance/cases) that NinjaTrader's capabilities allow, on
both ATI routes, through the shared runner.

Run here rather than from ``tests/conformance/harness.py`` PLATFORMS because one scenario
cannot pass honestly: CT-ORD-09 wants the broker's reject text, and the ATI carries none (an
order's state is all it says: ``OrderStatus|<id>`` = Rejected, or the ``<id>.txt`` file).
That scenario is run too, and must fail for exactly that reason and no other; everything else
must pass. (docs/fidelity/ninjatrader.md, NT-20.)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest
from conformance.harness import ACCOUNT, SimulatorPlatform
from conformance.matching import ScenarioFailure
from conformance.runner import Scenario, ScenarioRun, ScenarioSkipped, load_scenarios, missing_requirement

from copytrader.brokers.base import SessionConfig
from copytrader.brokers.ninjatrader.oif import SENTINEL

SIMULATOR = "copytrader.brokers.ninjatrader.simulator:create_simulator"
OPTIONS = {"reconnect_min_s": 0.05, "reconnect_max_s": 0.5, "request_timeout_s": 5.0}


def ati_config(platform: str, simulator: Any, credentials: Mapping[str, Any]) -> SessionConfig:
    """The TCP route: the simulator's ATI port; no login (NinjaTrader has none)."""
    return SessionConfig(
        platform, "conformance-ati", {ACCOUNT: credentials["accounts"][0]}, simulator.base_url, options=OPTIONS
    )


def oif_config(platform: str, simulator: Any, credentials: Mapping[str, Any]) -> SessionConfig:
    """The file route. The sentinel an earlier session of ours left in the outgoing folder is
    written first: this NinjaTrader has not restarted since (lookup's "none" needs that)."""
    (simulator.folders.outgoing / SENTINEL).write_text("an earlier session\n")
    return SessionConfig(
        platform, "conformance-oif", {ACCOUNT: credentials["accounts"][0]}, simulator.oif_url, options=OPTIONS
    )


PLATFORMS = {
    # No login ("authentication"); the ATI reports no prices, so a CHANGE whose answer was lost
    # cannot be read back ("lost_response_modify"); one key holds one order of a repeated ORDER ID
    # ("repeated_id_is_new": the simulator places both, tests in test_nt_adapter.py).
    "ati": SimulatorPlatform(
        "ninjatrader",
        SIMULATOR,
        config=ati_config,
        features=frozenset({"reconnect", "transport_faults", "lost_response"}),
    ),
    # Files have no connection to drop or answer to lose.
    "oif": SimulatorPlatform("ninjatrader", SIMULATOR, config=oif_config, features=frozenset()),
}
#: Steps a scenario lets a platform refuse as unsupported, and what NinjaTrader refuses there.
UNSUPPORTED = {"CT-ORD-12": "DAY or GTC"}
#: The one scenario that cannot pass, and the only reason it may fail with.
NO_REJECT_TEXT = {"CT-ORD-09": "lacks 'max position'"}

CASES = [
    pytest.param(route, scenario, id=f"{scenario.id}-{route}")
    for route, spec in PLATFORMS.items()
    for scenario in load_scenarios()
    if missing_requirement(scenario, spec.capabilities(), spec.features) is None
]


def test_the_matrix_is_not_empty() -> None:
    ran = {(case.values[0], case.values[1].id) for case in CASES}  # type: ignore[union-attr]  # (route, Scenario)
    for route in PLATFORMS:
        assert {(route, "CT-ORD-01"), (route, "CT-ORD-22"), (route, "CT-ORD-34")} <= ran


@pytest.mark.parametrize(("route", "scenario"), CASES)
async def test_ninjatrader_conformance(route: str, scenario: Scenario) -> None:
    async with PLATFORMS[route].start() as harness:
        run = ScenarioRun(scenario, harness)
        if scenario.id in NO_REJECT_TEXT:
            with pytest.raises(ScenarioFailure, match=NO_REJECT_TEXT[scenario.id]):
                await run.run()
            return
        try:
            await run.run()
        except ScenarioSkipped as exc:
            assert scenario.id in UNSUPPORTED and UNSUPPORTED[scenario.id] in str(exc), str(exc)

"""Every scenario in ``cases/`` against every registered adapter+simulator pair.

A platform that lacks a capability a scenario requires is skipped with the reason (the only
skip CI accepts, ``ci_skips.skip_capability``), so the matrix shows what was and was not
checked; a registered pair that does not import fails.
"""

from __future__ import annotations

import pytest
from ci_skips import skip_capability

from .harness import PLATFORMS
from .runner import Scenario, ScenarioRun, ScenarioSkipped, load_scenarios, missing_requirement

SCENARIOS = load_scenarios()


def test_cases_are_loaded() -> None:
    ids = {s.id for s in SCENARIOS}
    for required in ("CT-CONN-01", "CT-ORD-01", "CT-ORD-20", "CT-REC-01"):
        assert required in ids


@pytest.mark.parametrize("platform", sorted(PLATFORMS))
@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.id for s in SCENARIOS])
async def test_conformance(platform: str, scenario: Scenario) -> None:
    spec = PLATFORMS[platform]
    unavailable = spec.available()
    if unavailable:  # a registered pair that does not import is broken, not a missing capability
        pytest.fail(unavailable, pytrace=False)
    missing = missing_requirement(scenario, spec.capabilities(), spec.features)
    if missing:
        skip_capability(f"{platform} {missing}")
    async with spec.start() as harness:
        try:
            await ScenarioRun(scenario, harness).run()
        except ScenarioSkipped as exc:
            skip_capability(str(exc))

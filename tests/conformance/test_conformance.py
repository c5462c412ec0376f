"""Every scenario in ``cases/`` against every registered adapter+simulator pair.

A platform whose pair is not importable yet, or that lacks a capability a scenario requires,
is skipped with the reason, so the matrix always shows what was and was not checked.
"""

from __future__ import annotations

import pytest
from ci_skips import CAPABILITY_SKIP_PREFIX

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
    if unavailable:
        pytest.skip(unavailable)
    missing = missing_requirement(scenario, spec.capabilities(), spec.features)
    if missing:
        pytest.skip(f"{CAPABILITY_SKIP_PREFIX}{platform} {missing}")
    async with spec.start() as harness:
        try:
            await ScenarioRun(scenario, harness).run()
        except ScenarioSkipped as exc:
            pytest.skip(f"{CAPABILITY_SKIP_PREFIX}{exc}")

"""The runner itself: matchers, skip reasons, and that a wrong expectation really fails.

A conformance suite that cannot fail proves nothing, so these run deliberately broken
scenarios against the paper platform and check the failure names the step and the events.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from copytrader.brokers.model import Capabilities, OrderType

from .harness import PLATFORMS
from .matching import value_matches
from .runner import Scenario, ScenarioFailure, ScenarioRun, missing_requirement


def scenario(tmp_path: Path, text: str, name: str = "CT-TEST-01") -> Scenario:
    path = tmp_path / f"{name}.yaml"
    path.write_text(f"id: {name}\n{text}")
    return Scenario.load(path)


async def run_paper(sc: Scenario) -> None:
    async with PLATFORMS["paper"].start() as harness:
        await ScenarioRun(sc, harness, timeout=0.3).run()


@pytest.mark.parametrize(
    ("expected", "actual", "ok"),
    [
        ("5000.00", Decimal("5000"), True),
        ("5000.25", Decimal("5000"), False),
        ({"one_of": ["working", "filled"]}, "filled", True),
        ({"contains": "MAX"}, "risk: max position", True),
        ({"approx": "4993.33"}, Decimal("4993.333333"), True),
        ({"approx": "4993.33", "within": "0.001"}, Decimal("4993.34"), False),
        (None, None, True),
        (None, Decimal(0), False),
        (True, True, True),
        (True, 1, False),
        (2, 2, True),
    ],
)
def test_value_matches(expected: object, actual: object, ok: bool) -> None:
    assert value_matches(expected, actual) is ok


def test_missing_requirement_names_what_is_missing(tmp_path: Path) -> None:
    sc = scenario(tmp_path, "requires: [brackets, order_type:stop, feature:authentication]\nsteps: []\n")
    caps = Capabilities(brackets=False)
    assert missing_requirement(sc, caps, frozenset()) == "lacks capability brackets"
    caps = Capabilities(brackets=True, order_types=frozenset({OrderType.MARKET}))
    assert missing_requirement(sc, caps, frozenset()) == "lacks order type stop"
    caps = Capabilities(brackets=True)
    assert missing_requirement(sc, caps, frozenset()) == "lacks harness feature authentication"
    assert missing_requirement(sc, caps, frozenset({"authentication"})) is None


def test_id_must_match_file_name(tmp_path: Path) -> None:
    path = tmp_path / "CT-X-01.yaml"
    path.write_text("id: CT-X-02\nsteps: []\n")
    with pytest.raises(ValueError, match="must match"):
        Scenario.load(path)


async def test_wrong_expected_price_fails_with_event_listing(tmp_path: Path) -> None:
    sc = scenario(
        tmp_path,
        """
steps:
  - place: {ref: M1, side: buy, quantity: 1}
  - expect:
      - fill: {ref: M1, price: "4999.00"}
""",
    )
    with pytest.raises(ScenarioFailure) as info:
        await run_paper(sc)
    text = str(info.value)
    assert "CT-TEST-01 step 2" in text and "fill {" in text and "'price': '5000.00'" in text


async def test_ordered_expectation_rejects_wrong_order(tmp_path: Path) -> None:
    sc = scenario(
        tmp_path,
        """
steps:
  - place: {ref: M1, side: buy, quantity: 1}
  - expect:
      - position: {net_quantity: 1}
      - order: {ref: M1, status: working}
""",
    )
    with pytest.raises(ScenarioFailure, match="in order"):
        await run_paper(sc)


async def test_forbidden_event_fails(tmp_path: Path) -> None:
    sc = scenario(
        tmp_path,
        """
steps:
  - place: {ref: M1, side: buy, quantity: 1}
forbid:
  - fill: {ref: M1}
""",
    )
    with pytest.raises(ScenarioFailure, match="forbidden"):
        await run_paper(sc)


async def test_unexpected_error_and_missing_error_fail(tmp_path: Path) -> None:
    sc = scenario(
        tmp_path,
        """
steps:
  - cancel: {ref: NOPE}
""",
    )
    with pytest.raises(ScenarioFailure, match="unexpected UnknownOrder"):
        await run_paper(sc)
    sc = scenario(
        tmp_path,
        """
steps:
  - place: {ref: M1, side: buy, quantity: 1}
    error: {type: OrderRejected}
""",
        name="CT-TEST-02",
    )
    with pytest.raises(ScenarioFailure, match="expected"):
        await run_paper(sc)


async def test_snapshot_mismatch_and_kernel_check_fail(tmp_path: Path) -> None:
    sc = scenario(
        tmp_path,
        """
steps:
  - place: {ref: M1, side: buy, quantity: 1}
  - snapshot: {positions: []}
""",
    )
    with pytest.raises(ScenarioFailure, match="unexpected"):
        await run_paper(sc)
    sc = scenario(
        tmp_path,
        """
steps:
  - place: {ref: M1, side: buy, quantity: 1}
  - kernel: {orders: 2}
""",
        name="CT-TEST-03",
    )
    with pytest.raises(ScenarioFailure, match="kernel holds 1"):
        await run_paper(sc)


async def test_wrong_lookup_and_wrong_sent_expectations_fail(tmp_path: Path) -> None:
    found = scenario(tmp_path, "steps:\n  - lookup: {ref: NEVER}\n", "CT-TEST-02")
    with pytest.raises(ScenarioFailure, match="holds no such order"):
        await run_paper(found)
    sent = scenario(
        tmp_path,
        (
            "steps:\n  - fault: {lose_response_next: 1}\n"
            "  - place: {ref: M1, side: buy, quantity: 1}\n    error: {type: BrokerUnavailable, sent: false}\n"
        ),
        "CT-TEST-03",
    )
    with pytest.raises(ScenarioFailure, match="sent is True"):
        await run_paper(sent)
    counted = scenario(
        tmp_path,
        ("steps:\n  - place: {ref: M1, side: buy, quantity: 1}\n  - kernel: {orders_with_ref: {M1: 2}}\n"),
        "CT-TEST-04",
    )
    with pytest.raises(ScenarioFailure, match="holds 1 orders tagged M1"):
        await run_paper(counted)

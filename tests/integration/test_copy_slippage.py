"""Slippage per copy end to end: a scripted leader traded through real Kafka by separate
worker processes, the ``store`` role writing the database, and every follower fill settled
against the leader's fills of the order it copied.

The expected figures are recomputed here from the rows themselves (the leader's fills averaged
per order, the follower's price and side, the follower instrument's tick and point value), so
the test judges what the sink wrote, whichever of the two fills reached it first. No
market-data source runs in these workers, so every reference figure must be unknown (NULL),
never 0.
"""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from waiting import wait_until

from copytrader.brokers.instruments import instrument_for
from copytrader.core.settings import Settings
from copytrader.demo.runner import Scenario, ScenarioOptions
from copytrader.storage import reports
from copytrader.storage.db import make_engine, session_factory
from copytrader.storage.models import ExecutionRow

pytestmark = [pytest.mark.kafka]
FOLLOWERS = 5


def _rows(url: str) -> list[Any]:
    engine = make_engine(url)
    try:
        with session_factory(engine)() as db:
            return list(db.scalars(select(ExecutionRow)))
    finally:
        engine.dispose()


async def test_every_follower_fill_is_measured_against_its_leader_fill(
    kafka_bootstrap: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path / 'slippage.db'}"
    monkeypatch.setenv("COPYTRADER_DATABASE_URL", url)
    settings = Settings(kafka_broker=f"kafka://{kafka_bootstrap}", data_dir=tmp_path)
    options = ScenarioOptions(trades=12, interval=0.05, quiet=True, processes=3)
    async with Scenario("slip", FOLLOWERS, "0", options, settings=settings) as run:
        result = await run.trade(settle_timeout=60)
        assert result["missing"] == 0 and result["duplicates"] == 0
        seen = {f.execution_id for f in run.observer.seen.fills if not f.is_leader}

        def settled() -> list[Any]:
            rows = _rows(url)
            follower = [r for r in rows if not r.is_leader and r.kind in ("fill", "partial_fill")]
            stored = {r.execution_id for r in follower}
            done = seen <= stored and all(r.slippage_leader_ticks is not None for r in follower)
            return rows if done else []

        rows = await wait_until(
            settled, timeout_s=30, what="every follower fill stored with its slippage", observe=lambda: len(_rows(url))
        )
    leader_fills: dict[str, list[Any]] = defaultdict(list)
    for row in rows:
        if row.is_leader and row.kind in ("fill", "partial_fill"):
            leader_fills[row.broker_order_id].append(row)
    # A fill that came without its in-flight data (a flatten's closing fill) is tied to its copy
    # by the ack of the same client order id.
    signals = {r.client_order_id: r.signal_id for r in rows if r.request_outcome and not r.is_leader}
    references = {r.client_order_id: r.reference_price for r in rows if r.request_outcome and not r.is_leader}
    follower = [r for r in rows if not r.is_leader and r.kind in ("fill", "partial_fill")]
    assert len(follower) >= FOLLOWERS * 5
    for row in follower:
        signal = row.signal_id or signals[row.client_order_id]
        copied = signal.split(":")[1]  # demo ids: leader-1:<order>:new (or :flatten:0)
        fills = leader_fills[copied]
        leader_price = sum(f.quantity * f.price for f in fills) / sum(f.quantity for f in fills)
        spec = instrument_for(row.symbol)
        worse = (row.price - leader_price) if row.side == "buy" else (leader_price - row.price)
        assert row.leader_price == leader_price.quantize(Decimal("0.000001"))
        assert row.slippage_leader_ticks == (worse / spec.tick_size).quantize(Decimal("0.000001"))
        assert row.slippage_leader_amount == (worse * spec.point_value * row.quantity).quantize(Decimal("0.000001"))
        # The copy's reference: on the fill, or on its ack (a flatten's closing fill carries none).
        reference = row.reference_price if row.reference_price is not None else references.get(row.client_order_id)
        if reference is None:  # no fresh quote when the copy was planned: unknown, never 0
            assert row.slippage_ref_ticks is None and row.slippage_ref_amount is None
        else:  # the demo's dxLink simulator is the price source
            off_ref = (row.price - reference) if row.side == "buy" else (reference - row.price)
            assert row.slippage_ref_ticks == (off_ref / spec.tick_size).quantize(Decimal("0.000001"))
            assert row.slippage_ref_amount == (off_ref * spec.point_value * row.quantity).quantize(Decimal("0.000001"))
    engine = make_engine(url)
    try:
        with session_factory(engine)() as db:
            summary = {(s.scope, s.key): s for s in reports.slippage_report(db)}
    finally:
        engine.dispose()
    accounts = {r.account_id for r in follower}
    assert {k for s, k in summary if s == "account"} == accounts
    assert all(summary[("account", a)].leader_known == summary[("account", a)].copies for a in accounts)
    group = summary[("group", "demo")]
    with_reference = {cid for cid, reference in references.items() if reference is not None}
    assert with_reference, "the demo's price source gave no copy a reference price"
    assert group.ref_known >= 1 and group.ref_avg_ticks is not None

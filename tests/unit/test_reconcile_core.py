"""The pure part of reconciliation (``core/reconcile.py``): targets, comparison, corrections."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from typing import Any

import pytest

from copytrader.brokers.model import AccountSnapshot, OrderEvent, OrderStatus, OrderType, PositionEvent, Side
from copytrader.core import ids
from copytrader.core import reconcile as rc
from copytrader.core.config import CopyConfig, parse_config

NOW = 1_800_000_000.0


def config(rule: dict[str, Any] | None = None, auto_correct: bool = False, **follower: Any) -> CopyConfig:
    return parse_config(
        {
            "sessions": [{"id": "s", "platform": "paper"}],
            "accounts": [
                {"id": "lead", "session": "s", "size": 50000},
                {"id": "f1", "session": "s", "size": 25000},
            ],
            "copy_groups": [
                {
                    "id": "g",
                    "leader": "lead",
                    "auto_correct": auto_correct,
                    "followers": [{"account": "f1", "rule": rule or {}, **follower}],
                }
            ],
        },
        env={},
    )


def leader(
    positions: dict[str, int], orders: tuple[rc.WorkingOrder, ...] = (), age: float = 1.0
) -> dict[str, rc.BrokerState]:
    return {"lead": rc.BrokerState("lead", NOW - age, positions, orders)}


def follower(positions: dict[str, int], orders: tuple[rc.WorkingOrder, ...] = ()) -> rc.BrokerState:
    return rc.BrokerState("f1", NOW, positions, orders)


def check(cfg: CopyConfig, lead: dict[str, rc.BrokerState], mine: rc.BrokerState) -> tuple[rc.Target, rc.Comparison]:
    target = rc.target_for(cfg, "f1", lead, NOW, max_age_s=45)
    return target, rc.compare(target, mine)


def test_in_sync_when_the_follower_holds_the_scaled_leader_position() -> None:
    target, result = check(config({"multiplier": "2"}), leader({"ESZ6": 3}), follower({"ESZ6": 6}))
    assert dict(target.positions) == {"ESZ6": 6}
    assert result.in_sync and rc.corrections(target, result) == []


def test_drift_long_plans_one_sell_for_the_excess() -> None:
    target, result = check(config(), leader({"ESZ6": 2}), follower({"ESZ6": 5}))
    assert [(d.symbol, d.expected, d.actual, d.difference) for d in result.drifts] == [("ESZ6", 2, 5, -3)]
    (fix,) = rc.corrections(target, result)
    assert (fix.action, fix.side, fix.quantity, fix.symbol) == ("place", "sell", 3, "ESZ6")
    assert fix.client_order_id.startswith(ids.CLIENT_ID_PREFIX)


def test_drift_short_with_an_inverse_rule_and_a_symbol_map() -> None:
    cfg = config({"inverse": True, "symbol_map": {"ES": "MES"}})
    target, result = check(cfg, leader({"ESZ6": 2}), follower({}))
    assert dict(target.positions) == {"MESZ6": -2}
    (fix,) = rc.corrections(target, result)
    assert (fix.side, fix.quantity, fix.symbol) == ("sell", 2, "MESZ6")


def test_a_position_in_a_symbol_the_leader_does_not_hold_is_drift_to_flat() -> None:
    target, result = check(config(), leader({}), follower({"NQZ6": -1}))
    assert [(d.symbol, d.expected, d.actual) for d in result.drifts] == [("NQZ6", 0, -1)]
    assert rc.corrections(target, result)[0].side == "buy"


def test_ratio_scaling_uses_account_sizes() -> None:
    target, _ = check(config({"mode": "ratio"}), leader({"ESZ6": 4}), follower({"ESZ6": 2}))
    assert dict(target.positions) == {"ESZ6": 2}  # 4 × 25 000 / 50 000


@pytest.mark.parametrize(
    ("rule", "checked"),
    [
        ({"multiplier": "2"}, True),
        ({"mode": "ratio", "multiplier": "4"}, True),  # 25 000 / 50 000 × 4 = 2 a contract
        ({"mode": "fixed", "quantity": 2}, False),
        ({"multiplier": "0.5"}, False),
        ({"mode": "ratio"}, False),  # half a contract each: rounded order by order
        ({"multiplier": "1", "max_quantity": 3}, False),  # cut order by order
    ],
)
def test_positions_are_compared_only_when_the_rule_scales_positions(rule: dict[str, Any], checked: bool) -> None:
    """A fixed size copies every leader order as the same quantity: six leader sells of 1–3
    contracts made a fixed-2 follower -12 while the leader held -13, which the old target
    scaled as one order (-2), so 600 of 1,000 followers were reported drifted (and with
    auto-correct would have been "corrected"). Such followers' positions are shown, not
    compared; their working orders still are."""
    target, result = check(config(rule), leader({"ESZ6": -13}), follower({"ESZ6": -12}))
    assert target.positions_checked is checked
    assert result.positions_checked is checked
    if not checked:
        assert result.in_sync and rc.corrections(target, result) == []
        assert rc.report(result, None, NOW)["positions"] == {"ESZ6": -12}
        assert rc.report(result, None, NOW)["positions_checked"] is False
    else:
        assert not result.in_sync


def test_orphan_is_our_working_order_without_a_working_leader_order() -> None:
    copied = ids.follower_order_id("lead", "L1", "f1")
    orphan_id = ids.follower_order_id("lead", "L0", "f1")
    lead = leader({}, (rc.WorkingOrder("L1", "x", "ESZ6", "buy", 1),))
    mine = follower(
        {},
        (
            rc.WorkingOrder("B1", copied, "ESZ6", "buy", 1),
            rc.WorkingOrder("B0", orphan_id, "ESZ6", "buy", 2),
            rc.WorkingOrder("B9", "my-own-order", "ESZ6", "sell", 1),
            rc.WorkingOrder("B8", None, "ESZ6", "sell", 1),
        ),
    )
    target, result = check(config(), lead, mine)
    assert [o.broker_order_id for o in result.orphans] == ["B0"]
    assert [o.broker_order_id for o in result.foreign] == ["B9", "B8"]  # never touched
    assert result.missing == () and result.open_orders == 4
    (cancel,) = rc.corrections(target, result)
    assert (cancel.action, cancel.target_client_order_id) == ("cancel", orphan_id)


def test_a_working_leader_order_without_its_copy_is_missing() -> None:
    lead = leader({}, (rc.WorkingOrder("L1", None, "ESZ6", "buy", 1),))
    _, result = check(config(), lead, follower({}))
    assert [m.leader_order_id for m in result.missing] == ["L1"] and not result.in_sync


def test_a_stop_the_protective_watcher_placed_again_stands_in_for_its_copy() -> None:
    """The watcher's replacement carries an id derived from the copy's: it is neither an orphan
    (auto-correct would cancel the stop and leave the follower naked) nor is the copy missing."""
    from copytrader.agents.execution.protective_orders import replacement
    from copytrader.core.records import OrderIntent

    copied = ids.follower_order_id("lead", "L1", "f1")
    stop_copy = OrderIntent(
        client_order_id=copied, signal_id="lead:L1:new", account_id="f1", platform="paper",
        leader_account="lead", action="place", symbol="ESZ6", side="sell", quantity=1,
        order_type="stop", stop_price=Decimal("4990"),
    )  # fmt: skip
    again = replacement(stop_copy, 0, 1, NOW)
    lead = leader({"ESZ6": 1}, (rc.WorkingOrder("L1", "x", "ESZ6", "sell", 1),))
    mine = follower({"ESZ6": 1}, (rc.WorkingOrder("B2", again.client_order_id, "ESZ6", "sell", 1),))
    target, result = check(config(), lead, mine)
    assert result.in_sync and result.orphans == () and result.missing == ()
    assert rc.corrections(target, result) == []
    # another account's replacement id is not this copy's
    other = replacement(stop_copy.derive(account_id="f2"), 0, 1, NOW)
    _, result = check(
        config(), lead, follower({"ESZ6": 1}, (rc.WorkingOrder("B3", other.client_order_id, "ESZ6", "sell", 1),))
    )
    assert [o.broker_order_id for o in result.orphans] == ["B3"] and len(result.missing) == 1


def test_leader_missing_is_unavailable() -> None:
    with pytest.raises(rc.Unavailable, match="no snapshot of leader lead"):
        rc.target_for(config(), "f1", {}, NOW, 45)


def test_stale_leader_snapshot_is_unavailable() -> None:
    with pytest.raises(rc.Unavailable, match="46.0 s old"):
        rc.target_for(config(), "f1", leader({"ESZ6": 1}, age=46), NOW, 45)


def test_failed_leader_snapshot_is_unavailable_with_its_reason() -> None:
    failed = {"lead": rc.BrokerState.failed("lead", NOW, "snapshot timed out after 5 s")}
    with pytest.raises(rc.Unavailable, match="timed out"):
        rc.target_for(config(), "f1", failed, NOW, 45)


def test_a_disabled_follower_is_not_reconciled() -> None:
    with pytest.raises(rc.Unavailable, match="no enabled copy group"):
        rc.target_for(config(enabled=False), "f1", leader({}), NOW, 45)


def test_repeated_reconcile_of_the_same_state_plans_the_same_keys() -> None:
    cfg = config(auto_correct=True)
    first = rc.corrections(*check(cfg, leader({"ESZ6": 2}), follower({"ESZ6": 1})))
    again = rc.corrections(*check(cfg, leader({"ESZ6": 2}), follower({"ESZ6": 1})))
    assert first == again and len(first) == 1
    newer = rc.corrections(*check(cfg, leader({"ESZ6": 2}, age=0.5), follower({"ESZ6": 1})))
    assert newer[0].client_order_id != first[0].client_order_id  # a new leader snapshot, a new key


def test_auto_correct_comes_from_the_group() -> None:
    assert check(config(auto_correct=True), leader({}), follower({}))[0].auto_correct
    assert not check(config(), leader({}), follower({}))[0].auto_correct


def test_snapshot_records_round_trip_and_refuse_bad_values() -> None:
    state = rc.BrokerState("lead", NOW, {"ESZ6": -2}, (rc.WorkingOrder("L1", "c", "ESZ6", "sell", 1),))
    assert rc.BrokerState.decode(state.encode("schedule")) == replace(state, trigger="schedule")
    failed = rc.BrokerState.failed("lead", NOW, "down")
    assert rc.BrokerState.decode(failed.encode()).error == "down"
    for bad in (
        b'{"leader":"lead","taken_at":1,"positions":{"ESZ6":1e400}}',
        b'{"leader":"lead","taken_at":1,"positions":{"ESZ6":99999999}}',
        b'{"leader":"lead","taken_at":-5}',
        b'{"leader":"","taken_at":1}',
        b"not json",
    ):
        with pytest.raises(ValueError, match="leader snapshot"):
            rc.BrokerState.decode(bad)


def test_broker_state_from_an_adapter_snapshot_drops_flat_and_final() -> None:
    def order(status: OrderStatus, oid: str) -> OrderEvent:
        return OrderEvent("f1", "CTX", oid, "ESZ6", Side.BUY, OrderType.LIMIT, 3, status, filled_quantity=1)

    snapshot = AccountSnapshot(
        "f1",
        Decimal(0),
        (order(OrderStatus.WORKING, "1"), order(OrderStatus.FILLED, "2")),
        (PositionEvent("f1", "ESZ6", 0, None), PositionEvent("f1", "NQZ6", -1, Decimal(1))),
    )
    state = rc.BrokerState.of(snapshot)
    assert dict(state.positions) == {"NQZ6": -1}
    assert [(o.broker_order_id, o.quantity) for o in state.orders] == [("1", 2)]


def test_report_says_in_sync_or_drifted_since_when_and_by_how_much() -> None:
    target, result = check(config(), leader({"ESZ6": 2}), follower({"ESZ6": 1}))
    body = rc.report(result, since=NOW - 10, checked_at=NOW)
    assert body["state"] == "drifted" and body["since"] == NOW - 10
    assert body["drift"] == {"ESZ6": {"expected": 2, "actual": 1, "difference": 1}}
    assert body["positions"] == {"ESZ6": 1} and body["open_orders"] == 0


def test_a_leader_with_more_working_orders_than_a_snapshot_carries_is_said_not_dropped() -> None:
    """Followers refused such a record whole (the schema's bound) and stopped reconciling that
    leader with a log line only; it is now a failed snapshot that says why."""
    orders = tuple(rc.WorkingOrder(f"B{n}", None, "ESZ6", "buy", 1) for n in range(1001))
    state = rc.BrokerState("L", 1.7e9, {"ESZ6": 2}, orders)
    decoded = rc.BrokerState.decode(state.encode("schedule"))
    assert decoded.error == "1001 working orders: more than the 1000 a leader snapshot carries"
    assert decoded.orders == () and dict(decoded.positions) == {}
    assert decoded.trigger == "schedule"
    fits = rc.BrokerState("L", 1.7e9, {"ESZ6": 2}, orders[:1000])
    assert rc.BrokerState.decode(fits.encode()).orders == orders[:1000]


def test_the_dashboard_says_why_a_fixed_size_followers_positions_are_not_compared() -> None:
    from copytrader.web.reconcile_view import POSITIONS_NOT_COMPARED, reconcile_columns

    target, result = check(config({"mode": "fixed", "quantity": 2}), leader({"ESZ6": -13}), follower({"ESZ6": -12}))
    columns = reconcile_columns(rc.report(result, None, NOW))
    assert columns["sync"] == "in_sync" and columns["sync_reason"] == POSITIONS_NOT_COMPARED
    _, checked = check(config(), leader({"ESZ6": 2}), follower({"ESZ6": 2}))
    assert reconcile_columns(rc.report(checked, None, NOW))["sync_reason"] is None

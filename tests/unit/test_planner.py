"""Fan-out planning: one intent per follower, scaled and mapped, or a recorded refusal."""

from decimal import Decimal

from copytrader.agents.fanout.planner import Controls, FanoutPlanner
from copytrader.core import ids
from copytrader.core.config import parse_config
from copytrader.core.records import TradeSignal

CONFIG = parse_config(
    {
        "sessions": [{"id": "p", "platform": "paper"}],
        "accounts": [
            {"id": "L", "session": "p", "size": 50000},
            {"id": "same", "session": "p"},
            {"id": "micro", "session": "p"},
            {"id": "big", "session": "p", "size": 150000},
            {"id": "off", "session": "p"},
        ],
        "copy_groups": [
            {
                "leader": "L",
                "followers": [
                    {"account": "same"},
                    {"account": "micro", "rule": {"multiplier": 10, "symbol_map": {"ES": "MES"}, "inverse": True}},
                    {"account": "big", "rule": {"mode": "ratio", "max_quantity": 5}},
                    {"account": "off", "enabled": False},
                ],
            }
        ],
    },
    env={},
)


def signal(kind: str = "new", **kw: object) -> TradeSignal:
    base: dict[str, object] = dict(
        signal_id=ids.signal_id("L", "77", kind, 1),
        leader_account="L",
        platform="paper",
        symbol="ESZ6",
        side="buy",
        quantity=2,
        kind=kind,
        leader_order_id="77",
        stamps={"detected": 1.0},
    )
    return TradeSignal(**{**base, **kw})


def test_new_order_fans_out_scaled_mapped_and_stamped() -> None:
    intents, errors = FanoutPlanner(CONFIG).plan(signal())
    got = {i.account_id: (i.action, i.symbol, i.side, i.quantity) for i in intents}
    assert got == {
        "same": ("place", "ESZ6", "buy", 2),
        "micro": ("place", "MESZ6", "sell", 20),
        "big": ("place", "ESZ6", "buy", 5),  # ratio 3x = 6, capped at 5
    }
    assert [(e.account_id, e.code) for e in errors] == [("off", "PAUSED")]
    assert all("fanned_out" in i.stamps and i.stamps["detected"] == 1.0 for i in intents)


def test_client_ids_are_derived_so_replays_match() -> None:
    first, _ = FanoutPlanner(CONFIG).plan(signal())
    again, _ = FanoutPlanner(CONFIG).plan(signal())
    assert [i.client_order_id for i in first] == [i.client_order_id for i in again]
    assert len({i.client_order_id for i in first}) == len(first)


def test_modify_and_cancel_target_the_follower_copy_of_the_leader_order() -> None:
    new, _ = FanoutPlanner(CONFIG).plan(signal("new", signal_id=ids.signal_id("L", "77", "new")))
    placed = {i.account_id: i.client_order_id for i in new}
    for kind in ("modify", "cancel"):
        extra = {"order_type": "limit", "limit_price": Decimal("4990")} if kind == "modify" else {}
        intents, _ = FanoutPlanner(CONFIG).plan(signal(kind, **extra))
        assert {i.account_id: i.target_client_order_id for i in intents} == placed
        assert all(i.action == kind for i in intents)


def test_paused_follower_skips_entries_but_not_cancels() -> None:
    planner = FanoutPlanner(CONFIG, Controls(paused_accounts={"same"}))
    intents, errors = planner.plan(signal())
    assert "same" not in {i.account_id for i in intents}
    assert ("same", "PAUSED") in {(e.account_id, e.code) for e in errors}
    cancels, _ = planner.plan(signal("cancel"))
    assert "same" in {i.account_id for i in cancels}


def test_unknown_leader_and_fill_signals() -> None:
    intents, errors = FanoutPlanner(CONFIG).plan(signal(leader_account="nobody"))
    assert intents == [] and errors[0].code == "UNKNOWN_LEADER" and "nobody" in errors[0].reason
    assert FanoutPlanner(CONFIG).plan(signal("fill")) == ([], [])


def test_unknown_mapped_symbol_is_refused_with_reason() -> None:
    intents, errors = FanoutPlanner(CONFIG).plan(signal(symbol="ZZZZ"))
    assert intents == []
    assert {e.code for e in errors} == {"RULE", "PAUSED"}
    assert any("ZZZZ" in e.reason for e in errors)

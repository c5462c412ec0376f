"""What fan-out stamps for stale-copy netting (the group's limit, exits), the config key
``stale_copy_s`` and the intent's new wire fields, refused when out of bounds; and the request
budget serving a raised priority first (issue #17, item 3)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from copytrader.agents.fanout.planner import FanoutPlanner
from copytrader.brokers.ratebudget import Priority, RateBudget, urgent
from copytrader.core import ids
from copytrader.core.config import ConfigError, parse_config
from copytrader.core.records import OrderIntent, RecordError, TradeSignal


def config(**group: Any) -> dict[str, Any]:
    return {
        "sessions": [{"id": "p", "platform": "paper"}],
        "accounts": [
            {"id": "L", "session": "p"},
            {"id": "L2", "session": "p"},
            {"id": "twice", "session": "p"},
            {"id": "same", "session": "p"},
            {"id": "micro", "session": "p"},
        ],
        "copy_groups": [
            {
                "leader": "L",
                **group,
                "followers": [
                    {"account": "same"},
                    {"account": "micro", "rule": {"multiplier": 10, "symbol_map": {"ES": "MES"}, "inverse": True}},
                    {"account": "twice"},
                ],
            },
            {"leader": "L2", "followers": [{"account": "twice"}]},
        ],
    }


def signal(n: int, kind: str = "new", side: str = "buy", quantity: int = 1, **kw: Any) -> TradeSignal:
    return TradeSignal(
        signal_id=ids.signal_id("L", str(n), kind),
        leader_account="L",
        platform="paper",
        symbol="ESZ6",
        side=side,
        quantity=quantity,
        kind=kind,
        leader_order_id=str(n),
        stamps={"detected": 1.0},
        **kw,
    )


def by_account(planner: FanoutPlanner, each: TradeSignal) -> dict[str, OrderIntent]:
    return {i.account_id: i for i in planner.plan(each)[0]}


def test_market_copies_carry_their_groups_limit_and_exits_are_marked() -> None:
    planner = FanoutPlanner(parse_config(config(stale_copy_s=2.5), env={}))
    first = by_account(planner, signal(1, quantity=2))
    assert {i.stale_after_s for i in first.values()} == {2.5}
    assert not any(i.reduces_position for i in first.values())
    planner.plan(signal(1, "fill", quantity=2))  # the leader is long 2
    exit_ = by_account(planner, signal(2, side="sell", quantity=1))
    assert exit_["same"].reduces_position and exit_["micro"].reduces_position  # inverse: its exit too
    assert by_account(planner, signal(3, quantity=1))["same"].reduces_position is False  # adds


def test_working_orders_and_flattens_are_never_netted() -> None:
    planner = FanoutPlanner(parse_config(config(), env={}))
    limit = by_account(planner, signal(1, order_type="limit", limit_price="5000"))
    assert limit["same"].stale_after_s is None
    flat = by_account(planner, signal(2, "flatten"))
    assert flat["same"].stale_after_s is None and flat["same"].reduces_position
    assert by_account(planner, signal(3))["twice"].stale_after_s == 5.0  # the default, in any group


@pytest.mark.parametrize("value", [0, 0.1, 3601, "soon", float("inf"), float("nan"), True, None])
def test_stale_copy_s_is_validated_like_every_field(value: Any) -> None:
    with pytest.raises(ConfigError) as refused:
        parse_config(config(stale_copy_s=value), env={})
    assert refused.value.path == "copy_groups[0].stale_copy_s"


def intent_json(**fields: Any) -> bytes:
    base = OrderIntent(
        client_order_id="c1",
        signal_id="s1",
        account_id="f1",
        platform="paper",
        leader_account="L",
        action="place",
        symbol="ESZ6",
        side="buy",
        quantity=1,
    )
    raw = json.loads(base.dumps())
    raw.update(fields)
    return json.dumps(raw).encode()


@pytest.mark.parametrize(
    "fields",
    [
        {"stale_after_s": 0},
        {"stale_after_s": -1},
        {"stale_after_s": 1e308},
        {"stale_after_s": "NaN"},
        {"stale_after_s": "Infinity"},
        {"stale_after_s": 3601},
    ],
)
def test_an_intent_with_an_unusable_stale_field_is_refused_at_the_door(fields: dict[str, Any]) -> None:
    with pytest.raises(RecordError) as refused:
        OrderIntent.loads(intent_json(**fields))
    assert refused.value.field == next(iter(fields))


def test_an_intent_without_the_new_fields_still_decodes() -> None:
    raw = json.loads(intent_json())
    for name in ("stale_after_s", "reduces_position"):
        raw.pop(name)
    old = OrderIntent.loads(json.dumps(raw).encode())
    assert (old.stale_after_s, old.reduces_position) == (None, False)


async def test_a_raised_request_is_served_before_entries_that_waited_longer() -> None:
    now = [0.0]

    async def sleep(seconds: float) -> None:  # a fake clock: waiting moves time, nothing else
        now[0] += seconds
        await asyncio.sleep(0)

    budget = RateBudget([(1, 1.0)], clock=lambda: now[0], sleep=sleep)
    await budget.acquire()  # the window is spent
    served: list[str] = []

    async def entry(name: str) -> None:
        await budget.acquire(Priority.ENTRY)
        served.append(name)

    async def exit_() -> None:
        with urgent(Priority.EXIT):
            await budget.acquire(Priority.ENTRY)  # the adapter calls every place an entry
        served.append("exit")

    waiting = [asyncio.ensure_future(entry("a")), asyncio.ensure_future(entry("b"))]
    await asyncio.sleep(0)
    waiting.append(asyncio.ensure_future(exit_()))
    await asyncio.gather(*waiting)
    assert served == ["exit", "a", "b"]
    with urgent(Priority.EXIT):
        await budget.acquire(Priority.CANCEL)  # never lowered: a cancel inside an exit stays first

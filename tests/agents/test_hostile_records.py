"""Anyone who can write to ``trade.executions`` (or a broker that answers nonsense) costs the
tracker and the executor one record, said on ``order.errors``; the next record is handled."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

import orjson
import pytest

from copytrader.agents.shared.outbox import MemoryOutbox
from copytrader.app.factory import CopyTraderApp
from copytrader.brokers.model import FillEvent, Side
from copytrader.core.records import Execution

CONFIG = {
    "sessions": [{"id": "p", "platform": "paper", "options": {"tick_ms": 0, "venue": "hostile-test"}}],
    "accounts": [{"id": "L", "session": "p"}, {"id": "f1", "session": "p"}],
    "copy_groups": [{"id": "g", "leader": "L", "followers": [{"account": "f1"}]}],
}


@pytest.fixture
def app(make_app: Callable[..., CopyTraderApp]) -> CopyTraderApp:  # tests/agents/conftest.py
    return make_app(CONFIG, ("execute", "track"))


def fill(n: int, **kw: object) -> dict[str, object]:
    good = Execution(
        execution_id=f"f1|o{n}|fill|{n}",
        account_id="f1",
        platform="paper",
        kind="fill",
        symbol="ESZ6",
        side="buy",
        quantity=2,
        price=Decimal("5000.25"),
        stamps={"detected": 1.0, "filled": 1.5},
    )
    return {**orjson.loads(good.dumps()), **kw}


HOSTILE = [
    {"quantity": 1e308},
    {"quantity": 10**18},
    {"quantity": True},
    {"cumulative_quantity": -5},
    {"leaves_quantity": 10**12},
    {"stamps": {"filled": "late", "detected": 1.0}},  # raised TypeError in the tracker, unguarded
    {"stamps": {"filled": True, "detected": 1.0}},
    {"price": "Infinity"},
    {"price": "1e999999"},
    {"execution_id": "x" * 100_000},
]


@pytest.mark.parametrize("hostile", HOSTILE, ids=[next(iter(h)) for h in HOSTILE])
async def test_a_hostile_execution_is_one_bad_record_and_the_next_fill_is_counted(
    app: CopyTraderApp, outbox: MemoryOutbox, hostile: dict[str, object]
) -> None:
    async with app.agents["tracker"].test_context() as agent:
        await agent.put(orjson.dumps({"executions": [fill(1, **hostile)]}), key=b"f1")
        await agent.put(orjson.dumps(fill(2)), key=b"f1")
    (error,) = outbox.sent["error"]
    assert (error.stage, error.code) == ("track", "BAD_RECORD")
    assert next(iter(hostile)) in error.reason  # the refused field is named
    (position,) = outbox.sent["position"]
    assert (position.net_quantity, position.fills) == (2, 1)
    assert app.runtime.tables["positions"]["f1|ESZ6"].net_quantity == 2


async def test_a_record_that_is_not_even_bytes_is_one_bad_record(app: CopyTraderApp, outbox: MemoryOutbox) -> None:
    from copytrader.agents.tracking.tracker import FillAccounting

    accounting = FillAccounting({})
    for value in (None, 5, "[", b"\xff\xfe", orjson.dumps([[[[1]]]])):
        moved, errors = accounting.step(value)
        assert moved == [] and [e.code for e in errors] == ["BAD_RECORD"]
    moved, errors = accounting.step(orjson.dumps(fill(3)))
    assert errors == [] and [p.net_quantity for p in moved] == [2]


def broker_fill(n: int, quantity: int, **kw: object) -> FillEvent:
    values: dict[str, object] = dict(
        account_id="f1",
        client_order_id=f"CT{n}",
        broker_order_id=f"B{n}",
        fill_id=str(n),
        symbol="ESZ6",
        side=Side.BUY,
        quantity=quantity,
        price=Decimal("5000.25"),
        cumulative_quantity=quantity,
        leaves_quantity=0,
    )
    return FillEvent(**{**values, **kw})  # type: ignore[arg-type]  # test values, some hostile on purpose


@pytest.mark.parametrize(
    "hostile",
    [
        broker_fill(1, 10**30),
        broker_fill(1, -3),
        broker_fill(1, 1, price=Decimal("Infinity")),
        broker_fill(1, 1, price=Decimal("1e308")),
        broker_fill(1, 1, broker_order_id="B" * 10_000),
    ],
    ids=["huge", "negative", "infinite-price", "1e308-price", "long-id"],
)
async def test_a_broker_sending_a_hostile_fill_costs_one_error_and_the_next_fill_is_reported(
    app: CopyTraderApp, outbox: MemoryOutbox, hostile: FillEvent
) -> None:
    router = app.runtime.execution.router
    await router.on_broker_event("paper", hostile)
    await router.on_broker_event("paper", broker_fill(2, 1))
    await router.on_broker_event("paper", hostile)  # the same event again: the same error id
    await router.outbox.drained()  # the executor's deferred outbox
    first, again = outbox.sent["error"]
    assert (first.stage, first.code, first.account_id) == ("execute", "BAD_BROKER_EVENT", "f1")
    assert first.reason.startswith("broker event refused: ") and again.error_id == first.error_id
    fills = [e for e in outbox.sent["execution"] if e.kind == "fill"]
    assert [(e.broker_order_id, e.quantity) for e in fills] == [("B2", 1)]


class _LeaderFeed:
    """A leader session that reports the given events, then ends (what a watcher uses of it)."""

    platform = "paper"

    def __init__(self, events: list[object]) -> None:
        self._events = iter(events)

    def events(self) -> _LeaderFeed:
        return self

    def __aiter__(self) -> _LeaderFeed:
        return self

    async def __anext__(self) -> object:
        try:
            return next(self._events)
        except StopIteration:
            raise StopAsyncIteration from None

    def close(self) -> None:
        pass


@pytest.mark.parametrize(
    ("quantity", "hostile"),
    [(10**30, {}), (1, {"price": Decimal("Infinity")}), (1, {"fill_id": "9" * 5_000})],
    ids=["huge", "infinite-price", "long-fill-id"],
)
async def test_a_leader_broker_sending_a_hostile_fill_costs_one_error_and_the_watcher_reads_on(
    quantity: int, hostile: dict[str, object]
) -> None:
    from copytrader.agents.ingest.watchers import LeaderWatcher

    outbox = MemoryOutbox()
    feed = _LeaderFeed([broker_fill(1, quantity, account_id="L", **hostile), broker_fill(2, 1, account_id="L")])
    await LeaderWatcher(feed, "L", outbox).run()  # type: ignore[arg-type]  # the two members a watcher uses
    (error,) = outbox.sent["error"]
    assert (error.stage, error.code, error.account_id) == ("ingest", "BAD_BROKER_EVENT", "L")
    assert [(e.broker_order_id, e.quantity, e.is_leader) for e in outbox.sent["execution"]] == [("B2", 1, True)]

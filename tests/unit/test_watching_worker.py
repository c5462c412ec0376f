"""The watching worker's cheaper fills and Kafka requests (docs/benchmarks.md, session 26): the
tracker checks a position's fill-id window once, publishes positions without it, and a worker
nothing waits on batches its fetches and produce requests."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from aiokafka import TopicPartition
from aiokafka.producer.message_accumulator import MessageAccumulator

from copytrader.agents.shared import aiokafka_internals
from copytrader.agents.tracking.tracker import FillAccounting, HealthBook, published
from copytrader.core import fill_window, records
from copytrader.core.records import Execution, Position
from copytrader.core.settings import Settings
from copytrader.tables.positions import RECENT_FILLS, apply_correction, apply_fill, position_key


def a_fill(n: int, side: str = "buy", **kw: Any) -> Execution:
    values: dict[str, Any] = dict(
        execution_id=f"f1|o{n}|fill|{n}",
        account_id="f1",
        platform="paper",
        kind="fill",
        symbol="ESZ6",
        side=side,
        quantity=1,
        price=Decimal("5000.25"),
    )
    return Execution(**(values | kw))


def counted(count: int) -> Position | None:
    position = None
    for n in range(count):
        position, applied = apply_fill(position, a_fill(n, "buy" if n % 3 else "sell"))
        assert applied
    return position


def test_a_full_window_is_kept_exact_and_stays_a_valid_record() -> None:
    position = counted(RECENT_FILLS + 40)
    assert position is not None
    assert position.fill_window == "".join(
        fill_window.token(a_fill(n).execution_id) for n in range(40, RECENT_FILLS + 40)
    )
    assert position.recent_fill_ids == []
    assert position.fills == RECENT_FILLS + 40
    # the decoder checks the window again: what the table's changelog restores is accepted
    assert Position.loads(position.dumps()) == position
    # a fill in the window is a duplicate; one that fell out of it is not known any more
    assert apply_fill(position, a_fill(RECENT_FILLS + 39))[1] is False
    assert apply_fill(position, a_fill(39))[1] is True


def test_a_correction_keeps_the_window_the_same_way() -> None:
    position = counted(RECENT_FILLS)
    assert position is not None
    bust = a_fill(
        10**6,
        kind="fill_bust",
        quantity=0,
        price=None,
        corrects=a_fill(RECENT_FILLS - 1).execution_id,
        original_quantity=1,
        original_price=Decimal("5000.25"),
        side="buy",
    )
    undone, applied = apply_correction(position, bust)
    assert applied and undone.fill_window.endswith(fill_window.token(bust.execution_id))
    assert fill_window.size(undone.fill_window) == RECENT_FILLS
    assert Position.loads(undone.dumps()) == undone


@pytest.fixture
def text_checks(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    fields: list[str] = []
    original = records._text

    def counting(field: str, *args: Any, **kw: Any) -> None:
        fields.append(field)
        original(field, *args, **kw)

    monkeypatch.setattr(records, "_text", counting)
    yield fields


def test_a_fill_does_not_check_the_ids_of_the_window_again(text_checks: list[str]) -> None:
    position, fill = counted(RECENT_FILLS), a_fill(10**6)
    text_checks.clear()
    apply_fill(position, fill)
    # the new Position's own texts, not the 256 ids it carries (each checked when it came in)
    assert text_checks == ["account_id", "symbol"]


def test_the_tracker_keeps_the_window_and_publishes_positions_without_it() -> None:
    table: dict[str, Position] = {}
    accounting = FillAccounting(table)
    first, second = a_fill(1), a_fill(2)
    batch = records.ExecutionBatch(executions=[first, second])
    moved, errors = accounting.step(batch.dumps())
    assert errors == []
    assert [(p.net_quantity, p.fills, p.fill_window) for p in moved] == [(2, 2, "")]
    kept = table[position_key("f1", "ESZ6")]
    assert kept.fill_window == fill_window.token(first.execution_id) + fill_window.token(second.execution_id)
    assert moved[0].as_dict() | {"fill_window": kept.fill_window} == kept.as_dict()
    # the window still catches a fill the broker reported twice
    assert accounting.step(second.dumps()) == ([], [])
    assert table[position_key("f1", "ESZ6")].net_quantity == 2


def test_publishing_leaves_the_tables_position_untouched() -> None:
    position = counted(3)
    assert position is not None
    shown = published(position)
    assert shown.fill_window == "" and fill_window.size(position.fill_window) == 3
    assert published(shown) is shown
    assert Position.loads(shown.dumps()) == shown


@pytest.mark.parametrize(
    "roles, watching",
    [
        (("track", "store", "web"), True),
        (("track",), True),
        (("store",), True),
        (("web",), True),
        (("track", "store", "web", "execute"), False),
        (("execute",), False),
        (("ingest", "fanout"), False),
        ((), False),  # no role is no promise that nothing waits on it
    ],
)
def test_only_a_worker_nothing_waits_on_batches_its_fetches(roles: tuple[str, ...], watching: bool) -> None:
    settings = Settings(roles=roles, watch_fetch_wait_ms=250, watch_fetch_min_bytes=4096, watch_linger_ms=30)
    assert settings.watching_only is watching
    assert settings.faust_fetch_min_bytes == (4096 if watching else 1)
    if watching:
        assert settings.faust_fetch_wait_ms == 250 and settings.faust_linger_ms == 30
    else:
        # The direct consumers carry the copies, so Faust's consumer there is background (#16).
        assert not settings.faust_consumer_on_copy_path
        assert settings.faust_fetch_wait_ms == settings.background_fetch_wait_ms == 500


def test_a_fetch_minimum_below_one_byte_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        aiokafka_internals.apply_fetch_min_bytes(0)


class _OneBroker:
    def leader_for_partition(self, tp: TopicPartition) -> int:
        return 0


async def _two_batches(linger_ms: int) -> tuple[MessageAccumulator, TopicPartition, TopicPartition]:
    accumulator = MessageAccumulator(_OneBroker(), 16384, 0, 30, linger_ms=linger_ms)
    due, lingering = TopicPartition("t", 0), TopicPartition("t", 1)
    for tp in (due, lingering):
        await accumulator.add_message(tp, b"k", b"v", timeout=1)
    accumulator._batches[due][0]._ctime = time.monotonic() - 2 * linger_ms / 1000  # its linger is over
    return accumulator, due, lingering


async def test_a_brokers_lingering_batches_leave_with_its_first_due_one() -> None:
    try:
        aiokafka_internals.apply_node_linger(False)
        accumulator, due, lingering = await _two_batches(60_000)
        nodes, _ = accumulator.drain_by_nodes(ignore_nodes=set())
        assert set(nodes[0]) == {due}  # aiokafka's own way: one request per partition's linger

        aiokafka_internals.apply_node_linger(True)
        accumulator, due, lingering = await _two_batches(60_000)
        nodes, _ = accumulator.drain_by_nodes(ignore_nodes=set())
        assert set(nodes[0]) == {due, lingering} and not accumulator._batches
        # a muted partition (its previous batch still in flight) keeps its order: it stays
        accumulator, due, lingering = await _two_batches(60_000)
        nodes, _ = accumulator.drain_by_nodes(ignore_nodes=set(), muted_partitions={lingering})
        assert set(nodes[0]) == {due} and lingering in accumulator._batches
        # nothing due: everything lingers on
        accumulator = MessageAccumulator(_OneBroker(), 16384, 0, 30, linger_ms=60_000)
        await accumulator.add_message(due, b"k", b"v", timeout=1)
        assert accumulator.drain_by_nodes(ignore_nodes=set())[0] == {}
    finally:
        aiokafka_internals.apply_node_linger(False)
        await asyncio.sleep(0)


def a_status(**kw: Any) -> records.AccountStatus:
    return records.AccountStatus(**({"account_id": "f1", "platform": "paper", "connection": "connected"} | kw))


def test_the_health_table_is_written_only_when_a_status_changes() -> None:
    table: dict[str, records.AccountStatus] = {}
    book = HealthBook(table)
    first = a_status()
    assert book.step(first) is first and table["f1"] is first
    # the same report a heartbeat later: no account.status, and no table write (no changelog record)
    later = a_status(updated_at=first.updated_at + timedelta(seconds=5))
    assert book.step(later) is None and table["f1"] is first
    changed = a_status(orders_placed=1)
    assert book.step(changed) is changed and table["f1"] is changed
    down = a_status(connection="disconnected", orders_placed=1)
    assert book.step(down) is down
    assert book.step(a_status(account_id="f2")) is not None and set(table) == {"f1", "f2"}

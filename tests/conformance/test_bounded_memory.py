"""Adapters and simulators forget finished orders without reporting a fill twice (#18 item 3).

Per platform, on the conformance harness's adapter + simulator pair: orders fill, the adapter
shrinks them to fingerprints (``keep`` = 1), the link drops and the resync replays the day's
orders or fills; no fill is reported a second time and the adapter's maps stay small. A second
test lets the simulator's kernel forget too (its history limit): the next complete replay no
longer lists those orders, so their fingerprints go and nothing grows with the run.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from waiting import wait_until

from copytrader.brokers.finished import FinishedOrders
from copytrader.brokers.model import ConnectionEvent, ConnectionState, FillEvent, PlaceOrder, Side

from .harness import ACCOUNT, PLATFORMS, Harness

#: Platforms whose adapter bounds its per-order memory with :class:`FinishedOrders`.
BOUNDED = ["rithmic", "dtc", "tradovate", "projectx"]


def finished_tables(root: Any, depth: int = 4) -> list[FinishedOrders]:
    """Every :class:`FinishedOrders` reachable from the adapter through attributes."""
    if depth < 0 or isinstance(root, str | bytes | int | float | bool | type(None)):
        return []
    if isinstance(root, FinishedOrders):
        return [root]
    attributes = getattr(root, "__dict__", None)
    values = list(attributes.values()) if isinstance(attributes, dict) else []
    values += [getattr(root, slot) for slot in getattr(type(root), "__slots__", ()) if hasattr(root, slot)]
    return [found for value in values for found in finished_tables(value, depth - 1)]


class Fills:
    """Quantity reported per broker order id, read from the adapter's event stream (by broker
    id: on some platforms a fill can arrive before the place's answer names our id)."""

    def __init__(self, harness: Harness) -> None:
        self.subscription = harness.adapter.events()
        self.by_order: dict[str, int] = {}

    def __call__(self) -> dict[str, int]:
        while not self.subscription.queue.empty():
            event = self.subscription.queue.get_nowait()
            if isinstance(event, FillEvent):
                self.by_order[event.broker_order_id] = self.by_order.get(event.broker_order_id, 0) + event.quantity
        return self.by_order


async def place_filled(harness: Harness, fills: Fills, names: Iterator[str], count: int) -> list[str]:
    placed = []
    for n in range(count):
        name = next(names)
        side = Side.BUY if n % 2 == 0 else Side.SELL
        ack = await harness.adapter.place(PlaceOrder(ACCOUNT, name, harness.symbol, side, 1))
        placed.append(ack.broker_order_id)
    await wait_until(lambda: all(fills().get(name) for name in placed), timeout_s=20, what="every order's fill")
    return placed


async def reconnect(harness: Harness) -> None:
    """Drop the link and wait for the adapter to come back (its resync runs before CONNECTED)."""
    subscription = harness.adapter.events()
    await harness.drop_connection(False)
    await harness.restore_connection()
    seen: list[Any] = []

    def back() -> bool:
        while not subscription.queue.empty():
            seen.append(subscription.queue.get_nowait())
        states = [e.state for e in seen if isinstance(e, ConnectionEvent)]
        down = next((i for i, state in enumerate(states) if state is not ConnectionState.CONNECTED), None)
        return down is not None and ConnectionState.CONNECTED in states[down:]

    await wait_until(back, timeout_s=30, what="the adapter reconnected")
    subscription.close()


def names() -> Iterator[str]:
    n = 0
    while True:
        n += 1
        yield f"bm{n}"


@pytest.mark.parametrize("platform", BOUNDED)
async def test_a_forgotten_order_replayed_after_a_reconnect_is_not_reported_again(platform: str) -> None:
    async with PLATFORMS[platform].start() as harness:
        await harness.adapter.connect()
        tables = finished_tables(harness.adapter)
        assert tables, "the adapter keeps no FinishedOrders"
        for table in tables:
            table.keep = 1
        fills, ids = Fills(harness), names()
        first = await place_filled(harness, fills, ids, 4)
        await wait_until(lambda: sum(t.fingerprint_count for t in tables) >= 3, timeout_s=10, what="old orders shrunk")
        await reconnect(harness)  # the broker replays the day: the four orders again
        after = await place_filled(harness, fills, ids, 2)  # the stream after the resync, in order
        await asyncio.sleep(0)
        assert {name: fills()[name] for name in first + after} == dict.fromkeys(first + after, 1)
        assert sum(len(t) for t in tables) <= 6


@pytest.mark.parametrize("platform", BOUNDED)
async def test_fingerprints_go_when_the_broker_no_longer_replays_their_orders(platform: str) -> None:
    async with PLATFORMS[platform].start() as harness:
        harness.exchange.history_limit = 2  # the simulator forgets too (trimmed in batches)
        await harness.adapter.connect()
        tables = finished_tables(harness.adapter)
        for table in tables:
            table.keep = 1
        fills, ids = Fills(harness), names()
        first = await place_filled(harness, fills, ids, 8)
        assert sum(t.fingerprint_count for t in tables) >= 6
        await reconnect(harness)
        after = await place_filled(harness, fills, ids, 1)
        assert {name: fills()[name] for name in first + after} == dict.fromkeys(first + after, 1)
        # the kernel keeps at most history_limit + its slack finished orders; only those may stay
        assert sum(t.fingerprint_count for t in tables) <= 3


#: Simulator tables that grow with requests on purpose: DTC refuses a reused ClientOrderID for
#: the whole session (D-A22); rate-limit windows and the request log are bounded by time/size.
GROWS_ON_PURPOSE = ("used_client_ids", "._events", "api.calls", ".log", "lines_seen")


def containers(root: Any, path: str, seen: set[int], depth: int = 6) -> Iterator[tuple[str, int]]:
    """(path, length) of every dict/set/list reachable from ``root`` through attributes."""
    if depth < 0 or isinstance(root, str | bytes | int | float | bool | type(None)) or id(root) in seen:
        return
    seen.add(id(root))
    if isinstance(root, dict | set | list):
        yield path, len(root)
        values = list(root.values()) if isinstance(root, dict) else list(root)
        for value in values[:20]:
            yield from containers(value, path + "[*]", seen, depth - 1)
        return
    if type(root).__module__.startswith(("asyncio", "aiohttp", "ssl", "socket", "logging", "quickfix")):
        return
    attributes = getattr(root, "__dict__", None)
    values = dict(attributes) if isinstance(attributes, dict) else {}
    values.update({slot: getattr(root, slot) for slot in getattr(type(root), "__slots__", ()) if hasattr(root, slot)})
    for key, value in values.items():
        yield from containers(value, f"{path}.{key}", seen, depth - 1)


@pytest.mark.parametrize("platform", [*BOUNDED, "fix", "ninjatrader"])
async def test_simulator_tables_forget_what_the_kernel_forgot(platform: str) -> None:
    async with PLATFORMS[platform].start() as harness:
        harness.exchange.history_limit = 2  # the kernel keeps at most 3 finished orders per account
        await harness.adapter.connect()
        fills, ids = Fills(harness), names()
        await place_filled(harness, fills, ids, 30)
        grown = {
            path: size
            for path, size in containers(harness.simulator, "simulator", {id(harness.exchange)})
            if size >= 20 and not any(part in path for part in GROWS_ON_PURPOSE)
        }
        assert grown == {}
        assert len(harness.exchange.account(harness.kernel_account).orders) <= 3


# -- NinjaTrader (ATI): no history request; a "replay" is what NinjaTrader still lists --------
# (docs/fidelity/ninjatrader.md NT-41..NT-44): every account's ``Orders`` list on TCP, the
# outgoing folder's order files on the file route. Dropped fingerprints make lookup careful.


async def test_ninjatrader_forgotten_orders_pushed_again_on_reconnect_are_not_reported_again() -> None:
    from copytrader.brokers.errors import UnknownOrder
    from copytrader.brokers.model import CancelOrder, OrderStatus

    async with PLATFORMS["ninjatrader"].start() as harness:
        await harness.adapter.connect()
        tables = finished_tables(harness.adapter)
        assert len(tables) == 1, "the NinjaTrader book keeps one FinishedOrders"
        tables[0].keep = 1
        book = harness.adapter.book  # type: ignore[attr-defined]
        fills, ids = Fills(harness), names()
        first = await place_filled(harness, fills, ids, 4)
        await wait_until(lambda: tables[0].fingerprint_count >= 3, timeout_s=10, what="old orders shrunk")
        assert first[0] not in book.orders and first[0] not in book.reports
        await reconnect(harness)  # NinjaTrader pushes every order's state again on connect
        after = await place_filled(harness, fills, ids, 2)
        await asyncio.sleep(0)
        assert {name: fills()[name] for name in first + after} == dict.fromkeys(first + after, 1)
        assert len(tables[0]) <= 6 and len(book.orders) <= 2
        # a shrunk order is still found, and a cancel of it is answered from what stays of it
        found = await harness.adapter.lookup(ACCOUNT, first[0])
        assert found is not None and found.status is OrderStatus.FILLED
        with pytest.raises(UnknownOrder, match="already Filled"):
            await harness.adapter.cancel(CancelOrder(ACCOUNT, first[0]))


async def test_ninjatrader_fingerprints_go_once_ninjatrader_no_longer_lists_their_orders() -> None:
    from copytrader.brokers.errors import BrokerUnavailable

    async with PLATFORMS["ninjatrader"].start() as harness:
        harness.exchange.history_limit = 2  # the desk forgets the ORDER IDs the kernel forgot
        await harness.adapter.connect()
        tables = finished_tables(harness.adapter)
        tables[0].keep = 1
        book = harness.adapter.book  # type: ignore[attr-defined]
        fills, ids = Fills(harness), names()
        first = await place_filled(harness, fills, ids, 8)
        await reconnect(harness)
        after = await place_filled(harness, fills, ids, 1)
        assert {name: fills()[name] for name in first + after} == dict.fromkeys(first + after, 1)
        # the lists NinjaTrader pushes name at most history_limit + slack orders; only those stay
        assert tables[0].fingerprint_count <= 3 and book.memory.dropped >= 5
        assert len(book.memory.ended) == tables[0].fingerprint_count
        assert len(book.reports) <= 3 and len(harness.adapter.connection.cache.values) <= 40  # type: ignore[attr-defined]
        # an ORDER ID this adapter forgot can no longer be called "never placed"
        with pytest.raises(BrokerUnavailable, match="forgot finished orders"):
            await harness.adapter.lookup(ACCOUNT, first[0])


async def test_ninjatrader_files_forget_after_a_restart_and_a_reused_id_gets_new_fill_ids() -> None:
    from copytrader.brokers.errors import BrokerUnavailable

    async with PLATFORMS["ninjatrader-oif"].start() as harness:
        await harness.adapter.connect()
        tables = finished_tables(harness.adapter)
        tables[0].keep = 1
        book = harness.adapter.book  # type: ignore[attr-defined]
        fill_ids: list[str] = []
        subscription = harness.adapter.events()
        fills, ids = Fills(harness), names()
        first = await place_filled(harness, fills, ids, 3)
        assert tables[0].fingerprint_count == 2
        # the same client id placed again after its first order shrank: a second order, its
        # fill reported once under a fill id of its own (the first order's is not reused)
        await harness.adapter.place(PlaceOrder(ACCOUNT, first[0], harness.symbol, Side.SELL, 1))
        await wait_until(lambda: fills().get(first[0]) == 2, timeout_s=10, what="the second order's fill")
        while not subscription.queue.empty():
            event = subscription.queue.get_nowait()
            if isinstance(event, FillEvent) and event.broker_order_id == first[0]:
                fill_ids.append(event.fill_id)
        assert len(set(fill_ids)) == 2
        harness.simulator.restart()  # NinjaTrader restarts: the outgoing folder is wiped
        await wait_until(lambda: tables[0].fingerprint_count == 0, timeout_s=10, what="fingerprints dropped")
        assert book.memory.dropped >= 2 and book.memory.ended == {}
        await asyncio.sleep(0.2)  # a few more polls of the folder
        assert {name: fills()[name] for name in first} == {first[0]: 2, first[1]: 1, first[2]: 1}
        with pytest.raises(BrokerUnavailable, match="cannot tell"):
            await harness.adapter.lookup(ACCOUNT, first[1])
        subscription.close()


# -- FIX (Quantower) -------------------------------------------------------------------------
# FIX has no day's replay to read: the engine's resend brings what was missed (by sequence
# number), and the resync asks order by order (OrderStatusRequest). So the replay here is the
# whole session's reports resent (our next expected number set back to 1: the engine asks for
# a resend from 1, PossDupFlag=Y), and a fingerprint goes when a status request for its order
# is answered "unknown order" (fidelity F-X09..F-X11).


async def fix_replay_from_the_start(harness: Harness) -> None:
    """Drop the link; while it is down, set our next expected number back to 1, so the logon
    that follows makes the engine ask for (and get) every report of the session again."""
    import quickfix

    from copytrader.brokers.fix.settings import initiator_session_id

    adapter: Any = harness.adapter
    await harness.drop_connection(False)
    await wait_until(lambda: adapter.state is not ConnectionState.CONNECTED, timeout_s=10, what="the link dropped")
    session = quickfix.Session.lookupSession(initiator_session_id(adapter.fix))
    session.setNextTargetMsgSeqNum(1)
    await wait_until(lambda: adapter.state is ConnectionState.CONNECTED, timeout_s=30, what="the adapter reconnected")


async def test_fix_a_forgotten_order_replayed_after_a_reconnect_is_not_reported_again() -> None:
    async with PLATFORMS["fix"].start() as harness:
        await harness.adapter.connect()
        adapter: Any = harness.adapter
        tables = finished_tables(adapter)
        assert {id(table) for table in tables} == {id(adapter.book.finished)}
        adapter.book.finished.keep = 1
        fills, ids = Fills(harness), names()
        first = await place_filled(harness, fills, ids, 4)
        await wait_until(lambda: adapter.book.finished.fingerprint_count >= 3, timeout_s=10, what="old orders shrunk")
        assert set(adapter.book.forgotten) == {"bm1", "bm2", "bm3"}
        assert set(adapter.book.forgotten_ids) == set(first[:3])
        await fix_replay_from_the_start(harness)  # every report of the four orders again
        after = await place_filled(harness, fills, ids, 2)  # the stream after the replay, in order
        assert {name: fills()[name] for name in first + after} == dict.fromkeys(first + after, 1)
        assert adapter.router.old_news >= 3 * 2  # the replay was read: new + trade of each forgotten order
        assert len(adapter.book.orders) + len(adapter.book.forgotten) <= 6
        assert len(adapter.book.fills) <= 2 and len(adapter.book.states) <= 2


async def test_fix_fingerprints_go_when_the_counterparty_no_longer_knows_their_orders() -> None:
    async with PLATFORMS["fix"].start() as harness:
        harness.exchange.history_limit = 2  # the simulator forgets too (trimmed in batches)
        await harness.adapter.connect()
        adapter: Any = harness.adapter
        adapter.book.finished.keep = 1
        fills, ids = Fills(harness), names()
        first = await place_filled(harness, fills, ids, 8)
        assert adapter.book.finished.fingerprint_count >= 6
        await reconnect(harness)  # the resync asks about forgotten orders, oldest first
        after = await place_filled(harness, fills, ids, 1)
        kept = len(harness.exchange.account(harness.kernel_account).orders)
        await wait_until(
            lambda: adapter.book.finished.fingerprint_count <= kept, timeout_s=15, what="fingerprints dropped"
        )
        assert {name: fills()[name] for name in first + after} == dict.fromkeys(first + after, 1)
        assert len(adapter.book.forgotten) == adapter.book.finished.fingerprint_count
        assert len(adapter.book.forgotten_ids) <= kept
        # an order the counterparty forgot is one lookup cannot find either (it answers unknown)
        assert await adapter.lookup(ACCOUNT, "bm1") is None

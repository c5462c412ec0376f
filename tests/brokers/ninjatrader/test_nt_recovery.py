"""Reconnects, restarts, lookups that must say "cannot tell", unreadable input and instruction
folders that cannot be written."""

from __future__ import annotations

import dataclasses
import errno
import os
from decimal import Decimal
from pathlib import Path

import pytest
from conftest import AdapterFactory, session
from waiting import wait_until

from copytrader.brokers.errors import BrokerUnavailable
from copytrader.brokers.model import (
    ConnectionEvent,
    ConnectionState,
    FillEvent,
    OrderType,
    PlaceOrder,
    Side,
    TimeInForce,
)
from copytrader.brokers.ninjatrader import oif as oif_module
from copytrader.brokers.ninjatrader.adapter import NinjaTraderAdapter
from copytrader.brokers.ninjatrader.oif import SENTINEL
from copytrader.brokers.ninjatrader.simulator import NinjaTraderSimulator


def limit(client_id: str, price: str, quantity: int = 1) -> PlaceOrder:
    return PlaceOrder(
        "A", client_id, "ESZ6", Side.BUY, quantity, OrderType.LIMIT, Decimal(price), time_in_force=TimeInForce.GTC
    )


def fills(events: list[object], client_id: str) -> list[FillEvent]:
    return [e for e in events if isinstance(e, FillEvent) and e.client_order_id == client_id]


async def test_fills_while_the_ati_link_is_down_are_reported_once_after_reconnect(
    connect: AdapterFactory, sim: NinjaTraderSimulator
) -> None:
    adapter = await connect("ati")
    subscription = adapter.events()
    await adapter.place(limit("CTA1", "4990.00", quantity=2))
    sim.ati.hold_connections = True
    sim.ati.drop_all()
    await wait_until(lambda: adapter.state is ConnectionState.DEGRADED, timeout_s=5, what="link lost")
    sim.exchange.set_price("ESZ6", Decimal("4990.00"))  # fills while nobody hears of it
    sim.ati.hold_connections = False
    await wait_until(lambda: adapter.state is ConnectionState.CONNECTED, timeout_s=5, what="reconnected")
    seen: list[object] = []

    def collect() -> list[FillEvent]:
        while not subscription.queue.empty():
            seen.append(subscription.queue.get_nowait())
        return fills(seen, "CTA1")

    await wait_until(collect, timeout_s=5, what="the missed fill")
    sim.ati.drop_all()  # and once more: the same state pushed again reports nothing new
    await wait_until(lambda: adapter.reconnects == 2, timeout_s=5, what="second reconnect")
    await wait_until(lambda: adapter.state is ConnectionState.CONNECTED, timeout_s=5, what="connected again")
    collect()
    assert [(f.quantity, f.price) for f in fills(seen, "CTA1")] == [(2, Decimal("4990.00"))]
    snapshot = await adapter.snapshot("A")
    assert [(p.net_quantity, p.average_price) for p in snapshot.positions] == [(2, Decimal("4990.00"))]


async def test_a_fill_while_the_caller_had_us_disconnected_is_reported_on_connect(
    route: str, connect: AdapterFactory, sim: NinjaTraderSimulator
) -> None:
    adapter = await connect(route)
    events = adapter.events()
    await adapter.place(limit("CTH1", "4990.00"))
    await adapter.disconnect()
    sim.exchange.set_price("ESZ6", Decimal("4990.00"))
    await adapter.connect()
    seen: list[object] = []

    def collect() -> list[FillEvent]:
        while not events.queue.empty():
            seen.append(events.queue.get_nowait())
        return fills(seen, "CTH1")

    found = await wait_until(collect, timeout_s=5, what="the fill made while disconnected")
    assert [(f.quantity, f.price) for f in found] == [(1, Decimal("4990.00"))]


async def test_after_a_ninjatrader_restart_lookup_cannot_tell_on_tcp(
    connect: AdapterFactory, sim: NinjaTraderSimulator
) -> None:
    adapter = await connect("ati")
    sim.faults("Sim101").lose_response_next = 1  # NinjaTrader takes the PLACE, its answer is lost
    sim.ati.hold_connections = True
    with pytest.raises(BrokerUnavailable):
        await adapter.place(limit("CTB1", "4990.00"))
    sim.restart()  # and it restarts before we hear again: it forgets its ORDER IDs, the broker does not
    sim.ati.hold_connections = False
    await wait_until(lambda: adapter.reconnects == 1, timeout_s=5, what="reconnected after the restart")
    assert len(sim.exchange.orders_with_client_id("Sim101", "CTB1")) == 1  # so "none" would double it
    with pytest.raises(BrokerUnavailable, match="earlier ATI connection") as unknown:
        await adapter.lookup("A", "CTB1")
    assert unknown.value.retriable and not unknown.value.sent
    assert await adapter.lookup("A", "CTNEVER") is None  # never sent by us: NinjaTrader's list answers


async def test_a_lost_answer_is_sent_true_and_lookup_finds_the_order(
    connect: AdapterFactory, sim: NinjaTraderSimulator
) -> None:
    adapter = await connect("ati")
    sim.faults("Sim101").lose_response_next = 1
    with pytest.raises(BrokerUnavailable) as lost:
        await adapter.place(limit("CTC1", "4990.00"))
    assert lost.value.sent
    found = await adapter.lookup("A", "CTC1")
    assert found is not None and found.duplicate
    assert len(sim.exchange.orders_with_client_id("Sim101", "CTC1")) == 1


async def test_ninjatrader_losing_its_own_connection_degrades_the_session(
    route: str, connect: AdapterFactory, sim: NinjaTraderSimulator
) -> None:
    adapter = await connect(route)
    sim.set_connected(False)
    await wait_until(lambda: adapter.state is ConnectionState.DEGRADED, timeout_s=5, what="degraded")
    sim.set_connected(True)
    await wait_until(lambda: adapter.state is ConnectionState.CONNECTED, timeout_s=5, what="connected")


async def test_an_unreadable_value_push_is_reported_and_the_link_survives(
    connect: AdapterFactory, sim: NinjaTraderSimulator
) -> None:
    adapter = await connect("ati")
    events = adapter.events()
    sim.ati.broadcast("MarketPosition|ES 12-26|Sim101", "lots")
    sim.ati.broadcast("OrderStatus|X", "Exploded")
    reports = await wait_until(
        lambda: len(adapter.bad_input) >= 2 and adapter.bad_input, timeout_s=5, what="two bad values reported"
    )
    assert "'lots'" in reports[0] and "Exploded" in reports[1]
    assert any(isinstance(e, ConnectionEvent) and e.reason for e in [events.queue.get_nowait()])
    await adapter.place(PlaceOrder("A", "CTE1", "ESZ6", Side.BUY, 1))  # still works


# -- the file route ---------------------------------------------------------------------------------
async def test_every_instruction_file_has_a_new_name_and_no_temporary_file_stays(
    connect: AdapterFactory, sim: NinjaTraderSimulator
) -> None:
    adapter = await connect("oif")
    sim.folders.paused = True  # NinjaTrader busy: the files wait
    names = set()
    for n in range(3):
        assert adapter.folders is not None
        names.add(adapter.folders.write([f"CANCEL;;;;;;;;;;NONE{n};;"], []).name)
    assert len(names) == 3 and all(n.startswith("oif") and n.endswith(".txt") for n in names)
    assert sorted(p.name for p in sim.folders.incoming.iterdir()) == sorted(names)
    sim.folders.paused = False
    await wait_until(lambda: not any(sim.folders.incoming.iterdir()), timeout_s=5, what="files taken")


async def test_lookup_waits_for_a_file_still_in_incoming_then_cannot_tell(
    connect: AdapterFactory, sim: NinjaTraderSimulator
) -> None:
    adapter = await connect("oif", request_timeout_s=0.3)
    sim.folders.paused = True  # NinjaTrader does not read its folder: no word on the PLACE
    with pytest.raises(BrokerUnavailable, match="no word") as timed_out:
        await adapter.place(limit("CTF1", "4990.00"))
    assert timed_out.value.sent
    with pytest.raises(BrokerUnavailable, match="still waits in the incoming folder"):
        await adapter.lookup("A", "CTF1")
    sim.folders.paused = False
    found = await wait_until(lambda: adapter.book.status_of("CTF1"), timeout_s=5, what="NinjaTrader took it")
    assert found is not None and (await adapter.lookup("A", "CTF1")) is not None


async def test_lookup_on_files_says_none_only_when_the_folder_was_not_wiped(
    connect: AdapterFactory, sim: NinjaTraderSimulator
) -> None:
    adapter = await connect("oif")
    with pytest.raises(BrokerUnavailable, match="before this session began"):
        await adapter.lookup("A", "CTNEVER")  # a fresh sentinel: an earlier NinjaTrader run may have had it
    await adapter.disconnect()
    again = await connect("oif")  # a later session: the sentinel survived, so no restart since
    assert await again.lookup("A", "CTNEVER") is None
    sim.folders.paused = True
    again.nt = dataclasses.replace(again.nt, request_timeout_s=0.2)
    with pytest.raises(BrokerUnavailable):
        await again.place(limit("CTG1", "4990.00"))
    for taken in sim.folders.incoming.iterdir():  # NinjaTrader took the file, then restarted
        taken.unlink()
    sim.restart()  # the outgoing folder is wiped
    await wait_until(lambda: again.generation == 1, timeout_s=5, what="the wipe noticed")
    with pytest.raises(BrokerUnavailable, match="wiped"):
        await again.lookup("A", "CTG1")


async def test_an_unwritable_incoming_folder_is_a_clear_error_and_nothing_is_placed(
    sim: NinjaTraderSimulator,
) -> None:
    # /sys refuses new files even to root (a chmod would not stop root, which CI runs as)
    adapter = NinjaTraderAdapter(session(sim.oif_url, incoming="/sys", outgoing=str(sim.folders.outgoing)))
    await adapter.connect()
    try:
        with pytest.raises(BrokerUnavailable, match="cannot write an order instruction file") as refused:
            await adapter.place(PlaceOrder("A", "CTU1", "ESZ6", Side.BUY, 1))
        assert refused.value.code == "OIF_FOLDER_UNWRITABLE" and not refused.value.sent
        assert "nothing was placed" in refused.value.message
        assert sim.exchange.orders_with_client_id("Sim101", "CTU1") == []
    finally:
        await adapter.disconnect()


async def test_a_full_disk_is_a_clear_error_and_leaves_no_file(
    connect: AdapterFactory, sim: NinjaTraderSimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    adapter = await connect("oif")

    def full(_fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(oif_module.os, "fsync", full)
    with pytest.raises(BrokerUnavailable, match="full") as refused:
        await adapter.place(PlaceOrder("A", "CTS1", "ESZ6", Side.BUY, 1))
    assert refused.value.code == "OIF_FOLDER_FULL" and not refused.value.sent
    assert list(sim.folders.incoming.iterdir()) == []
    monkeypatch.undo()
    await adapter.place(PlaceOrder("A", "CTS2", "ESZ6", Side.BUY, 1))  # room again: it goes through
    assert sim.exchange.orders_with_client_id("Sim101", "CTS1") == []


async def test_missing_folders_fail_connect_without_retrying_blindly(tmp_path: Path) -> None:
    adapter = NinjaTraderAdapter(session(f"oif://{tmp_path}/nowhere"))
    with pytest.raises(BrokerUnavailable, match="does not exist") as missing:
        await adapter.connect()
    assert not missing.value.sent and adapter.state is ConnectionState.DISCONNECTED


async def test_an_unreadable_outgoing_file_is_reported_once(connect: AdapterFactory, sim: NinjaTraderSimulator) -> None:
    adapter = await connect("oif")
    (sim.folders.outgoing / "CTZ1.txt").write_text("Working;one;5000\r\n")
    await wait_until(lambda: adapter.bad_input, timeout_s=5, what="the bad file reported")
    assert "CTZ1.txt" in adapter.bad_input[0]
    assert (sim.folders.outgoing / SENTINEL).exists()
    assert len(adapter.bad_input) == 1
    (sim.folders.outgoing / "CTZ2.txt").write_text("Working;0;0\r\n" * 1000)  # not a file NinjaTrader writes
    await wait_until(lambda: len(adapter.bad_input) == 2, timeout_s=5, what="the oversized file reported")
    assert "bytes; not read" in adapter.bad_input[1] and adapter.book.status_of("CTZ2") is None

"""The simulator on its own, driven the way NinjaTrader is: raw ATI tokens on its TCP port and
instruction files in its incoming folder. It refuses what NinjaTrader would refuse (with the
reason in its log), never deduplicates a repeated ORDER ID, and moves orders through NT8's
states."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from nt_helpers import HELP_GUIDE_LINES, frozen
from waiting import wait_until

from copytrader.brokers.ninjatrader import tokens
from copytrader.brokers.ninjatrader.simulator import NinjaTraderSimulator, create_simulator
from copytrader.brokers.ninjatrader.simulator.desk import NtDesk


class RawClient:
    """A bare ATI client: sends tokens, keeps every VALUE in arrival order."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.values: list[tuple[str, str]] = []
        self.decoder = tokens.TokenDecoder()
        self.closed = False
        self.task = asyncio.get_running_loop().create_task(self._read())

    @classmethod
    async def open(cls, sim: NinjaTraderSimulator) -> RawClient:
        client = cls(*await asyncio.open_connection("127.0.0.1", sim.port))
        await wait_until(lambda: client.last("ATI"), timeout_s=5.0, what="the ATI value")
        return client

    async def _read(self) -> None:
        while data := await self.reader.read(65536):
            self.decoder.feed(data)
            self.values += [f.args for f in self.decoder.frames() if isinstance(f, tokens.Frame)]  # type: ignore[misc]  # VALUE frames carry (key, value)
        self.closed = True

    def last(self, key: str) -> str | None:
        found = [v for k, v in self.values if k == key]
        return found[-1] if found else None

    def states(self, order_id: str) -> list[str]:
        return [v for k, v in self.values if k == f"OrderStatus|{order_id}"]

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def close(self) -> None:
        self.writer.close()
        self.task.cancel()


async def test_on_connect_the_server_tells_its_state_and_ati_last(sim: NinjaTraderSimulator) -> None:
    client = await RawClient.open(sim)
    keys = [k for k, _ in client.values]
    assert keys[-1] == "ATI" and client.last("ATI") == "True"
    assert {"Orders|Sim101", "Orders|Sim102", "Orders|Sim103", "CashValue|Sim101"} <= set(keys)
    await client.close()


async def test_a_market_order_goes_through_nt8_states_and_updates_the_position(sim: NinjaTraderSimulator) -> None:
    client = await RawClient.open(sim)
    await client.send(tokens.command("PLACE;Sim101;ES 12-26;BUY;2;MARKET;;;DAY;;M1;;"))
    await wait_until(lambda: client.last("OrderStatus|M1") == "Filled", timeout_s=5.0, what="M1 filled")
    assert client.states("M1") == ["Submitted", "Working", "Filled"]
    assert client.last("Filled|M1") == "2" and Decimal(client.last("AvgFillPrice|M1") or "0") == Decimal("5000")
    await wait_until(
        lambda: client.last("MarketPosition|ES 12-26|Sim101") == "2", timeout_s=5.0, what="position pushed"
    )
    assert client.last("Orders|Sim101") == "M1"
    await client.close()


async def test_limit_change_partial_fills_and_cancel(sim: NinjaTraderSimulator) -> None:
    client = await RawClient.open(sim)
    sim.faults("Sim101").partial_fill_lot = 1
    await client.send(tokens.command("PLACE;Sim101;ES 12-26;SELL;3;LIMIT;5010.00;;GTC;;L1;;"))
    await wait_until(lambda: client.last("OrderStatus|L1") == "Working", timeout_s=5.0, what="L1 working")
    await client.send(tokens.command("CHANGE;;;;0;;5005.00;0;;;L1;;"))
    await wait_until(lambda: "ChangeSubmitted" in client.states("L1"), timeout_s=5.0, what="change submitted")
    order = sim.desk.latest("L1")
    assert order is not None and order.limit_price == Decimal("5005.00")
    sim.exchange.set_price("ESZ6", Decimal("5005.00"))
    await wait_until(lambda: client.last("OrderStatus|L1") == "PartFilled", timeout_s=5.0, what="a partial fill")
    assert client.last("Filled|L1") == "1"
    await client.send(tokens.command("CANCEL;;;;;;;;;;L1;;"))
    await wait_until(lambda: client.last("OrderStatus|L1") == "Cancelled", timeout_s=5.0, what="cancelled")
    assert client.states("L1")[-2:] == ["CancelPending", "Cancelled"]
    await client.close()


async def test_refused_lines_are_logged_with_their_reason_and_get_no_reply(sim: NinjaTraderSimulator) -> None:
    client = await RawClient.open(sim)
    refused = {
        "PLACE;Sim101;ES 12-26;BUY;1;MARKET;;;DAY;;R1;": "expected 13",
        "PLACE;Nobody;ES 12-26;BUY;1;MARKET;;;DAY;;R2;;": "unknown to NinjaTrader",
        "PLACE;Sim101;ZZ 12-26;BUY;1;MARKET;;;DAY;;R3;;": "unknown instrument",
        "PLACE;Sim101;ES 12-26;BUY;1;TRAILSTOP;;;DAY;;R4;;": "ORDER TYPE",
        "PLACE;Sim101;ES 12-26;BUY;1;LIMIT;4990,25;;DAY;;R5;;": "US decimal",
        "PLACE;Sim101;ES 12-26;BUY;1;MARKET;;;DAY;;R6;MyAtm;": "ATM strategy",
        "CANCEL;;;;;;;;;;NEVER;;": "unknown",
        "REVERSEPOSITION;Sim101;ES 12-26;SELL;1;MARKET;;;DAY;;;;": "not carried out",
    }
    for line in refused:
        await client.send(tokens.command(line))
    await client.send(tokens.command("PLACE;Sim101;ES 12-26;BUY;1;MARKET;;;DAY;;OK1;;"))
    await wait_until(
        lambda: client.last("OrderStatus|OK1") == "Filled", timeout_s=5.0, what="the good line after the bad ones"
    )
    assert len(sim.desk.log) == len(refused)
    for entry, (line, expected) in zip(sim.desk.log, refused.items(), strict=True):
        assert entry.line == line and expected in entry.reason
    assert not any(k.endswith(("|R1", "|R2", "|R3", "|R4", "|R5", "|R6")) for k, _ in client.values)
    await client.close()


async def test_a_repeated_order_id_is_a_second_order_never_deduplicated(sim: NinjaTraderSimulator) -> None:
    client = await RawClient.open(sim)
    for _ in range(2):
        await client.send(tokens.command("PLACE;Sim101;ES 12-26;BUY;1;MARKET;;;DAY;;DUP;;"))
    await wait_until(lambda: client.last("Orders|Sim101") == "DUP|DUP", timeout_s=5.0, what="both listed")
    assert len(sim.exchange.orders_with_client_id("Sim101", "DUP")) == 2
    await wait_until(
        lambda: client.last("MarketPosition|ES 12-26|Sim101") == "2", timeout_s=5.0, what="two contracts long"
    )
    await client.close()


async def test_kernel_rejects_and_a_disconnected_ninjatrader_reject(sim: NinjaTraderSimulator) -> None:
    client = await RawClient.open(sim)
    sim.faults("Sim101").reject_next = "risk: max position exceeded"
    await client.send(tokens.command("PLACE;Sim101;ES 12-26;BUY;1;MARKET;;;DAY;;X1;;"))
    await wait_until(lambda: client.last("OrderStatus|X1") == "Rejected", timeout_s=5.0, what="X1 rejected")
    sim.set_connected(False)
    await wait_until(lambda: client.last("ATI") == "False", timeout_s=5.0, what="ATI False")
    assert (sim.folders.outgoing / "Simulated Data Feed.txt").read_text().strip() == "DISCONNECTED"
    await client.send(tokens.command("PLACE;Sim101;ES 12-26;BUY;1;MARKET;;;DAY;;X2;;"))
    await wait_until(
        lambda: client.last("OrderStatus|X2") == "Rejected", timeout_s=5.0, what="X2 rejected while disconnected"
    )
    assert "disconnected" in sim.desk.log[-1].reason
    await client.close()


async def test_account_wide_commands(sim: NinjaTraderSimulator) -> None:
    client = await RawClient.open(sim)
    await client.send(tokens.command("PLACE;Sim101;ES 12-26;BUY;2;MARKET;;;DAY;;P1;;"))
    await client.send(tokens.command("PLACE;Sim102;NQ 12-26;SELL;1;MARKET;;;DAY;;P2;;"))
    await client.send(tokens.command("PLACE;Sim101;ES 12-26;BUY;1;LIMIT;4900.00;;GTC;;W1;;"))
    await client.send(tokens.command("PLACE;Sim102;ES 12-26;BUY;1;LIMIT;4900.00;;GTC;;W2;;"))
    await wait_until(lambda: client.last("OrderStatus|W2") == "Working", timeout_s=5.0, what="W2 working")
    await client.send(tokens.command("CLOSEPOSITION;Sim101;ES 12-26;;;;;;;;;;"))
    await wait_until(lambda: client.last("MarketPosition|ES 12-26|Sim101") == "0", timeout_s=5.0, what="Sim101 flat")
    assert client.last("OrderStatus|W1") == "Cancelled" and client.last("OrderStatus|W2") == "Working"
    await client.send(tokens.command("CANCELALLORDERS;;;;;;;;;;;;"))
    await wait_until(
        lambda: client.last("OrderStatus|W2") == "Cancelled", timeout_s=5.0, what="every account's orders cancelled"
    )
    await client.send(tokens.command("FLATTENEVERYTHING;;;;;;;;;;;;"))
    await wait_until(
        lambda: client.last("MarketPosition|NQ 12-26|Sim102") == "0", timeout_s=5.0, what="everything flat"
    )
    await client.close()


async def test_an_unreadable_stream_closes_that_connection_only(sim: NinjaTraderSimulator) -> None:
    bad = await RawClient.open(sim)
    await bad.send(b"7\x00garbage\x00")
    await wait_until(lambda: bad.closed, timeout_s=5.0, what="the server closing the unreadable connection")
    assert "unknown message type" in sim.ati.bad_frames[-1]
    good = await RawClient.open(sim)
    await good.send(tokens.command("PLACE;Sim101;ES 12-26;BUY;1;MARKET;;;DAY;;G1;;"))
    await wait_until(
        lambda: good.last("OrderStatus|G1") == "Filled", timeout_s=5.0, what="a new connection still served"
    )
    await good.close()


async def test_latency_is_injected_before_each_command(tmp_path: Path) -> None:
    sim = create_simulator(exchange=frozen(), folder=tmp_path / "nt", latency=150)
    await sim.start()
    try:
        client = await RawClient.open(sim)
        started = asyncio.get_running_loop().time()
        await client.send(tokens.command("PLACE;Sim101;ES 12-26;BUY;1;MARKET;;;DAY;;T1;;"))
        await wait_until(lambda: client.last("OrderStatus|T1") == "Filled", timeout_s=5.0, what="T1 filled")
        assert asyncio.get_running_loop().time() - started >= 0.15
        await client.close()
    finally:
        await sim.stop()


async def test_the_help_guide_example_lines_are_carried_out_in_one_instruction_file(
    sim: NinjaTraderSimulator,
) -> None:
    """Every format line of N-oif, filled in, in one file: the simulator carries out each command
    and refuses only the ATM ones it does not simulate (stricter than NinjaTrader, never kinder)."""
    ordered = sorted(HELP_GUIDE_LINES, key=lambda line: not line.startswith("PLACE"))  # orders first
    _drop_oif(sim, "oif1.txt", "".join(f"{line}\r\n" for line in ordered))
    await wait_until(lambda: sim.desk.lines == len(ordered), timeout_s=5.0, what="every line read")
    assert {r.line.split(";")[0] for r in sim.desk.log} == {"CLOSESTRATEGY", "REVERSEPOSITION", "CANCEL", "CHANGE"}
    assert all("not carried out" in r.reason or "already Filled" in r.reason for r in sim.desk.log)
    assert sim.desk.reports["ORDER1"].state.value == "Filled"  # a sell limit under the market trades at once
    assert sim.desk.reports["ORDER2"].state.value == "Cancelled"  # CANCELALLORDERS
    assert sim.exchange.open_orders("Sim101") == [] and not any(
        p.net_quantity for p in sim.exchange.account("Sim101").positions.values()
    )  # FLATTENEVERYTHING


# -- the file route -------------------------------------------------------------------------------------
def _drop_oif(sim: NinjaTraderSimulator, name: str, text: str) -> None:
    temp = sim.folders.incoming / f".{name}.tmp"
    temp.write_text(text)
    temp.rename(sim.folders.incoming / name)


async def test_instruction_files_are_taken_and_answered_in_the_outgoing_folder(sim: NinjaTraderSimulator) -> None:
    _drop_oif(
        sim,
        "oif1.txt",
        "PLACE;Sim101;ES 12-26;BUY;1;MARKET;;;DAY;;F1;;\r\nPLACE;Sim101;ES 12-26;BUY;1;MARKET;;;DAY;;;;\r\n",
    )
    out = sim.folders.outgoing
    await wait_until(
        lambda: (out / "F1.txt").exists() and (out / "F1.txt").read_text().startswith("Filled"),
        timeout_s=5.0,
        what="F1.txt",
    )
    assert (out / "F1.txt").read_text().strip() == "Filled;1;5000.0000000000"
    position = out / "ES 12-26 Globex_Sim101_Position.txt"
    await wait_until(
        lambda: position.exists() and position.read_text().strip().startswith("LONG;2"), timeout_s=5.0, what="position"
    )
    assert not list(sim.folders.incoming.glob("oif*.txt"))  # taken and deleted
    assert len([p for p in out.glob("*.txt") if not p.name.endswith("_Position.txt")]) == 2  # F1 + connection
    sim.restart()
    assert sorted(p.name for p in out.iterdir()) == ["Simulated Data Feed.txt"]  # wiped, as on a restart


async def test_files_not_named_oif_are_ignored_and_garbage_lines_do_not_stop_the_next(
    sim: NinjaTraderSimulator,
) -> None:
    _drop_oif(sim, "orders.txt", "PLACE;Sim101;ES 12-26;BUY;1;MARKET;;;DAY;;IGN;;\r\n")
    _drop_oif(sim, "OIF2.TXT", "garbage\r\nPLACE;Sim101;ES 12-26;BUY;1;MARKET;;;DAY;;G2;;\r\n")
    await wait_until(lambda: (sim.folders.outgoing / "G2.txt").exists(), timeout_s=5.0, what="G2 answered")
    assert (sim.folders.incoming / "orders.txt").exists() and sim.desk.latest("IGN") is None
    assert "expected 13" in sim.desk.log[-1].reason


# -- fuzz the line parser behind both routes ------------------------------------------------------------
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(garbage=st.text(alphabet=st.characters(blacklist_characters="\r\n"), max_size=120))
def test_fuzz_garbage_line_then_a_good_one_still_works(garbage: str) -> None:
    desk = NtDesk(frozen(), ["Sim101"])
    desk.exchange.add_listener(desk.on_event)
    desk.execute(garbage)
    assert desk.execute("PLACE;Sim101;ES 12-26;BUY;1;MARKET;;;DAY;;AFTER;;") is None
    assert desk.reports["AFTER"].state.value == "Filled"
    assert all(r.reason for r in desk.log)

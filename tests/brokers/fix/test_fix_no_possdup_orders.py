"""Exactly once at the session level: a counterparty's ResendRequest over our NewOrderSingle is
answered with a gap fill, never with the order again (PossDupFlag=Y), so it cannot be executed
twice. The counterparty here is a raw socket speaking FIX, so nothing on its side is an engine's
kindness."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from fix_script import SOH, frame

from copytrader.brokers.base import SessionConfig
from copytrader.brokers.errors import BrokerUnavailable
from copytrader.brokers.fix.adapter import FixAdapter
from copytrader.brokers.model import PlaceOrder, Side


class RawCounterparty:
    """A TCP listener that reads FIX messages and sends what the test tells it."""

    def __init__(self) -> None:
        self.messages: asyncio.Queue[dict[int, str]] = asyncio.Queue()
        self.writer: asyncio.StreamWriter | None = None
        self.server: asyncio.Server | None = None
        self.port = 0

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.writer = writer
        buffer = b""
        while chunk := await reader.read(65536):
            buffer += chunk
            while (end := buffer.find(b"\x0110=")) >= 0 and (stop := buffer.find(b"\x01", end + 1)) >= 0:
                raw, buffer = buffer[: stop + 1], buffer[stop + 1 :]
                fields = [part.split("=", 1) for part in raw.decode().split(SOH) if part]
                self.messages.put_nowait({int(tag): value for tag, value in reversed(fields)})

    def send(self, line: str) -> None:
        assert self.writer is not None
        self.writer.write(frame(line, "FIX.4.4"))

    async def next(self) -> dict[int, str]:
        return await asyncio.wait_for(self.messages.get(), 5)

    async def stop(self) -> None:
        if self.writer is not None:
            self.writer.close()
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()


@pytest.fixture
async def counterparty() -> AsyncIterator[RawCounterparty]:
    peer = RawCounterparty()
    await peer.start()
    try:
        yield peer
    finally:
        await peer.stop()


@pytest.mark.parametrize("persist", [False, True], ids=["store-holds-no-orders", "toapp-rewrites-the-resend"])
async def test_a_resend_request_over_our_order_gets_a_gap_fill(
    counterparty: RawCounterparty, tmp_path: Path, persist: bool
) -> None:
    adapter = FixAdapter(
        SessionConfig(
            platform="fix",
            session_id="raw",
            accounts={"A": "ACC1"},
            endpoint=f"fix://127.0.0.1:{counterparty.port}",
            username="ME",
            secret="pw",
            options={
                "fix_version": "FIX.4.4",
                "sender_comp_id": "ME",
                "target_comp_id": "THEM",
                "store_dir": str(tmp_path),
                "request_timeout_s": 1.0,
                "persist_messages": persist,
            },
        )
    )
    connecting = asyncio.ensure_future(adapter.connect())
    try:
        logon = await counterparty.next()
        assert (logon[35], logon[553], logon[554]) == ("A", "ME", "pw")
        counterparty.send("8=FIX.4.4|35=A|34=1|49=THEM|52=<TIME>|56=ME|98=0|108=30")
        await connecting
        placing = asyncio.ensure_future(adapter.place(PlaceOrder("A", "C1", "ESZ6", Side.BUY, 1)))
        test_request = await counterparty.next()  # sent after each logon (F-X12): answered as an engine must
        assert (test_request[35], test_request[34]) == ("1", "2")
        counterparty.send(f"8=FIX.4.4|35=0|34=2|49=THEM|52=<TIME>|56=ME|112={test_request[112]}")
        order = await counterparty.next()
        assert (order[35], order[11], order[34]) == ("D", "C1", "3")
        counterparty.send("8=FIX.4.4|35=2|34=3|49=THEM|52=<TIME>|56=ME|7=2|16=0")  # "resend from 2"
        answers = [await counterparty.next()]  # gap fills up to our next number, 4 (one per stored message)
        while answers[-1].get(36) != "4":
            answers.append(await counterparty.next())
        assert {(a[35], a.get(123), a.get(43)) for a in answers} == {("4", "Y", "Y")}  # never the order again
        with pytest.raises(BrokerUnavailable):  # nobody answered the order: its outcome is unknown
            await placing
    finally:
        connecting.cancel()
        await adapter.disconnect()

"""The simulated ATI TCP server (NinjaTrader's "ATI server port", 36973 by default).

NUL-terminated ASCII tokens (``tokens.py``). A client sends COMMAND lines (carried out by the
desk), CONFIRMORDERS, SUBSCRIBE and DATA (accepted, no market data is served). NinjaTrader
pushes VALUE(key, value) for every change: ``OrderStatus|<id>``, ``Filled|<id>``,
``AvgFillPrice|<id>``, ``Orders|<acct>``, ``MarketPosition|<instr>|<acct>``,
``AvgEntryPrice|<instr>|<acct>``, ``CashValue|<acct>`` and ``ATI``. A COMMAND gets no reply of
its own: the client learns what happened from the pushes (N-tk).

Modelled where NinjaTrader is silent (docs/fidelity/ninjatrader.md): on connect the server
pushes what it holds (each account's order list, each order's values, positions, cash) and
then ``ATI`` = ``True``, the key the public client waits for before it sends. A token stream
that cannot be read (not ASCII, an unknown message type, no NUL in 64 KiB) closes the
connection; a bad COMMAND line is refused in the desk's log and the stream goes on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from decimal import Decimal

from ...simkernel.latency import Latency
from .. import tokens
from ..commandline import FIELD_COUNT
from ..states import OrderReport, PositionReport, price_text
from ..symbols import SymbolError, to_instrument
from .desk import NtDesk

log = logging.getLogger(__name__)


@dataclass(eq=False)
class AtiClient:
    writer: asyncio.StreamWriter
    closed: bool = False
    muted: bool = False  # fault: the answer of the command being carried out is lost
    confirm_orders: int = 0

    def send(self, data: bytes) -> None:
        if self.closed or self.muted or self.writer.is_closing():
            return
        self.writer.write(data)

    def reset(self) -> None:
        if not self.closed:
            self.closed = True
            self.writer.transport.abort()

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.writer.close()


class AtiServer:
    def __init__(self, desk: NtDesk, host: str, port: int, latency: Latency) -> None:
        self.desk = desk
        self.host, self.port = host, port
        self.latency = latency
        self.clients: set[AtiClient] = set()
        self.bad_frames: list[str] = []
        #: Test hook: NinjaTrader is not listening (each connection is closed at once).
        self.hold_connections = False
        self._server: asyncio.Server | None = None
        self._handlers: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        for client in list(self.clients):
            client.reset()
        server, self._server = self._server, None
        if server is not None:
            server.close()
            await server.wait_closed()
        handlers = [task for task in self._handlers if task is not asyncio.current_task()]
        for task in handlers:
            task.cancel()
        await asyncio.gather(*handlers, return_exceptions=True)

    def drop_all(self) -> None:
        for client in list(self.clients):
            client.reset()

    # -- pushes --------------------------------------------------------------------------
    def broadcast(self, key: str, text: str) -> None:
        data = tokens.value(key, text)
        for client in list(self.clients):
            client.send(data)

    def push_order(self, account: str, nt_id: str, report: OrderReport, tagged: bool) -> None:
        for key, text in order_values(nt_id, report):
            self.broadcast(key, text)

    def push_position(self, account: str, instrument: str, report: PositionReport) -> None:
        for key, text in position_values(account, instrument, report):
            self.broadcast(key, text)

    def push_list(self, account: str, ids: list[str]) -> None:
        self.broadcast(f"Orders|{account}", "|".join(ids))

    def push_connection(self, connected: bool) -> None:
        self.broadcast("ATI", "True" if connected else "False")

    def _state(self) -> list[tuple[str, str]]:
        """Everything a newly connected client is told, ``ATI`` last."""
        values: list[tuple[str, str]] = []
        for account in self.desk.accounts:
            ids = self.desk.order_ids(account)
            values.append((f"Orders|{account}", "|".join(ids)))
            for nt_id in dict.fromkeys(ids):
                report = self.desk.reports.get(nt_id)
                if report is not None:
                    values.extend(order_values(nt_id, report))
            sim_account = self.desk.exchange.account(account)
            values.append((f"CashValue|{account}", price_text(sim_account.balance)))
            for symbol, position in sim_account.positions.items():
                try:
                    instrument = to_instrument(symbol)
                except SymbolError:
                    continue
                held = PositionReport(position.net_quantity, position.average_price or Decimal(0))
                values.extend(position_values(account, instrument, held))
        values.append(("ATI", "True" if self.desk.connected else "False"))
        return values

    # -- one connection ------------------------------------------------------------------
    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        client = AtiClient(writer)
        task = asyncio.current_task()
        if task is not None:
            self._handlers.add(task)
            task.add_done_callback(self._handlers.discard)
        if self.hold_connections:
            client.reset()
            return
        self.clients.add(client)
        decoder = tokens.TokenDecoder()
        try:
            for key, text in self._state():
                client.send(tokens.value(key, text))
            while not client.closed and (data := await reader.read(65536)):
                decoder.feed(data)
                for frame in decoder.frames():
                    if client.closed:
                        break
                    await self._handle(client, frame)
                await writer.drain()
        except tokens.FramingError as exc:
            self.bad_frames.append(str(exc))
            log.warning("ATI simulator: unreadable stream, closing the connection: %s", exc)
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass  # a cancel comes from stop(): the handler ends quietly, never logged as an error
        except Exception:  # a bug in one handler ends that connection, never the server
            log.exception("ATI simulator: connection handler failed; closing that connection")
        finally:
            self.clients.discard(client)
            client.close()
            with contextlib.suppress(ConnectionError, asyncio.CancelledError):
                await writer.wait_closed()

    async def _handle(self, client: AtiClient, frame: tokens.Frame | tokens.BadMessage) -> None:
        if isinstance(frame, tokens.BadMessage):
            self.bad_frames.append(str(frame))
            return
        if frame.type is tokens.MessageType.COMMAND:
            await self.latency.wait()
            line = frame.args[0]
            lost = self._answer_lost(line)
            client.muted = lost
            self.desk.execute(line)
            client.muted = False
            if lost:
                client.reset()
        elif frame.type is tokens.MessageType.CONFIRMORDERS:
            client.confirm_orders = int(frame.args[0])
        # SUBSCRIBE and DATA are taken and ignored: this simulator serves no market data.

    def _answer_lost(self, line: str) -> bool:
        """Fault ``lose_response_next``/``_rate`` of the line's account (CHANGE and CANCEL name
        none: the account of the order they name)."""
        fields = line.split(";")
        account = fields[1] if len(fields) == FIELD_COUNT else ""
        if not account and len(fields) == FIELD_COUNT:
            order = self.desk.latest(fields[10])
            account = order.account if order is not None else ""
        if account not in self.desk.exchange.accounts:
            return False
        return self.desk.exchange.account(account).faults.take_lose_response()


def order_values(nt_id: str, report: OrderReport) -> list[tuple[str, str]]:
    """Filled and AvgFillPrice before OrderStatus, so a client reading the state reads the
    quantities that go with it."""
    return [
        (f"Filled|{nt_id}", str(report.filled)),
        (f"AvgFillPrice|{nt_id}", price_text(report.average_price)),
        (f"OrderStatus|{nt_id}", report.state.value),
    ]


def position_values(account: str, instrument: str, report: PositionReport) -> list[tuple[str, str]]:
    """AvgEntryPrice before MarketPosition (the signed quantity), for the same reason."""
    return [
        (f"AvgEntryPrice|{instrument}|{account}", price_text(report.average_price)),
        (f"MarketPosition|{instrument}|{account}", str(report.net)),
    ]

"""A DTC server for bad-input tests, built on the codec: it logs anyone on, answers the adapter's
resync requests with "nothing", and lets the test write any bytes to the latest connection."""

from __future__ import annotations

import asyncio
import contextlib

from copytrader.brokers.dtc.codec import Message, StreamDecoder, encode, make
from copytrader.brokers.dtc.messages import Encoding, MsgType

ACCOUNT = "SCRIPTED-1"

_EMPTY = {
    MsgType.OPEN_ORDERS_REQUEST: (MsgType.ORDER_UPDATE, {"TotalNumMessages": 1, "MessageNumber": 1, "NoOrders": 1}),
    MsgType.CURRENT_POSITIONS_REQUEST: (
        MsgType.POSITION_UPDATE,
        {"TotalNumberMessages": 1, "MessageNumber": 1, "NoPositions": 1},
    ),
    MsgType.HISTORICAL_ORDER_FILLS_REQUEST: (
        MsgType.HISTORICAL_ORDER_FILL_RESPONSE,
        {"TotalNumberMessages": 1, "MessageNumber": 1, "NoOrderFills": 1},
    ),
    MsgType.TRADE_ACCOUNTS_REQUEST: (
        MsgType.TRADE_ACCOUNT_RESPONSE,
        {"TotalNumberMessages": 1, "MessageNumber": 1, "TradeAccount": ACCOUNT},
    ),
    MsgType.ACCOUNT_BALANCE_REQUEST: (
        MsgType.ACCOUNT_BALANCE_UPDATE,
        {"TotalNumberMessages": 1, "MessageNumber": 1, "CashBalance": 1000.0, "TradeAccount": ACCOUNT},
    ),
}


class ScriptedServer:
    def __init__(self) -> None:
        self.refuse: set[MsgType] = set()  # requests answered with their reject message
        self.order_answer: dict[str, object] = {}  # set: SUBMIT_NEW_SINGLE_ORDER answered with these fields
        self.redirect_to = ""  # set: every logon is answered LOGON_RECONNECT_NEW_ADDRESS to it
        self.connections: list[tuple[asyncio.StreamWriter, StreamDecoder]] = []
        self.logged_on = asyncio.Event()
        self._server: asyncio.Server | None = None
        self.port = 0

    async def start(self) -> ScriptedServer:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        for writer, _ in self.connections:
            writer.close()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.port}"

    def send(self, message: Message) -> None:
        writer, decoder = self.connections[-1]
        writer.write(encode(message, decoder.encoding))

    def send_raw(self, data: bytes) -> None:
        self.connections[-1][0].write(data)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        decoder = StreamDecoder(Encoding.BINARY, exact_size=False)
        self.connections.append((writer, decoder))
        with contextlib.suppress(ConnectionError):
            while data := await reader.read(65536):
                decoder.feed(data)
                for item in decoder:
                    if isinstance(item, Message):
                        self._answer(writer, decoder, item)
                await writer.drain()

    def _answer(self, writer: asyncio.StreamWriter, decoder: StreamDecoder, msg: Message) -> None:
        def reply(message: Message) -> None:
            writer.write(encode(message, decoder.encoding))

        if msg.type is MsgType.ENCODING_REQUEST:
            reply(make(MsgType.ENCODING_RESPONSE, Encoding=msg.as_int("Encoding")))
            decoder.encoding = Encoding(msg.as_int("Encoding"))
        elif msg.type is MsgType.LOGON_REQUEST and self.redirect_to:
            reply(make(MsgType.LOGON_RESPONSE, Result=4, ReconnectAddress=self.redirect_to, ResultText="moved"))
        elif msg.type is MsgType.LOGON_REQUEST:
            reply(make(MsgType.LOGON_RESPONSE, Result=1, TradingIsSupported=1))
            self.logged_on.set()
        elif msg.type is MsgType.HISTORICAL_ORDER_FILLS_REQUEST and msg.type in self.refuse:
            reply(
                make(MsgType.HISTORICAL_ORDER_FILLS_REJECT, RequestID=msg.as_int("RequestID"), RejectText="no history")
            )
        elif msg.type is MsgType.SUBMIT_NEW_SINGLE_ORDER and self.order_answer:
            fields = {"ClientOrderID": msg.as_text("ClientOrderID"), "TradeAccount": ACCOUNT, **self.order_answer}
            reply(make(MsgType.ORDER_UPDATE, **fields))  # type: ignore[arg-type]  # field values
        elif msg.type in _EMPTY:
            answer, values = _EMPTY[msg.type]
            reply(make(answer, RequestID=msg.as_int("RequestID"), **values))  # type: ignore[arg-type]  # field values

"""A small DTC client for the tests, built on the codec (no public DTC client installs here).

It keeps every message the server sent in an inbox, and tests wait for the one they expect by
predicate, so nothing depends on timing beyond a generous bound.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

from copytrader.brokers.dtc.codec import DecodeError, Message, StreamDecoder, encode, make
from copytrader.brokers.dtc.messages import Encoding, MsgType, Value

Predicate = Callable[[Message], bool]
#: time_scale for heartbeat tests: a 5 s logon interval runs as 0.25 s.
FAST = 0.05


class DtcClient:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, encoding: Encoding) -> None:
        self.reader, self.writer = reader, writer
        self.decoder = StreamDecoder(encoding)
        self.inbox: list[Message] = []
        self.errors: list[DecodeError] = []
        self.closed = asyncio.Event()
        self._arrived = asyncio.Condition()
        self._heartbeats: asyncio.Task[None] | None = None
        self._reading: asyncio.Task[None] | None = None
        self._request_ids = iter(range(1, 1_000_000))

    @classmethod
    async def connect(cls, port: int, encoding: Encoding = Encoding.BINARY, *, negotiate: bool = True) -> DtcClient:
        """Open a socket; with ``negotiate`` ask for ``encoding`` (in binary) and switch to the grant."""
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        client = cls(reader, writer, Encoding.BINARY if negotiate else encoding)
        if negotiate:
            client.send(make(MsgType.ENCODING_REQUEST, Encoding=int(encoding)))
            response = await client._read_one()  # read inline: what follows is in the new encoding
            assert response.type is MsgType.ENCODING_RESPONSE, response
            client.decoder.encoding = Encoding(response.as_int("Encoding"))
            client.granted = response
        client._reading = asyncio.get_running_loop().create_task(client._read())
        return client

    granted: Message | None = None

    @property
    def encoding(self) -> Encoding:
        return self.decoder.encoding

    def send(self, message: Message) -> None:
        self.writer.write(encode(message, self.encoding))

    def request(self, msg_type: MsgType, **values: Value) -> int:
        request_id = next(self._request_ids)
        self.send(make(msg_type, RequestID=request_id, **values))
        return request_id

    async def _read_one(self) -> Message:
        while True:
            item = self.decoder.next()
            if isinstance(item, Message):
                return item
            assert item is None, item
            data = await asyncio.wait_for(self.reader.read(65536), 5)
            assert data, "server closed during the handshake"
            self.decoder.feed(data)

    async def _read(self) -> None:
        try:
            while True:
                for item in self.decoder:
                    if isinstance(item, DecodeError):
                        self.errors.append(item)
                    else:
                        self.inbox.append(item)
                async with self._arrived:
                    self._arrived.notify_all()
                data = await self.reader.read(65536)
                if not data:
                    break
                self.decoder.feed(data)
        except ConnectionError:
            pass
        finally:
            self.closed.set()
            async with self._arrived:
                self._arrived.notify_all()

    async def expect(self, predicate: Predicate, timeout: float = 5.0) -> Message:
        """The first message so far or to come that matches; it is taken out of the inbox."""

        def find() -> Message | None:
            for message in self.inbox:
                if predicate(message):
                    self.inbox.remove(message)
                    return message
            return None

        async def wait() -> Message:
            async with self._arrived:
                while (found := find()) is None:
                    if self.closed.is_set():
                        raise AssertionError(f"connection closed; inbox: {self.inbox}")
                    await self._arrived.wait()
                return found

        return await asyncio.wait_for(wait(), timeout)

    async def expect_type(self, msg_type: MsgType, timeout: float = 5.0, **fields: Any) -> Message:
        return await self.expect(lambda m: m.type is msg_type and all(m[k] == v for k, v in fields.items()), timeout)

    async def logon(self, username: str = "sim-trader", password: str = "sim", **values: Value) -> Message:
        values.setdefault("HeartbeatIntervalInSeconds", 5)
        self.send(make(MsgType.LOGON_REQUEST, Username=username, Password=password, **values))
        return await self.expect_type(MsgType.LOGON_RESPONSE)

    def start_heartbeats(self, every_s: float) -> None:
        async def beat() -> None:
            while not self.closed.is_set():
                self.send(make(MsgType.HEARTBEAT))
                await asyncio.sleep(every_s)

        self._heartbeats = asyncio.get_running_loop().create_task(beat())

    async def close(self) -> None:
        for task in (self._heartbeats, self._reading):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self.writer.close()
        with contextlib.suppress(ConnectionError):
            await self.writer.wait_closed()


ClientFactory = Callable[..., Awaitable[DtcClient]]

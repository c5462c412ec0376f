"""The ATI TCP route: one socket to NinjaTrader's ATI server port.

Opens the socket, waits for the ``ATI`` VALUE (what NinjaTrader.Client.dll waits for before it
sends, N-tk), sends COMMAND lines and hands every VALUE to a :class:`ValueCache`. A stream it
cannot read (``tokens.FramingError``) closes the connection, which the adapter treats like a
lost one: reconnect and read NinjaTrader's state again.
"""

from __future__ import annotations

import asyncio
import logging

from ...common.tasks import stop_task
from ..errors import BrokerUnavailable
from . import tokens
from .feed import FeedListener, ValueCache

log = logging.getLogger(__name__)


class AtiConnection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, listener: FeedListener) -> None:
        self.reader, self.writer = reader, writer
        self.cache = ValueCache(listener)
        self.listener = listener
        self.closed = asyncio.Event()
        self.close_reason = ""
        self._task = asyncio.get_running_loop().create_task(self._read(), name="ati-reader")

    @classmethod
    async def open(cls, host: str, port: int, listener: FeedListener, timeout_s: float) -> AtiConnection:
        """Connect and wait for ``ATI``; ``BrokerUnavailable(sent=False)`` when NinjaTrader is
        not there (nothing was sent)."""
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout_s)
        except (OSError, TimeoutError) as exc:
            raise BrokerUnavailable(
                f"ninjatrader: no ATI server at {host}:{port} ({exc or type(exc).__name__}); is NinjaTrader "
                "running with the ATI enabled (Tools > Options > Automated trading interface)?",
                sent=False,
            ) from exc
        connection = cls(reader, writer, listener)
        waiter = asyncio.ensure_future(connection.closed.wait())
        try:
            deadline = asyncio.get_running_loop().time() + timeout_s
            while connection.cache.ati is None and not connection.closed.is_set():
                left = deadline - asyncio.get_running_loop().time()
                if left <= 0:
                    break
                await asyncio.wait({waiter}, timeout=min(left, 0.02))
        finally:
            waiter.cancel()
        if connection.cache.ati is None:
            why = connection.close_reason or f"no ATI value within {timeout_s} s"
            await connection.close(why)
            raise BrokerUnavailable(f"ninjatrader: ATI server at {host}:{port} did not answer: {why}", sent=False)
        return connection

    async def _read(self) -> None:
        decoder = tokens.TokenDecoder()
        reason = "connection closed by NinjaTrader"
        try:
            while data := await self.reader.read(65536):
                decoder.feed(data)
                for frame in decoder.frames():
                    if isinstance(frame, tokens.BadMessage):
                        self.listener.on_bad_input(f"ATI message not understood: {frame}")
                    elif frame.type is tokens.MessageType.VALUE:
                        self.cache.push(*frame.args)
                    else:
                        self.listener.on_bad_input(
                            f"ATI server sent a {frame.type.name} message, which only clients send"
                        )
        except tokens.FramingError as exc:
            reason = f"unreadable ATI stream ({exc}); reconnecting"
            self.listener.on_bad_input(reason)
        except (ConnectionError, OSError) as exc:
            reason = f"connection lost: {exc}"
        except Exception as exc:  # a bug in a listener must close the line, not leave it half-read
            log.exception("ninjatrader: ATI reader failed")
            reason = f"reader failed: {exc!r}"
        finally:
            self.close_reason = self.close_reason or reason
            self.closed.set()
            self.writer.close()

    async def send(self, line: str) -> None:
        """Write one COMMAND. ``BrokerUnavailable(sent=False)`` when the line cannot have left
        (closed before writing); ``sent=True`` when the socket broke while it was flushed."""
        if self.closed.is_set() or self.writer.is_closing():
            raise BrokerUnavailable(f"ninjatrader: ATI connection closed ({self.close_reason})", sent=False)
        self.writer.write(tokens.command(line))
        try:
            await self.writer.drain()
        except (ConnectionError, OSError) as exc:
            raise BrokerUnavailable(f"ninjatrader: ATI connection lost while sending: {exc}", sent=True) from exc

    async def close(self, reason: str) -> None:
        self.close_reason = self.close_reason or reason
        self.writer.close()
        await stop_task(self._task, ConnectionError, OSError)
        self.closed.set()

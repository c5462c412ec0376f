"""Speaking dxLink by hand: send one message, await the next one of a given type."""

from __future__ import annotations

import asyncio
from typing import Any, TypeVar

import aiohttp

from copytrader.brokers.dxlink import protocol as p

M = TypeVar("M")
SETUP = p.Setup(channel=0, version="0.1-test", keepaliveTimeout=60, acceptKeepaliveTimeout=60)


async def send(ws: aiohttp.ClientWebSocketResponse, message: p.Message) -> None:
    await ws.send_str(p.encode(message))


async def expect(ws: aiohttp.ClientWebSocketResponse, kind: type[M], timeout_s: float = 5.0) -> M:
    """The next message of ``kind`` (KEEPALIVEs and other types skipped); fails on close."""
    async with asyncio.timeout(timeout_s):
        while True:
            frame = await ws.receive()
            assert frame.type == aiohttp.WSMsgType.TEXT, f"socket ended ({frame.type.name}) before {kind.__name__}"
            message = p.decode(frame.data)
            if isinstance(message, kind):
                return message


async def closed(ws: aiohttp.ClientWebSocketResponse, timeout_s: float = 5.0) -> list[p.Message]:
    """Every message until the server closes the socket."""
    seen: list[p.Message] = []
    async with asyncio.timeout(timeout_s):
        while True:
            frame = await ws.receive()
            if frame.type != aiohttp.WSMsgType.TEXT:
                return seen
            seen.append(p.decode(frame.data))


async def authorized(ws: aiohttp.ClientWebSocketResponse, token: str, setup: p.Setup = SETUP) -> None:
    await send(ws, setup)
    await expect(ws, p.Setup)
    assert (await expect(ws, p.AuthState)).state == "UNAUTHORIZED"
    await send(ws, p.Auth(channel=0, token=token))
    assert (await expect(ws, p.AuthState)).state == "AUTHORIZED"


async def feed_channel(ws: aiohttp.ClientWebSocketResponse, data_format: Any, fields: Any = None) -> p.FeedConfig:
    await send(ws, p.ChannelRequest(channel=1, service="FEED", parameters={"contract": "AUTO"}))
    await expect(ws, p.ChannelOpened)
    await send(ws, p.FeedSetup(channel=1, acceptDataFormat=data_format, acceptEventFields=fields))
    return await expect(ws, p.FeedConfig)


async def eventually(condition: Any, timeout_s: float = 5.0) -> None:
    """Await ``condition()`` becoming true (polled), failing after ``timeout_s``."""
    async with asyncio.timeout(timeout_s):
        while not condition():
            await asyncio.sleep(0.01)

"""The user hub: SignalR JSON protocol over WebSocket, with and without the negotiate step.

Clients built on signalrcore or @microsoft/signalr POST ``/hubs/user/negotiate`` first and then
open the socket with ``?id=<connectionToken>``; lighter clients skip negotiation and open
``/hubs/user?access_token=...`` directly. Both land in :meth:`UserHub.websocket`.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiohttp import WSMsgType, web

from .. import codec
from .. import schemas as px
from .wire import bearer

if TYPE_CHECKING:
    from .server import ProjectXSimulator

Subscription = tuple[str, int | None]  # (Subscribe* method, accountId or None for accounts)


@dataclass(eq=False)
class HubConnection:
    ws: web.WebSocketResponse
    user: str
    connection_id: str
    subscriptions: set[Subscription] = field(default_factory=set)
    outbox: asyncio.Queue[str | bytes | None] = field(default_factory=asyncio.Queue)

    def wants(self, target: str, account_id: int) -> bool:
        stream = px.STREAM_FOR_EVENT[target]
        key: Subscription = (stream, None) if stream == px.SUBSCRIBE_ACCOUNTS else (stream, account_id)
        return key in self.subscriptions


class UserHub:
    def __init__(self, sim: ProjectXSimulator) -> None:
        self.sim = sim
        self.connections: set[HubConnection] = set()
        self._negotiated: dict[str, str] = {}  # connectionToken → connectionId

    # -- pushes ------------------------------------------------------------------------
    def push(self, target: str, account_id: int, payload: dict[str, Any]) -> None:
        body = {"action": int(px.EventAction.UPDATE), "data": payload} if self.sim.wrap_events else payload
        frame = codec.invocation(target, [body])
        account = self.sim.state.by_id(account_id)
        for connection in list(self.connections):
            if (
                account is not None
                and self.sim.visible(connection.user, account.name)
                and connection.wants(target, account_id)
            ):
                connection.outbox.put_nowait(frame)

    def send_raw(self, data: str | bytes) -> int:
        """The garbage fault: ``data`` goes on every open connection exactly as given — a text
        frame, or a binary one for bytes — in order with the pushes. Returns how many got it."""
        for connection in self.connections:
            connection.outbox.put_nowait(data)
        return len(self.connections)

    async def drop_all(self) -> None:
        """The drop_connection fault: close sockets without a SignalR close message."""
        for connection in list(self.connections):
            connection.outbox.put_nowait(None)
            with contextlib.suppress(Exception):
                await connection.ws.close(code=1011, message=b"simulated drop")

    # -- HTTP ----------------------------------------------------------------------------
    def _authorised(self, request: web.Request) -> str | None:
        claims = self.sim.tokens.decode(bearer(request) or "")
        if claims is None or not self.sim.tokens.is_live(claims):
            return None
        return claims.user

    async def negotiate(self, request: web.Request) -> web.Response:
        if self._authorised(request) is None:
            return web.Response(status=401)
        connection_id, token = str(uuid.uuid4()), str(uuid.uuid4())
        self._negotiated[token] = connection_id
        body: dict[str, Any] = {
            "connectionId": connection_id,
            "availableTransports": [{"transport": "WebSockets", "transferFormats": ["Text", "Binary"]}],
        }
        if request.query.get("negotiateVersion", "0") != "0":
            body["negotiateVersion"] = 1
            body["connectionToken"] = token
        else:
            body["negotiateVersion"] = 0
            self._negotiated[connection_id] = connection_id
        return web.json_response(body)

    async def websocket(self, request: web.Request) -> web.StreamResponse:
        user = self._authorised(request)
        if user is None:
            return web.Response(status=401)
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        token = request.query.get("id")
        connection_id = (self._negotiated.pop(token, None) if token else None) or str(uuid.uuid4())
        connection = HubConnection(ws, user, connection_id)
        writer = asyncio.get_running_loop().create_task(self._write(connection))
        try:
            await self._serve(connection)
        finally:
            self.connections.discard(connection)
            connection.outbox.put_nowait(None)
            writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await writer
            if not ws.closed:
                await ws.close()
        return ws

    # -- protocol --------------------------------------------------------------------------
    async def _serve(self, connection: HubConnection) -> None:
        decoder = codec.Decoder(expect_handshake="request")
        async for raw in connection.ws:
            if raw.type not in (WSMsgType.TEXT, WSMsgType.BINARY):
                break
            try:
                messages = decoder.feed(raw.data)
            except codec.ProtocolError as exc:
                # ASP.NET Core's HubConnectionHandler answers a message it cannot parse with a
                # Close record ("Connection closed with an error." plus, with detailed errors,
                # the exception) and ends the connection; other connections are untouched.
                if connection not in self.connections:
                    await connection.ws.send_str(codec.handshake_response(str(exc)))
                else:
                    error = f"Connection closed with an error. InvalidDataException: {exc}"
                    await connection.ws.send_str(codec.close(error, allow_reconnect=False))
                return
            if decoder.handshake_done and connection not in self.connections:
                await connection.ws.send_str(codec.handshake_response())
                self.connections.add(connection)
            for message in messages:
                if message.type is codec.MessageType.CLOSE:
                    return
                if message.type is codec.MessageType.INVOCATION:
                    self._invoke(connection, message)

    def _invoke(self, connection: HubConnection, message: codec.Message) -> None:
        try:
            error = self._apply(connection, message.target or "", message.arguments)
        except (KeyError, IndexError, TypeError, ValueError, ArithmeticError) as exc:
            # ASP.NET Core: arguments that do not bind fail that invocation, not the connection.
            error = f"Failed to invoke '{message.target}' due to an error on the server. {type(exc).__name__}: {exc}"
        if message.invocation_id is not None:
            reply = codec.completion(message.invocation_id, error=error, has_result=error is None)
            connection.outbox.put_nowait(reply)

    def _apply(self, connection: HubConnection, target: str, arguments: tuple[Any, ...]) -> str | None:
        subscribe = target if target.startswith("Subscribe") else px.UNSUBSCRIBE.get(target)
        if subscribe is None or subscribe not in px.STREAM_FOR_EVENT.values():
            return f"Unknown hub method '{target}'"
        if subscribe == px.SUBSCRIBE_ACCOUNTS:
            key: Subscription = (subscribe, None)
        else:
            account = self.sim.state.by_id(arguments[0]) if len(arguments) == 1 else None
            if account is None or not self.sim.visible(connection.user, account.name):
                return f"Failed to invoke '{target}': unknown or missing accountId"
            key = (subscribe, int(arguments[0]))
        if target.startswith("Subscribe"):
            connection.subscriptions.add(key)
        else:
            connection.subscriptions.discard(key)
        return None

    async def _write(self, connection: HubConnection) -> None:
        """One writer per socket keeps frames in order; pings keep idle clients from timing out."""
        interval = self.sim.keepalive_s
        while True:
            try:
                frame = await asyncio.wait_for(connection.outbox.get(), timeout=interval)
            except TimeoutError:
                frame = codec.ping()
            if frame is None or connection.ws.closed:
                return
            try:
                if isinstance(frame, bytes):
                    await connection.ws.send_bytes(frame)
                else:
                    await connection.ws.send_str(frame)
            except ConnectionError:
                return

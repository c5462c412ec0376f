"""One R|Protocol plant connection: login, heartbeats, requests matched to replies by user_msg.

Rithmic echoes a request's ``user_msg`` on every message of its reply and closes the reply with
the message that carries ``rp_code`` (``["0"]`` success, ``[code, text]`` failure); earlier parts
carry ``rq_handler_rp_code`` [RG §3, docs/platforms/rithmic-sources.md §2]. So each request here
gets a fresh ``user_msg`` and waits for that closing message; everything else that arrives
(351/352 order notifications, 350 route updates, 77 ForcedLogout) is a push for ``on_push``.
A frame the codec cannot read goes to ``on_bad_frame`` with its raw bytes and the reader carries
on: one bad or newer frame must not end it (async-rithmic 1.6.6 drops unknown templates for the
same reason). A push handler that raises is reported the same way, never fatal to the reader.

Heartbeat silence: the server answers every RequestHeartbeat (19), so a healthy link is never
quiet for long. A link that has carried nothing for ``silence_factor`` heartbeat intervals is
half dead (a NAT timeout, a stalled gateway); the connection closes itself, which ``on_closed``
reports, so the adapter reconnects instead of waiting on a socket that will never speak again.

What this connection does not do: retry. A request whose reply never came may have been carried
out (an order placed), so a timeout or a dropped link raises ``BrokerUnavailable(sent=True)``
and the caller looks the order up before anything is sent again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Callable
from typing import Any

import aiohttp
from google.protobuf.message import Message

from ..errors import AuthenticationFailed, BrokerError, BrokerUnavailable
from . import codec

log = logging.getLogger(__name__)

ORDER_PLANT = 2
TEMPLATE_VERSION = "3.9"  # what async-rithmic sends; servers accept old versions [AR base.py]


class RequestRefused(BrokerError):
    """The reply's ``rp_code`` was ``[code, text]`` (or a Reject 75 answered the request)."""

    def __init__(self, template_id: int, rp_code: list[str]) -> None:
        code = rp_code[0] if rp_code else "?"
        text = rp_code[1] if len(rp_code) > 1 else ""
        super().__init__(f"template {template_id} refused: {code} {text}".strip(), code=code)
        self.text = text
        self.template_id = template_id

    @property
    def unhandled(self) -> bool:
        """A Reject (75): the server did not carry the request out at all, so resending is safe."""
        return self.template_id == 75


class PlantConnection:
    """A WebSocket to one plant; :meth:`login` before any other :meth:`request`."""

    def __init__(
        self,
        url: str,
        *,
        on_push: Callable[[Message], None] | None = None,
        on_closed: Callable[[], None] | None = None,
        on_bad_frame: Callable[[str, bytes], None] | None = None,
        timeout_s: float = 10.0,
        silence_factor: float = 3.0,
    ) -> None:
        self.url = url
        self.timeout_s = timeout_s
        self.silence_factor = silence_factor
        self._on_push = on_push or (lambda message: None)
        self._on_closed = on_closed or (lambda: None)
        self._on_bad_frame = on_bad_frame or (lambda why, raw: None)
        self.last_received = time.monotonic()
        self._http: aiohttp.ClientSession | None = None
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._pending: dict[str, tuple[list[Message], asyncio.Future[list[Message]]]] = {}
        #: Pushes a pending request gathers as its data (snapshots carry no user_msg [AR base.py]).
        self._collectors: list[tuple[Callable[[Message], bool], list[Message]]] = []
        self._tasks: list[asyncio.Task[None]] = []
        self.heartbeat_interval: float | None = None
        self.login_reply: Message | None = None

    @property
    def connected(self) -> bool:
        return self._ws is not None and not self._ws.closed

    async def open(self) -> None:
        self._http = aiohttp.ClientSession()
        try:
            self._ws = await self._http.ws_connect(self.url, timeout=aiohttp.ClientWSTimeout(ws_close=self.timeout_s))
        except (aiohttp.ClientError, OSError) as exc:
            await self._http.close()
            raise BrokerUnavailable(f"cannot reach {self.url}: {exc}", sent=False) from exc
        self._tasks.append(asyncio.get_running_loop().create_task(self._read(), name="rithmic-reader"))

    async def login(
        self, user: str, password: str, system_name: str, app_name: str, app_version: str, infra_type: int = ORDER_PLANT
    ) -> Message:
        """RequestLogin (10); ``AuthenticationFailed`` on a refusal; then heartbeats start."""
        fields: dict[str, Any] = dict(user=user, password=password, system_name=system_name, app_name=app_name)
        try:
            replies = await self.request(
                10, template_version=TEMPLATE_VERSION, app_version=app_version, infra_type=infra_type, **fields
            )
        except RequestRefused as exc:
            raise AuthenticationFailed(f"Rithmic login refused: {exc.text}", code=exc.code) from exc
        reply = replies[-1]
        self.login_reply = reply
        self.heartbeat_interval = float(reply.heartbeat_interval) or 60.0
        await self._send(codec.build(18))  # "clients are expected to send at least a heartbeat" [RG]
        self._tasks.append(asyncio.get_running_loop().create_task(self._beat(), name="rithmic-heartbeat"))
        return reply

    async def request(
        self, template_id: int, *, collect: Callable[[Message], bool] | None = None, **fields: Any
    ) -> list[Message]:
        """Send one request; its reply's messages, the closing one last.

        ``collect`` picks the pushes that are this request's data (e.g. 352 ``is_snapshot`` for
        an account after 320): they come before the closer on the same socket and are put
        first in the result instead of going to ``on_push``.
        """
        tag = str(uuid.uuid4())
        future: asyncio.Future[list[Message]] = asyncio.get_running_loop().create_future()
        gathered: list[Message] = []
        collector = (collect, gathered) if collect is not None else None
        self._pending[tag] = ([], future)
        if collector is not None:
            self._collectors.append(collector)
        try:
            await self._send(codec.build(template_id, user_msg=[tag], **fields))
            return gathered + await asyncio.wait_for(future, self.timeout_s)
        except TimeoutError:
            raise BrokerUnavailable(f"no reply to template {template_id} within {self.timeout_s}s") from None
        finally:
            self._pending.pop(tag, None)
            if collector is not None:
                self._collectors.remove(collector)

    async def close(self) -> None:
        """Log out (best effort) and close; pending requests fail with ``BrokerUnavailable``."""
        if self.connected and self.login_reply is not None:
            with contextlib.suppress(BrokerError):
                await self.request(12)
        for task in self._tasks:
            task.cancel()
        # gather, not ``suppress(CancelledError)`` around each await: that would also swallow a
        # cancellation of the task calling close (a recovery being stopped would carry on)
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        if self._ws is not None:
            await self._ws.close()
        if self._http is not None:
            await self._http.close()
        self._fail_pending("connection closed")

    # -- internals -------------------------------------------------------------------------
    async def _send(self, message: Message) -> None:
        if not self.connected:
            raise BrokerUnavailable("not connected", sent=False)
        assert self._ws is not None
        try:
            await self._ws.send_bytes(codec.encode(message))
        except (ConnectionError, RuntimeError) as exc:
            raise BrokerUnavailable(f"send failed: {exc}") from exc

    async def _beat(self) -> None:
        """A heartbeat each interval (the server drops links silent past a threshold [RG]);
        a link silent for ``silence_factor`` intervals is closed as dead."""
        assert self.heartbeat_interval is not None
        while self.connected:
            await asyncio.sleep(max(0.05, self.heartbeat_interval / 2))
            if time.monotonic() - self.last_received > self.silence_factor * self.heartbeat_interval:
                log.warning("rithmic: %s silent for %.1fs, closing it", self.url, time.monotonic() - self.last_received)
                assert self._ws is not None
                await self._ws.close()
                return
            with contextlib.suppress(BrokerUnavailable):
                await self._send(codec.build(18))

    async def _read(self) -> None:
        assert self._ws is not None
        try:
            async for frame in self._ws:
                if frame.type is aiohttp.WSMsgType.BINARY:
                    self.receive(frame.data)
                else:
                    raw = frame.data.encode() if isinstance(frame.data, str) else bytes(frame.data or b"")
                    self._on_bad_frame(f"a {frame.type.name} frame where R|Protocol sends binary", raw)
        finally:
            self._fail_pending("connection lost")
            self._on_closed()

    def receive(self, data: bytes) -> None:
        """One binary frame from the server (sans-I/O: the reader calls it, so do the fuzz tests).

        Never raises: an unreadable frame, or a push whose handler fails, goes to ``on_bad_frame``
        with the raw bytes."""
        self.last_received = time.monotonic()
        try:
            message = codec.decode(data)
        except codec.FrameError as exc:
            self._on_bad_frame(str(exc), data)
            return
        try:
            self._dispatch(message)
        except Exception as exc:  # noqa: BLE001 - a push we cannot handle must not end the reader
            log.exception("rithmic: handling template %s failed", codec.template_of(message))
            self._on_bad_frame(f"template {codec.template_of(message)} not handled: {exc!r}", data)

    def _dispatch(self, message: Message) -> None:
        fields = message.DESCRIPTOR.fields_by_name
        tags = list(message.user_msg) if "user_msg" in fields else []
        pending = self._pending.get(tags[0]) if tags else None
        if pending is None:
            for wanted, gathered in self._collectors:
                if wanted(message):
                    gathered.append(message)
                    return
            if codec.template_of(message) != 19:  # heartbeat replies carry nothing
                self._on_push(message)
            return
        parts, future = pending
        if future.done():
            return
        template_id = codec.template_of(message)
        rp_code = list(message.rp_code) if "rp_code" in fields else []
        if template_id == 75 or (rp_code and rp_code[0] != "0"):
            future.set_exception(RequestRefused(template_id, rp_code))
            return
        parts.append(message)
        if rp_code:
            future.set_result(parts)

    def _fail_pending(self, why: str) -> None:
        for _, future in self._pending.values():
            if not future.done():
                future.set_exception(BrokerUnavailable(why))

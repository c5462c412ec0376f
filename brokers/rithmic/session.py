"""One Rithmic login as the adapter needs it: the ORDER and PNL plants, kept up or honestly down.

Opening [AR plants/order.py, pnl.py; research map §2]: log in to the ORDER plant, 300 (fcm/ib),
310 (trade routes), 302 (accounts), then the PNL plant; per account 308 (order updates), 336
(bracket updates) and 400 (PnL updates). The same sequence runs after every lost link.

Losing a link (a plant's socket closed, or silent past its heartbeat threshold, see
:mod:`.transport`): both plants are closed and opened again with exponential backoff
(``common.retrying.forever``, ``reconnect_min_s`` doubling to ``reconnect_max_s``), then
``on_restored`` resyncs what was missed. Requests made meanwhile wait for the link (bounded by
the request timeout) instead of failing at once.

ForcedLogout (77) is different: the server ended our session because another one of the same
user logged in ("too many sessions" [AR base.py, I49]). Logging in again would log *that* session
out in turn, and the two would evict each other forever (the reconnect cascade of [I49]). So the
session reports DISCONNECTED with the reason and stays down (rithmic-rs stops on it too [RS PR
#74]); only an explicit ``connect`` starts it again.

A Reject (75) answering a request means the server did not carry it out [RG], so resending is
safe: ``call`` retries it a few times with a short backoff (a throttled request: the shape of a
Rithmic rate limit is UNDOCUMENTED, a Reject is the plausible one). ``["1034", "invalid
operation before login."]`` [PYR7] means the server forgot our login: the plants are re-opened
first, then the request is resent.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from google.protobuf.message import Message

from ...common import retrying
from ..base import SessionConfig
from ..errors import AuthenticationFailed, BrokerError, BrokerUnavailable
from ..model import ConnectionState
from ..options import read_options
from . import codec
from .options import RithmicOptions
from .transport import PlantConnection, RequestRefused

log = logging.getLogger(__name__)

ORDER_PLANT, PNL_PLANT = 2, 4
PLANT_NAMES = {ORDER_PLANT: "ORDER", PNL_PLANT: "PNL"}
BEFORE_LOGIN = "1034"


class ForcedOut(BrokerError):
    """The server logged this session out (ForcedLogout 77); permanent until ``connect``."""


class PlantSet:
    """The ORDER and PNL plant connections of one login, and their recovery."""

    def __init__(
        self,
        config: SessionConfig,
        *,
        on_push: Callable[[int, Message], None],
        on_state: Callable[[ConnectionState, str | None], None],
        on_bad_frame: Callable[[str, str, bytes], None],
        on_restored: Callable[[], Awaitable[None]],
        options: RithmicOptions | None = None,
    ) -> None:
        assert config.endpoint and config.username is not None and config.secret is not None
        o = options if options is not None else read_options(RithmicOptions, config.options)
        self.config = config
        self.system_name = o.system_name
        self.app = (o.app_name, o.app_version)
        self.timeout_s = o.timeout_s
        self.reconnect_min_s = o.reconnect_min_s
        self.reconnect_max_s = o.reconnect_max_s
        self.reject_attempts = o.reject_attempts
        self._on_push, self._on_state, self._on_bad, self._on_restored = on_push, on_state, on_bad_frame, on_restored
        self.plants: dict[int, PlantConnection] = {}
        self.fcm_id = self.ib_id = ""
        self.user_type = 0
        self.routes: dict[str, str] = {}
        self.up = asyncio.Event()
        self.forced_out: str | None = None
        self._closing = False
        self._recovering: asyncio.Task[None] | None = None

    # -- opening and closing -------------------------------------------------------------------
    async def open(self) -> None:
        """Open both plants and subscribe every account; raises on any failure (nothing left open)."""
        self.forced_out = None
        try:
            order = await self._plant(ORDER_PLANT)
            info = (await order.request(300))[-1]
            self.fcm_id, self.ib_id = info.fcm_id, info.ib_id
            self.user_type = int(info.user_type)  # 330 and 346 carry it [AR order.py]
            routes = await order.request(310, subscribe_for_updates=True, **self.ids(310))
            self.routes = {r.exchange: r.trade_route for r in routes if r.trade_route}
            accounts = {m.account_id for m in await order.request(302, **self.ids(302)) if m.account_id}
            missing = set(self.config.accounts.values()) - accounts
            if missing:
                raise AuthenticationFailed(f"rithmic: the login does not see accounts {sorted(missing)}")
            pnl = await self._plant(PNL_PLANT)
            for account in self.config.accounts.values():
                await order.request(308, account_id=account, **self.ids(308))
                await order.request(336, account_id=account, **self.ids(336))
                await pnl.request(400, request=1, account_id=account, **self.ids(400))
        except BaseException:
            await self.close_plants()
            raise
        self.up.set()

    async def _plant(self, infra_type: int) -> PlantConnection:
        cfg = self.config
        assert cfg.endpoint and cfg.username is not None and cfg.secret is not None
        name = PLANT_NAMES[infra_type]
        plant = PlantConnection(
            cfg.endpoint,
            on_push=lambda message: self._push(infra_type, message),
            on_closed=lambda: self._closed(infra_type),
            on_bad_frame=lambda why, raw: self._on_bad(name, why, raw),
            timeout_s=self.timeout_s,
        )
        self.plants[infra_type] = plant
        await plant.open()
        if not self.system_name:
            self.system_name = await self._only_system(plant)
        await plant.login(cfg.username, cfg.secret, self.system_name, *self.app, infra_type)
        return plant

    async def _only_system(self, plant: PlantConnection) -> str:
        """The system to log in to when none is configured: RG has clients ask (16 → 17) before
        logging in; a gateway listing several systems needs ``system_name`` set."""
        systems = list((await plant.request(16))[-1].system_name)
        if len(systems) != 1:
            raise AuthenticationFailed(f"rithmic: set options.system_name, the gateway offers {systems}")
        return str(systems[0])

    async def close_plants(self) -> None:
        self.up.clear()
        self._closing = True
        try:
            for plant in list(self.plants.values()):
                with contextlib.suppress(Exception):
                    await plant.close()
            self.plants.clear()
        finally:
            self._closing = False

    async def close(self) -> None:
        """Our own close: stop any recovery, log out of both plants."""
        task, self._recovering = self._recovering, None
        if task is not None and task is not asyncio.current_task():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)  # a cancel of our caller still propagates
        await self.close_plants()

    # -- requests ------------------------------------------------------------------------------
    def ids(self, template_id: int) -> dict[str, Any]:
        """fcm_id/ib_id from 301, on the requests that carry them (as async-rithmic sets them)."""
        names = codec.TEMPLATES[template_id].DESCRIPTOR.fields_by_name
        return {k: v for k, v in (("fcm_id", self.fcm_id), ("ib_id", self.ib_id)) if k in names}

    async def plant(self, infra_type: int) -> PlantConnection:
        """The plant, waiting (up to the request timeout) while a lost link is being restored."""
        if self.forced_out is not None:
            raise BrokerUnavailable(f"rithmic: {self.forced_out}", sent=False)
        if not self.up.is_set() and self._recovering is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.up.wait(), self.timeout_s)
        plant = self.plants.get(infra_type)
        if not self.up.is_set() or plant is None or not plant.connected:
            raise BrokerUnavailable("rithmic: not connected", sent=False)
        return plant

    async def call(
        self, infra_type: int, template_id: int, *, collect: Callable[[Message], bool] | None = None, **fields: Any
    ) -> list[Message]:
        """One request; a Reject (75), which means "not carried out", is resent a few times."""
        async for attempt in retrying.until(
            _unhandled,
            what=f"rithmic template {template_id}",
            attempts=self.reject_attempts,
            deadline_s=self.timeout_s,
            wait=retrying.backoff(0.05, 1.0),
        ):
            with attempt:
                plant = await self.plant(infra_type)
                try:
                    return await plant.request(template_id, collect=collect, **fields)
                except RequestRefused as exc:
                    if exc.unhandled and exc.code == BEFORE_LOGIN:
                        self.lost(f"rithmic {PLANT_NAMES[infra_type]} plant: the server forgot our login (1034)")
                    raise
        raise AssertionError("unreachable: tenacity re-raises the last error")

    # -- losing and restoring ------------------------------------------------------------------
    def _push(self, infra_type: int, message: Message) -> None:
        if codec.template_of(message) == 77:
            self.forced_out = (
                f"ForcedLogout (77) on the {PLANT_NAMES[infra_type]} plant: another session of user "
                f"{self.config.username!r} logged in; not reconnecting (it would log that one out in turn)"
            )
            log.error("rithmic session %s: %s", self.config.session_id, self.forced_out)
            return
        self._on_push(infra_type, message)

    def _closed(self, infra_type: int) -> None:
        if self._closing:
            return
        if self.forced_out is not None:
            self.up.clear()
            self._spawn(self._stay_down())
            return
        self.lost(f"rithmic {PLANT_NAMES[infra_type]} plant connection lost")

    def lost(self, reason: str) -> None:
        """Start restoring both plants (once; later losses join the running recovery)."""
        self.up.clear()
        if self._recovering is None or self._recovering.done():
            self._on_state(ConnectionState.DEGRADED, reason)
            self._spawn(self._recover())

    def _spawn(self, work: Awaitable[None]) -> None:
        self._recovering = asyncio.get_running_loop().create_task(_run(work), name="rithmic-recover")

    async def _stay_down(self) -> None:
        await self.close_plants()
        self._on_state(ConnectionState.DISCONNECTED, self.forced_out)

    async def _recover(self) -> None:
        await self.close_plants()
        try:
            async for attempt in retrying.forever(
                lambda exc: isinstance(exc, BrokerUnavailable),
                what=f"rithmic session {self.config.session_id} reconnect",
                first_s=self.reconnect_min_s,
                max_s=self.reconnect_max_s,
            ):
                with attempt:
                    if self.forced_out is not None:
                        raise ForcedOut(self.forced_out)
                    await self.close_plants()  # what a failed resync left open
                    await self.open()
                    await self._on_restored()
                    if not self.up.is_set():  # a plant dropped again meanwhile: go round again
                        raise BrokerUnavailable("rithmic: lost again while resyncing")
        except BrokerError as exc:  # refused login, forced out: down until ``connect``
            await self.close_plants()
            self._on_state(ConnectionState.DISCONNECTED, f"rithmic: reconnect stopped: {exc}")
            return
        self._on_state(ConnectionState.CONNECTED, None)


def _unhandled(exc: BaseException) -> bool:
    return isinstance(exc, RequestRefused) and exc.unhandled


async def _run(work: Awaitable[None]) -> None:
    try:
        await work
    except asyncio.CancelledError:
        raise
    except Exception:  # noqa: BLE001 - a background recovery must log, never vanish silently
        log.exception("rithmic: session recovery failed")

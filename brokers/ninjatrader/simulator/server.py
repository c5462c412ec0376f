"""The NinjaTrader 8 simulator: one desk, served over both ATI routes at once.

NinjaTrader is a desktop program: it has no login, and one running copy serves every account
it holds over one ATI port and one pair of folders. ``logins`` (what the sandbox hands every
simulator, one per follower firm) only name which accounts exist here; nothing checks them,
because NinjaTrader checks nothing. Options: ``accounts`` (default Sim101, Sim102, Sim103),
``logins``, ``folder`` (the ``NinjaTrader 8`` documents folder; default a fresh temporary one),
``incoming``/``outgoing`` (override either folder), ``connection_name`` (the outgoing
connection file's name; default ``Simulated Data Feed``), ``poll_s`` (how often the incoming
folder is read; default 0.02), ``latency`` (ms or ``"50+20"`` before each command is carried
out), ``tick_ms`` (market clock; default 0: prices move only by the exchange's own calls).
"""

from __future__ import annotations

import asyncio
import tempfile
from datetime import date
from pathlib import Path
from typing import Any

from ...instruments import INSTRUMENTS
from ...simkernel.exchange import SimExchange
from ...simkernel.faults import FaultSwitches
from ...simkernel.latency import Latency
from ...simkernel.logins import SimLogin
from ...simkernel.serving import Background
from ..config import DEFAULT_PORT
from ..symbols import to_instrument
from .ati_server import AtiServer
from .desk import NtDesk
from .folders import FolderService

DEFAULT_ACCOUNTS = ("Sim101", "Sim102", "Sim103")
__all__ = ["DEFAULT_ACCOUNTS", "DEFAULT_PORT", "NinjaTraderSimulator"]


def demo_symbols(today: date | None = None) -> list[str]:
    """Each known root in its quarterly front month (``ESZ6``)."""
    today = today or date.today()
    code = "HMUZ"[(today.month - 1) // 3]
    return [f"{root}{code}{today.year % 10}" for root in INSTRUMENTS]


class NinjaTraderSimulator:
    def __init__(
        self, exchange: SimExchange | None = None, host: str = "127.0.0.1", port: int = 0, **options: Any
    ) -> None:
        self.exchange = exchange or SimExchange()
        self.host = host
        logins: list[SimLogin] = list(options.get("logins") or [])
        if logins:
            accounts = [a for login in logins for a in login.accounts]
        else:
            accounts = list(options.get("accounts") or DEFAULT_ACCOUNTS)
            logins = [SimLogin("ninjatrader", "", tuple(accounts))]
        self.logins = {login.username: login for login in logins}
        self.desk = NtDesk(self.exchange, accounts)
        self.latency = Latency.parse(options.get("latency", 0))
        self.tick_ms = float(options.get("tick_ms", 0.0))
        self._temp: tempfile.TemporaryDirectory[str] | None = None
        folder = options.get("folder")
        if folder is None and not (options.get("incoming") and options.get("outgoing")):
            self._temp = tempfile.TemporaryDirectory(prefix="nt8-sim-")
            folder = Path(self._temp.name) / "NinjaTrader 8"
        root = Path(folder) if folder is not None else None
        incoming = Path(options.get("incoming") or (root / "incoming" if root else ""))
        outgoing = Path(options.get("outgoing") or (root / "outgoing" if root else ""))
        self.folders = FolderService(
            self.desk,
            incoming,
            outgoing,
            self.latency,
            connection_name=str(options.get("connection_name", "Simulated Data Feed")),
            poll_s=float(options.get("poll_s", 0.02)),
        )
        self.ati = AtiServer(self.desk, host, port, self.latency)
        self.desk.order_listeners += [self.ati.push_order, self.folders.write_order]
        self.desk.position_listeners += [self.ati.push_position, self.folders.write_position]
        self.desk.list_listeners.append(self.ati.push_list)
        self._background = Background()
        self._started = False

    # -- lifecycle ---------------------------------------------------------------------------
    async def start(self) -> NinjaTraderSimulator:
        self.exchange.add_listener(self.desk.on_event)
        self.exchange.add_forget_listener(self.desk.forget_orders)
        self.exchange.add_fault_listener(self._faults_changed)
        await self.ati.start()
        await self.folders.start()
        if self.tick_ms > 0:
            self._background.spawn(self._clock(), "nt-sim-clock")
        self._started = True
        return self

    async def _clock(self) -> None:
        while True:
            await asyncio.sleep(self.tick_ms / 1000.0)
            self.exchange.advance()

    async def stop(self) -> None:
        if not self._started:
            return
        self._started = False
        self.exchange.remove_listener(self.desk.on_event)
        self.exchange.remove_forget_listener(self.desk.forget_orders)
        self.exchange.remove_fault_listener(self._faults_changed)
        await self._background.cancel_all()
        await self.folders.stop()
        await self.ati.stop()
        if self._temp is not None:
            self._temp.cleanup()

    # -- the shared simulator shape ------------------------------------------------------------
    @property
    def port(self) -> int:
        return self.ati.port

    @property
    def base_url(self) -> str:
        """The TCP route as ``tcp://host:port``: the scheme the config file's endpoint check
        (common/bounds.py) accepts today; the adapter reads it like ``ati://``."""
        return f"tcp://{self.host}:{self.ati.port}"

    @property
    def ati_url(self) -> str:
        return f"ati://{self.host}:{self.ati.port}"

    @property
    def oif_url(self) -> str:
        """The file route's endpoint: ``oif://`` + the folder holding incoming and outgoing."""
        return f"oif://{self.folders.incoming.parent}"

    def credentials_for(self, username: str) -> dict[str, Any]:
        """NinjaTrader has no login: the accounts only (and no password)."""
        login = self.logins[username]
        return {"username": login.username, "password": "", "accounts": list(login.accounts)}

    def demo_credentials(self) -> dict[str, Any]:
        first = next(iter(self.logins))
        symbols = demo_symbols()
        return {
            **self.credentials_for(first),
            "logins": [self.credentials_for(name) for name in self.logins],
            "host": self.host,
            "port": self.ati.port,
            "base_url": self.base_url,
            "ati_url": self.ati_url,
            "oif_url": self.oif_url,
            "incoming": str(self.folders.incoming),
            "outgoing": str(self.folders.outgoing),
            "symbols": symbols,
            "instruments": [to_instrument(s) for s in symbols],
        }

    def faults(self, account_name: str) -> FaultSwitches:
        return self.exchange.account(account_name).faults

    def _faults_changed(self, account: str) -> None:
        if account in self.desk.accounts and self.exchange.account(account).faults.take_drop():
            self.ati.drop_all()

    # -- NinjaTrader's own events --------------------------------------------------------------
    def set_connected(self, connected: bool) -> None:
        """The broker connection inside NinjaTrader goes down or up: the connection file says
        so, ATI pushes ``ATI`` (modelled), and a PLACE meanwhile is Rejected."""
        self.desk.set_connected(connected)
        self.folders.write_connection(connected)
        self.ati.push_connection(connected)

    def restart(self) -> None:
        """NinjaTrader restarts: ATI clients are dropped, the outgoing folder is wiped and the
        ATI's ORDER IDs are forgotten; the broker (the kernel) keeps every order and position."""
        self.ati.drop_all()
        self.desk.forget()
        self.folders.wipe()

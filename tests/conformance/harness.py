"""Adapter + simulator pairs the conformance runner drives, one registry entry per platform.

Every pair shares one :class:`SimExchange` with the runner, so a scenario sets prices, flips
fault switches and advances market time on the very kernel the platform's simulator serves.
The kernel's price path is frozen (``max_step_ticks=0``): only the scenario moves prices, so
expected fill prices are exact.

Adding a platform whose simulator follows the shared shape (``create_simulator(exchange=...,
host=, port=)`` → object with ``start/stop/base_url/demo_credentials()/faults()/exchange``)
is one entry in ``PLATFORMS``: a :class:`SimulatorPlatform` naming the factory and, when the
defaults do not fit, how to turn its demo credentials into a ``SessionConfig``.
"""

from __future__ import annotations

import importlib
import itertools
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from typing import Any

from copytrader.brokers.base import BrokerAdapter, SessionConfig
from copytrader.brokers.model import Capabilities
from copytrader.brokers.registry import adapter_class, create_adapter
from copytrader.brokers.simkernel.exchange import SimExchange
from copytrader.brokers.simkernel.faults import FaultSwitches
from copytrader.brokers.simkernel.pricepath import PricePath

#: The scenario's account; each harness maps it to the platform's own account name.
ACCOUNT = "A"
DEFAULT_SYMBOL = "ESZ6"
_sessions = itertools.count(1)


def frozen_exchange(seed: int = 7) -> SimExchange:
    """A kernel whose prices move only when the scenario says so."""
    return SimExchange(seed=seed, prices=PricePath(seed, max_step_ticks=0))


@dataclass
class Harness:
    """One running adapter+simulator pair, as the runner sees it."""

    platform: str
    adapter: BrokerAdapter
    exchange: SimExchange
    kernel_account: str
    features: frozenset[str]
    make_adapter: Callable[[dict[str, Any]], BrokerAdapter]
    drop: Callable[[bool], Any]
    restore: Callable[[], Any]
    symbol: str = DEFAULT_SYMBOL
    kernel_symbol: str = DEFAULT_SYMBOL
    bad_credentials: Mapping[str, Any] = field(default_factory=dict)
    extra_adapters: list[BrokerAdapter] = field(default_factory=list)
    #: The running simulator, for the session/limit hooks a platform's features promise
    #: (``open_other_sessions``, ``session_count``, ``set_endpoint_limit``, ``set_user_limit``).
    simulator: Any = None

    def faults(self) -> FaultSwitches:
        return self.exchange.account(self.kernel_account).faults

    async def drop_connection(self, hold: bool) -> None:
        """Transport fault. ``hold`` keeps the line down until ``restore_connection`` where
        the platform can (paper); simulators whose clients reconnect on their own ignore it."""
        await _maybe_await(self.drop(hold))

    async def restore_connection(self) -> None:
        await _maybe_await(self.restore())

    def adapter_with(self, overrides: dict[str, Any]) -> BrokerAdapter:
        """A second adapter for the same platform with config overrides (bad credentials)."""
        adapter = self.make_adapter(overrides)
        self.extra_adapters.append(adapter)
        return adapter


async def _maybe_await(value: Any) -> None:
    if hasattr(value, "__await__"):
        await value


# --------------------------------------------------------------------------- paper


@dataclass(frozen=True)
class PaperPlatform:
    """The paper platform's "simulator" is its in-process venue, advanced only by the runner.

    It has no credentials and no socket: a dropped connection is emulated with the adapter's
    own ``disconnect``/``connect``, which is exactly what losing the venue looks like to it.
    """

    features: frozenset[str] = frozenset({"reconnect", "lost_response", "repeated_id_is_new"})

    def capabilities(self) -> Capabilities:
        return adapter_class("paper").capabilities

    def available(self) -> str | None:
        return None

    @asynccontextmanager
    async def start(self) -> AsyncIterator[Harness]:
        from copytrader.brokers.paper.adapter import reset_venues, venue

        name = f"conformance-{next(_sessions)}"
        shared = venue(name, seed=7, tick_ms=0)
        shared.exchange.prices = PricePath(7, max_step_ticks=0)
        base = SessionConfig(
            platform="paper",
            session_id=name,
            accounts={ACCOUNT: f"{name}-acct"},
            options={"venue": name, "tick_ms": 0, "seed": 7},
        )

        def make(overrides: dict[str, Any]) -> BrokerAdapter:
            return create_adapter(replace(base, **overrides))

        adapter = make({})
        held = False

        async def drop(hold: bool) -> None:
            nonlocal held
            await adapter.disconnect()
            held = hold
            if not hold:
                await adapter.connect()

        async def restore() -> None:
            nonlocal held
            if held:
                held = False
                await adapter.connect()

        harness = Harness(
            platform="paper",
            adapter=adapter,
            exchange=shared.exchange,
            kernel_account=base.accounts[ACCOUNT],
            features=self.features,
            make_adapter=make,
            drop=drop,
            restore=restore,
        )
        # The kernel account exists before connect so a scenario may set faults up front.
        shared.exchange.open_account(harness.kernel_account)
        try:
            yield harness
        finally:
            for each in [adapter, *harness.extra_adapters]:
                await each.disconnect()
            reset_venues()


# --------------------------------------------------------------------------- wire simulators


def default_config(platform: str, simulator: Any, credentials: Mapping[str, Any]) -> SessionConfig:
    """SessionConfig from a simulator's ``demo_credentials()`` in the common shape.

    Recognised keys: ``account`` (or ``accounts``: our id → platform name), ``username``,
    ``password``/``api_key``/``secret``, ``options``. Anything else goes into options.
    """
    known = {"account", "accounts", "username", "password", "api_key", "secret", "options"}
    options = dict(credentials.get("options", {}))
    options.update({k: v for k, v in credentials.items() if k not in known})
    accounts = credentials.get("accounts") or {ACCOUNT: credentials["account"]}
    if ACCOUNT not in accounts:
        accounts = {ACCOUNT: next(iter(accounts.values()))}
    secret = credentials.get("password") or credentials.get("api_key") or credentials.get("secret")
    return SessionConfig(
        platform=platform,
        session_id=f"conformance-{next(_sessions)}",
        accounts=dict(accounts),
        endpoint=simulator.base_url,
        username=credentials.get("username"),
        secret=secret,
        options=options,
    )


ConfigBuilder = Callable[[str, Any, Mapping[str, Any]], SessionConfig]


@dataclass(frozen=True)
class SimulatorPlatform:
    """A platform whose simulator is a local server built on the shared kernel.

    ``kernel_account`` maps the SessionConfig's platform account name to the kernel's name for
    it (the same string unless the simulator says otherwise). ``bad_credentials`` are the
    SessionConfig overrides that must make ``connect`` raise ``AuthenticationFailed``.
    """

    platform: str
    simulator: str  # "module:create_simulator"
    config: ConfigBuilder = default_config
    options: Mapping[str, Any] = field(default_factory=dict)
    kernel_account: Callable[[str], str] = staticmethod(lambda name: name)  # type: ignore[assignment]  # dataclass default of a callable
    bad_credentials: Mapping[str, Any] = field(default_factory=lambda: {"secret": "wrong-secret"})
    symbol: str = DEFAULT_SYMBOL
    features: frozenset[str] = frozenset({"authentication", "reconnect", "transport_faults"})

    def capabilities(self) -> Capabilities:
        return adapter_class(self.platform).capabilities

    def available(self) -> str | None:
        try:
            adapter_class(self.platform)
            module, _, name = self.simulator.partition(":")
            getattr(importlib.import_module(module), name)
        except Exception as exc:  # noqa: BLE001 - any import failure means "not built yet"
            return f"{self.platform} adapter/simulator not importable: {type(exc).__name__}: {exc}"
        return None

    @asynccontextmanager
    async def start(self) -> AsyncIterator[Harness]:
        module, _, name = self.simulator.partition(":")
        factory = getattr(importlib.import_module(module), name)
        exchange = frozen_exchange()
        simulator = factory(exchange=exchange, host="127.0.0.1", port=0, **dict(self.options))
        await simulator.start()
        adapters: list[BrokerAdapter] = []
        try:
            base = self.config(self.platform, simulator, simulator.demo_credentials())

            def make(overrides: dict[str, Any]) -> BrokerAdapter:
                return create_adapter(replace(base, **overrides))

            adapter = make({})
            adapters.append(adapter)
            kernel_account = self.kernel_account(base.accounts[ACCOUNT])

            def drop(hold: bool) -> None:
                simulator.faults(kernel_account).drop_connection = True
                exchange.faults_changed(kernel_account)

            harness = Harness(
                platform=self.platform,
                adapter=adapter,
                exchange=exchange,
                kernel_account=kernel_account,
                features=self.features,
                make_adapter=make,
                drop=drop,
                restore=lambda: None,
                symbol=self.symbol,
                kernel_symbol=self.symbol,
                bad_credentials=self.bad_credentials,
                simulator=simulator,
            )
            exchange.open_account(kernel_account)
            yield harness
        finally:
            for each in adapters + (harness.extra_adapters if "harness" in locals() else []):
                try:
                    await each.disconnect()
                except Exception:  # noqa: BLE001 - teardown must reach simulator.stop()
                    pass
            await simulator.stop()


# --------------------------------------------------------------------------- platform configs


def tradovate_config(platform: str, simulator: Any, credentials: Mapping[str, Any]) -> SessionConfig:
    """Tradovate's demo login: name/password plus the app fields of accesstokenrequest."""
    app = {k: credentials[k] for k in ("appId", "appVersion", "cid", "sec", "deviceId") if k in credentials}
    return SessionConfig(
        platform=platform,
        session_id=f"conformance-{next(_sessions)}",
        accounts={ACCOUNT: credentials["accounts"][0]},
        endpoint=simulator.base_url,
        username=credentials["name"],
        secret=credentials["password"],
        options={**app, "reconnect_initial_s": 0.05, "reconnect_max_s": 0.5, "heartbeat_s": 0.25},
    )


def projectx_config(platform: str, simulator: Any, credentials: Mapping[str, Any]) -> SessionConfig:
    """ProjectX: loginKey with userName/apiKey; the hub URL comes from the simulator."""
    first = next(iter(credentials["accounts"]))
    return SessionConfig(
        platform=platform,
        session_id=f"conformance-{next(_sessions)}",
        accounts={ACCOUNT: first},
        endpoint=credentials.get("base_url", simulator.base_url),
        username=credentials["userName"],
        secret=credentials["apiKey"],
        options={"hub_url": credentials["user_hub_url"], "reconnect_min_s": 0.05, "reconnect_max_s": 0.5},
    )


def rithmic_config(platform: str, simulator: Any, credentials: Mapping[str, Any]) -> SessionConfig:
    """Rithmic: user/password and the system name of RequestLogin; quick reconnects."""
    return SessionConfig(
        platform=platform,
        session_id=f"conformance-{next(_sessions)}",
        accounts={ACCOUNT: credentials["accounts"][0]},
        endpoint=simulator.base_url,
        username=credentials["username"],
        secret=credentials["password"],
        options={
            "system_name": credentials["system_name"],
            "app_name": "ct:conformance",
            "reconnect_min_s": 0.05,
            "reconnect_max_s": 0.5,
        },
    )


def dtc_config(platform: str, simulator: Any, credentials: Mapping[str, Any]) -> SessionConfig:
    """DTC: the logon's username/password; the endpoint is the simulator's dtc://host:port."""
    return SessionConfig(
        platform=platform,
        session_id=f"conformance-{next(_sessions)}",
        accounts={ACCOUNT: credentials["accounts"][0]},
        endpoint=credentials.get("base_url", simulator.base_url),
        username=credentials["username"],
        secret=credentials["password"],
        options={"reconnect_min_s": 0.05, "reconnect_max_s": 0.5, "request_timeout_s": 5.0},
    )


def dxlink_config(platform: str, simulator: Any, credentials: Mapping[str, Any]) -> SessionConfig:
    """dxLink: a token and the symbols to subscribe; no accounts (market data only), so the
    scenario's account maps to a name the kernel opens and nothing ever trades on."""
    return SessionConfig(
        platform=platform,
        session_id=f"conformance-{next(_sessions)}",
        accounts={ACCOUNT: "market-data"},
        endpoint=simulator.base_url,
        secret=credentials["token"],
        options={"symbols": list(credentials["symbols"]), "reconnect_min_s": 0.05, "reconnect_max_s": 0.5},
    )


def fix_config(platform: str, simulator: Any, credentials: Mapping[str, Any]) -> SessionConfig:
    """FIX: the login's CompIDs and Logon 553/554; a fresh FileStore (removed at exit); 1 s heartbeats."""
    import atexit
    import shutil
    import tempfile

    store = tempfile.mkdtemp(prefix="ct-fix-conformance-")
    atexit.register(shutil.rmtree, store, True)
    return SessionConfig(
        platform=platform,
        session_id=f"conformance-{next(_sessions)}",
        accounts={ACCOUNT: credentials["accounts"][0]},
        endpoint=simulator.base_url,
        username=credentials["username"],
        secret=credentials["password"],
        options={
            "fix_version": credentials["fix_version"],
            "sender_comp_id": credentials["sender_comp_id"],
            "target_comp_id": credentials["target_comp_id"],
            "heartbeat_s": 1,
            "store_dir": store,
            "request_timeout_s": 5.0,
        },
    )


# --------------------------------------------------------------------------- registry


NINJATRADER_OPTIONS = {"reconnect_min_s": 0.05, "reconnect_max_s": 0.5, "request_timeout_s": 5.0}


def ninjatrader_ati_config(platform: str, simulator: Any, credentials: Mapping[str, Any]) -> SessionConfig:
    """The TCP route: the simulator's ATI port; no login (NinjaTrader has none)."""
    return SessionConfig(
        platform,
        f"conformance-{next(_sessions)}",
        {ACCOUNT: credentials["accounts"][0]},
        simulator.base_url,
        options=NINJATRADER_OPTIONS,
    )


def ninjatrader_oif_config(platform: str, simulator: Any, credentials: Mapping[str, Any]) -> SessionConfig:
    """The file route. The sentinel an earlier session of ours left in the outgoing folder is
    written first: this NinjaTrader has not restarted since (lookup's "none" needs that)."""
    from copytrader.brokers.ninjatrader.oif import SENTINEL

    (simulator.folders.outgoing / SENTINEL).write_text("an earlier session\n")
    return SessionConfig(
        platform,
        f"conformance-{next(_sessions)}",
        {ACCOUNT: credentials["accounts"][0]},
        simulator.oif_url,
        options=NINJATRADER_OPTIONS,
    )


PLATFORMS: dict[str, PaperPlatform | SimulatorPlatform] = {
    "paper": PaperPlatform(),
    # tick_ms: the Tradovate simulator's clock also applies the drop fault, and 0 would spin.
    # client_ttl_s: the socket closes after 1 s without the client's heartbeat (it beats every 0.25 s).
    "tradovate": SimulatorPlatform(
        "tradovate",
        "copytrader.brokers.tradovate.simulator:create_simulator",
        config=tradovate_config,
        options={"tick_ms": 20, "client_ttl_s": 1.0, "penalty_seconds": 1},
        features=frozenset(
            {
                "authentication",
                "reconnect",
                "transport_faults",
                "session_limit",
                "heartbeat_ttl",
                "penalty_tickets",
                "user_rate_limit",
                # its order routes honour FaultSwitches.take_lose_response()
                "lost_response",
                "lost_response_modify",
                "repeated_id_is_new",
            }
        ),
    ),
    "projectx": SimulatorPlatform(
        "projectx",
        "copytrader.brokers.projectx.simulator:create_simulator",
        # Auto OCO Brackets mode: the simulator's default is the platform's (Position Brackets),
        # which refuses every bracketed place.
        config=projectx_config,
        options={"tick_ms": 0, "bracket_mode": "auto_oco"},
        features=frozenset(
            {
                "authentication",
                "reconnect",
                "transport_faults",
                "lost_response",
                "lost_response_modify",
                "repeated_id_is_new",
                "suspended_bracket_children",
            }
        ),
    ),
    # heartbeat_interval: the server closes a session silent for twice it; the adapter beats
    # every half interval. Not "session_limit": a ForcedLogout stops the adapter (no recovery).
    "rithmic": SimulatorPlatform(
        "rithmic",
        "copytrader.brokers.rithmic.simulator:create_simulator",
        config=rithmic_config,
        options={"tick_ms": 0, "heartbeat_interval": 1.0},
        features=frozenset({"authentication", "reconnect", "transport_faults", "lost_response", "repeated_id_is_new"}),
    ),
    "dtc": SimulatorPlatform(
        "dtc",
        "copytrader.brokers.dtc.simulator:create_simulator",
        config=dtc_config,
        options={"tick_ms": 0},
        features=frozenset({"authentication", "reconnect"}),
    ),
    # NinjaTrader's two ATI routes. No login ("authentication"); the ATI reports no prices, so
    # a CHANGE whose answer was lost cannot be read back ("lost_response_modify"); one key holds
    # one order of a repeated ORDER ID ("repeated_id_is_new": tests/brokers/ninjatrader).
    "ninjatrader": SimulatorPlatform(
        "ninjatrader",
        "copytrader.brokers.ninjatrader.simulator:create_simulator",
        config=ninjatrader_ati_config,
        features=frozenset({"reconnect", "transport_faults", "lost_response"}),
    ),
    # Files have no connection to drop or answer to lose.
    "ninjatrader-oif": SimulatorPlatform(
        "ninjatrader",
        "copytrader.brokers.ninjatrader.simulator:create_simulator",
        config=ninjatrader_oif_config,
        features=frozenset(),
    ),
    "fix": SimulatorPlatform(
        "fix",
        "copytrader.brokers.fix.simulator:create_simulator",
        config=fix_config,
        features=frozenset(
            {
                "authentication",
                "reconnect",
                "transport_faults",
                "lost_response",
                "lost_response_modify",
                "repeated_id_is_new",
            }
        ),
    ),
    # Market data only: every order scenario skips with "market data only" (runner.py).
    "dxlink": SimulatorPlatform(
        "dxlink",
        "copytrader.brokers.dxlink.simulator:create_simulator",
        config=dxlink_config,
        options={"tick_ms": 0},
        bad_credentials={"secret": "wrong-token"},
        features=frozenset({"authentication", "reconnect"}),
    ),
}

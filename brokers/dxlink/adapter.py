"""dxFeed dxLink as a :class:`BrokerAdapter`: a market-data session that declares no order entry.

dxLink carries market data only (FEED, DOM): it has no orders, accounts, positions or fills
(``docs/fidelity/dxlink.md``). The adapter exists so a dxLink login is configured, connected,
health-checked and run through the conformance suite like any platform, and so every order
request aimed at it fails loudly (:class:`UnsupportedOperation`) instead of vanishing. Prices
reach the copier through :attr:`DxLinkAdapter.client` (or a :class:`DxLinkClient` of the
price feed's own); the client reconnects and resubscribes by itself, and the adapter's
connection state follows it.

Session options (``options.py``): ``symbols`` (dxFeed symbols to subscribe on connect),
``data_format`` (``COMPACT``, the default, or ``FULL``), ``connect_timeout_s`` (10),
``reconnect_min_s`` (0.2) and ``reconnect_max_s`` (10). ``endpoint`` is the WebSocket URL,
``secret`` the token.
"""

from __future__ import annotations

import asyncio
from typing import ClassVar

from ..base import BrokerAdapter, SessionConfig
from ..errors import AuthenticationFailed, BrokerUnavailable, UnsupportedOperation
from ..model import (
    AccountSnapshot,
    CancelOrder,
    Capabilities,
    ConnectionState,
    FlattenPosition,
    ModifyOrder,
    OrderAck,
    PlaceOrder,
)
from ..options import read_options
from .client import AuthError, DxLinkClient, DxLinkError
from .events import EVENT_TYPES
from .options import DxLinkOptions
from .protocol import DataFormat

MARKET_DATA_ONLY = "dxlink is market data only: the dxLink protocol has no order entry"


class DxLinkAdapter(BrokerAdapter):
    platform: ClassVar[str] = "dxlink"
    capabilities: ClassVar[Capabilities] = Capabilities(
        order_entry=False,
        market_data=True,
        order_types=frozenset(),
        modify=False,
        brackets=False,
        oco=False,
        flatten=False,
        client_id_dedupe=False,
        lookup=False,
        partial_fills=False,
        snapshot=False,
        fill_corrections=False,
    )

    def __init__(self, config: SessionConfig) -> None:
        super().__init__(config)
        if not config.endpoint:
            raise ValueError(f"dxlink session {config.session_id!r}: endpoint (the dxLink WebSocket URL) is required")
        self._options = read_options(DxLinkOptions, config.options)
        self.symbols: tuple[str, ...] = tuple(self._options.symbols)
        self.data_format: DataFormat = self._options.data_format
        self.connect_timeout_s = self._options.connect_timeout_s
        self.client: DxLinkClient | None = None

    # -- lifecycle -------------------------------------------------------------------
    async def connect(self) -> None:
        """Open the connection and the FEED channel, subscribed to ``symbols``; a refused token
        is :class:`AuthenticationFailed` (never retried), a server that does not answer within
        ``connect_timeout_s`` is :class:`BrokerUnavailable`."""
        if self.client is not None:
            return
        client = DxLinkClient(
            self.config.endpoint or "",
            self.config.secret,
            data_format=self.data_format,
            first_retry_s=self._options.reconnect_min_s,
            max_retry_s=self._options.reconnect_max_s,
            on_state=self._on_client_state,
        )
        self.client = client
        await client.start()
        if self.symbols:
            await client.subscribe(self.symbols, EVENT_TYPES)
        try:
            await client.connected(self.connect_timeout_s)
        except AuthError as exc:
            await self._close_client()
            raise AuthenticationFailed(f"dxlink refused the token: {exc}", code=exc.kind) from exc
        except (TimeoutError, DxLinkError, OSError) as exc:
            await self._close_client()
            reason = str(exc) or f"no answer within {self.connect_timeout_s:g}s"
            raise BrokerUnavailable(f"dxlink {self.config.endpoint}: {reason}", sent=False) from exc

    async def disconnect(self) -> None:
        await self._close_client()
        self._set_state(ConnectionState.DISCONNECTED)

    async def _close_client(self) -> None:
        client, self.client = self.client, None
        if client is not None:
            await asyncio.shield(client.close())

    def _on_client_state(self, state: ConnectionState, reason: str | None) -> None:
        """The client reconnects on its own; the session's health follows it."""
        if self.client is None and state is not ConnectionState.DISCONNECTED:
            return
        self._set_state(state, reason)

    # -- orders: none ------------------------------------------------------------------
    async def place(self, command: PlaceOrder) -> OrderAck:
        raise UnsupportedOperation(f"{MARKET_DATA_ONLY} (place {command.client_order_id})")

    async def modify(self, command: ModifyOrder) -> OrderAck:
        raise UnsupportedOperation(f"{MARKET_DATA_ONLY} (modify {command.client_order_id})")

    async def cancel(self, command: CancelOrder) -> OrderAck:
        raise UnsupportedOperation(f"{MARKET_DATA_ONLY} (cancel {command.client_order_id})")

    async def flatten(self, command: FlattenPosition) -> OrderAck:
        raise UnsupportedOperation(f"{MARKET_DATA_ONLY} (flatten {command.client_order_id})")

    async def lookup(self, account_id: str, client_order_id: str) -> OrderAck | None:
        raise UnsupportedOperation(f"{MARKET_DATA_ONLY} (lookup {client_order_id})")

    async def snapshot(self, account_id: str) -> AccountSnapshot:
        raise UnsupportedOperation(f"{MARKET_DATA_ONLY}: no accounts, positions or orders (snapshot {account_id})")

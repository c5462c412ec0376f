"""How the protective-stop watcher reads the broker (``protective_wiring.broker_truth``): only a
connected session's snapshot counts, and any failure to read it is "cannot tell", never "flat"."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import ClassVar

import pytest

from copytrader.agents.execution.protective_orders import Truth, Unverifiable
from copytrader.agents.execution.protective_wiring import broker_truth
from copytrader.agents.shared.sessions import SessionPool
from copytrader.brokers.base import BrokerAdapter, SessionConfig
from copytrader.brokers.model import (
    AccountSnapshot,
    CancelOrder,
    Capabilities,
    ConnectionState,
    FlattenPosition,
    ModifyOrder,
    OrderAck,
    OrderEvent,
    OrderStatus,
    OrderType,
    PlaceOrder,
    PositionEvent,
    Side,
)
from copytrader.core.config import parse_config

CONFIG = parse_config(
    {
        "sessions": [{"id": "s", "platform": "paper"}],
        "accounts": [{"id": "L", "session": "s"}, {"id": "f1", "session": "s"}],
        "copy_groups": [{"leader": "L", "followers": [{"account": "f1"}]}],
    },
    env={},
)


def order(client_id: str | None, symbol: str, side: Side, kind: OrderType, status: OrderStatus) -> OrderEvent:
    return OrderEvent(
        "f1", client_id, f"B-{client_id}", symbol, side, kind, 1, status, stop_price=Decimal("4990"), limit_price=None
    )


class Broker(BrokerAdapter):
    platform: ClassVar[str] = "fake"
    capabilities: ClassVar[Capabilities] = Capabilities()

    def __init__(self, config: SessionConfig) -> None:
        super().__init__(config)
        self.snapshot_error: Exception | None = None
        self.slow = False

    async def connect(self) -> None:
        self._set_state(ConnectionState.CONNECTED)

    async def disconnect(self) -> None:
        self._set_state(ConnectionState.DISCONNECTED)

    async def place(self, command: PlaceOrder) -> OrderAck:
        raise AssertionError("reading the broker never places")

    async def modify(self, command: ModifyOrder) -> OrderAck:
        raise AssertionError("reading the broker never modifies")

    async def cancel(self, command: CancelOrder) -> OrderAck:
        raise AssertionError("reading the broker never cancels")

    async def flatten(self, command: FlattenPosition) -> OrderAck:
        raise AssertionError("reading the broker never flattens")

    async def snapshot(self, account_id: str) -> AccountSnapshot:
        if self.slow:
            await asyncio.sleep(10)
        if self.snapshot_error is not None:
            raise self.snapshot_error
        orders = (
            order("CTstop", "ESZ6", Side.SELL, OrderType.STOP, OrderStatus.WORKING),
            order(None, "ESZ6", Side.SELL, OrderType.STOP_LIMIT, OrderStatus.PENDING),
            order("CTtp", "ESZ6", Side.SELL, OrderType.LIMIT, OrderStatus.WORKING),  # a take-profit: no stop
            order("CTnq", "NQZ6", Side.SELL, OrderType.STOP, OrderStatus.WORKING),  # another symbol
        )
        positions = (PositionEvent("f1", "ESZ6", 2, Decimal("5000")), PositionEvent("f1", "NQZ6", -1, None))
        return AccountSnapshot("f1", Decimal(50000), orders, positions)


@pytest.fixture
async def pool() -> SessionPool:
    return SessionPool(CONFIG, lambda config: Broker(config))


async def test_the_symbols_position_and_working_stops_from_the_snapshot(pool: SessionPool) -> None:
    await pool.adapter_for("f1")
    truth = await broker_truth(pool, timeout_s=1.0)("f1", "ESZ6")
    assert truth == Truth(2, (("CTstop", -1), (None, -1)))


async def test_a_session_never_opened_is_not_opened_to_look(pool: SessionPool) -> None:
    with pytest.raises(Unverifiable, match="session s is not connected"):
        await broker_truth(pool, timeout_s=1.0)("f1", "ESZ6")
    assert pool.connected() == {}


async def test_a_disconnected_session_cannot_tell(pool: SessionPool) -> None:
    adapter = await pool.adapter_for("f1")
    await adapter.disconnect()
    with pytest.raises(Unverifiable, match="not connected"):
        await broker_truth(pool, timeout_s=1.0)("f1", "ESZ6")


@pytest.mark.parametrize("error", [RuntimeError("boom"), ValueError("bad snapshot"), ConnectionResetError()])
async def test_a_failed_snapshot_cannot_tell(pool: SessionPool, error: Exception) -> None:
    adapter = await pool.adapter_for("f1")
    assert isinstance(adapter, Broker)
    adapter.snapshot_error = error
    with pytest.raises(Unverifiable, match="snapshot of f1 failed"):
        await broker_truth(pool, timeout_s=1.0)("f1", "ESZ6")


async def test_a_slow_snapshot_cannot_tell(pool: SessionPool) -> None:
    adapter = await pool.adapter_for("f1")
    assert isinstance(adapter, Broker)
    adapter.slow = True
    with pytest.raises(Unverifiable, match="snapshot of f1 failed"):
        await broker_truth(pool, timeout_s=0.05)("f1", "ESZ6")


async def test_an_account_nobody_configured_cannot_tell(pool: SessionPool) -> None:
    with pytest.raises(Unverifiable, match="ghost"):
        await broker_truth(pool, timeout_s=1.0)("ghost", "ESZ6")

"""The protective-stop invariant over a real wire protocol (issue #17 item 4): the executor's
follower is a Tradovate account on the Tradovate simulator (REST orders, WebSocket ``props``,
the kernel's reject fault). The rejected stop copy is placed again within the deadline; the
follower ends protected, and ``order.errors`` says so."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import pytest
from waiting import wait_until

from copytrader.agents.execution.agent import submit_batch
from copytrader.agents.shared.outbox import MemoryOutbox
from copytrader.app.factory import CopyTraderApp, create_app
from copytrader.brokers.model import OrderType, Side
from copytrader.brokers.paper.adapter import reset_venues
from copytrader.brokers.tradovate.simulator import TradovateSimulator, create_simulator
from copytrader.core import ids
from copytrader.core.config import parse_config
from copytrader.core.records import IntentBatch, OrderError, OrderIntent
from copytrader.core.settings import Settings

DEADLINE_S = 0.5
SYMBOL = "MESZ6"


@pytest.fixture
async def sim() -> AsyncIterator[TradovateSimulator]:
    simulator = create_simulator(tick_ms=600_000, heartbeat_s=0.5)  # market time frozen: prices only move when set
    await simulator.start()
    yield simulator
    await simulator.stop()


@pytest.fixture
async def app(sim: TradovateSimulator, tmp_path: Path, outbox: MemoryOutbox) -> AsyncIterator[CopyTraderApp]:
    reset_venues()
    creds = sim.demo_credentials()
    config = {
        "sessions": [
            {"id": "p", "platform": "paper", "options": {"tick_ms": 0, "venue": "protective-tv"}},
            {
                "id": "tv",
                "platform": "tradovate",
                "endpoint": sim.base_url,
                "username": creds["name"],
                "secret_env": "TV_PASSWORD",
                "options": {
                    "appId": creds["appId"],
                    "cid": creds["cid"],
                    "sec": creds["sec"],
                    "deviceId": creds["deviceId"],
                    "heartbeat_s": 0.5,
                    "reconnect_initial_s": 0.05,
                    "request_timeout_s": 5.0,
                },
            },
        ],
        "accounts": [
            {"id": "L", "session": "p"},
            {"id": "f1", "session": "tv", "broker_account": creds["accounts"][0]},
        ],
        "copy_groups": [{"leader": "L", "followers": [{"account": "f1"}], "protective_stop_s": DEADLINE_S}],
    }
    settings = Settings(
        app_id=f"protective-{uuid.uuid4().hex[:8]}",
        kafka_broker="kafka://127.0.0.1:1",
        data_dir=tmp_path,
        roles=("execute",),
        executor_consumer="faust",
    )
    built = create_app(settings, parse_config(config, env={"TV_PASSWORD": creds["password"]}), outbox=outbox)
    built.finalize()
    built.conf.store = "memory://"
    built.flow_control.resume()
    yield built
    await built.runtime.pool.close()
    reset_venues()


def copy(leader_order: str, side: str, quantity: int, **kw: object) -> OrderIntent:
    signal = ids.signal_id("L", leader_order, "new")
    return OrderIntent(
        client_order_id=ids.client_order_id(signal, "f1"),
        signal_id=signal,
        account_id="f1",
        platform="tradovate",
        leader_account="L",
        action="place",
        symbol=SYMBOL,
        side=side,
        quantity=quantity,
        stamps={"detected": time.time()},
        **kw,
    )


def errors(outbox: MemoryOutbox, code: str) -> list[OrderError]:
    return [e for e in outbox.sent["error"] if isinstance(e, OrderError) and e.code == code]


async def test_a_rejected_stop_copy_on_tradovate_is_placed_again_within_the_deadline(
    app: CopyTraderApp, sim: TradovateSimulator, outbox: MemoryOutbox
) -> None:
    account = sim.demo_credentials()["accounts"][0]
    sim.exchange.set_price(SYMBOL, Decimal("5000"))

    stage = app.runtime.execution
    assert stage is not None

    async def done() -> None:
        return None

    entry = copy("1", "buy", 2)
    submit_batch(stage, IntentBatch(batch_id="b1", intents=[entry]), done)
    position = sim.exchange.account(account).positions
    await wait_until(lambda: position.get(SYMBOL) and position[SYMBOL].net_quantity == 2, timeout_s=10, what="long 2")
    sim.faults(account).reject_next = "stop price outside the allowed band"
    stop = copy("2", "sell", 2, order_type="stop", stop_price=Decimal("4990"))
    submit_batch(stage, IntentBatch(batch_id="b2", intents=[stop]), done)
    [rejected] = await wait_until(lambda: outbox.sent["error"], timeout_s=10, what="the stop copy rejected")
    assert rejected.client_order_id == stop.client_order_id and "outside the allowed band" in rejected.reason
    rejected_at = time.monotonic()
    [said] = await wait_until(lambda: errors(outbox, "STOP_MISSING_REPLACED"), timeout_s=10, what="the stop again")
    assert time.monotonic() - rejected_at < DEADLINE_S + 3  # the deadline, one snapshot, one order
    working = [o for o in sim.exchange.open_orders(account) if o.order_type is OrderType.STOP]
    assert [(o.side, o.quantity, o.stop_price, o.client_order_id) for o in working] == [
        (Side.SELL, 2, Decimal("4990"), said.client_order_id)
    ]
    assert f"f1 held +2 {SYMBOL}" in said.reason
    assert sim.exchange.account(account).positions[SYMBOL].net_quantity == 2
    assert not errors(outbox, "STOP_MISSING_FLATTENED")

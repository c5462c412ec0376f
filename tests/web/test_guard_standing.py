"""The dashboard's view of the risk guards: each guarded follower's rules and its standing,
computed by the web worker from the fills it reads and its own quotes (``/api/guards``)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest_asyncio
from aiohttp.test_utils import TestClient, TestServer
from webtest_helpers import FastUsers, RecordingTopic, Web

from copytrader.agents.shared.outbox import MemoryOutbox
from copytrader.app.factory import create_app
from copytrader.core.config import parse_config
from copytrader.core.records import Execution, OrderError
from copytrader.core.settings import Settings
from copytrader.web.server import WebContext

CONFIG = {
    "sessions": [{"id": "p", "platform": "paper"}],
    "accounts": [{"id": "L", "session": "p"}, {"id": "f1", "session": "p"}, {"id": "f2", "session": "p"}],
    "copy_groups": [
        {
            "leader": "L",
            "followers": [
                {
                    "account": "f1",
                    "guards": {
                        "max_contracts_per_symbol": 4,
                        "daily_loss": {"limit": 500},
                        "window": {"start": "00:00", "end": "00:01", "days": ["sat"], "tz": "America/Chicago"},
                    },
                },
                {"account": "f2"},
            ],
        }
    ],
    "market_data": {"platform": "dxlink", "endpoint": "ws://127.0.0.1:1", "symbols": {"ESZ6": "/ESZ26:XCME"}},
}


@pytest_asyncio.fixture
async def guarded_web(tmp_path: Path) -> AsyncIterator[Web]:
    app = create_app(
        Settings(data_dir=tmp_path, roles=("web",), app_id="guardweb"), parse_config(CONFIG, env={}), outbox=None
    )
    ctx: WebContext = app.runtime.web  # type: ignore[assignment]
    ctx.auth.users = FastUsers()  # type: ignore[assignment]  # the guards are under test, not scrypt
    client = TestClient(TestServer(app.web.web_app))
    await client.start_server()
    try:
        yield Web(client, ctx, MemoryOutbox(), RecordingTopic())
    finally:
        await client.close()


def fill(n: int, side: str, quantity: int, price: str, at: datetime) -> Execution:
    return Execution(
        execution_id=f"f1|B{n}|fill|{n}",
        account_id="f1",
        platform="paper",
        kind="fill",
        symbol="ESZ6",
        side=side,
        quantity=quantity,
        price=Decimal(price),
        occurred_at=at,
    )


async def test_the_dashboard_shows_each_followers_guards_and_standing(guarded_web: Web) -> None:
    live = guarded_web.ctx.live
    quotes = guarded_web.ctx.runtime.quotes
    assert quotes is not None
    now = datetime.now(UTC)
    yesterday = now - timedelta(days=1)
    live.apply_execution(fill(1, "buy", 1, "5000", yesterday), 0, 0)
    live.apply_execution(fill(2, "sell", 1, "4990", yesterday), 0, 1)  # -500 yesterday: not today's
    live.apply_execution(fill(3, "buy", 3, "5000", now), 0, 2)
    live.apply_execution(fill(3, "buy", 3, "5000", now), 0, 2)  # read again: counted once
    assert (await guarded_web.client.get("/api/guards")).status == 401
    await guarded_web.login()
    quotes.update("ESZ6", bid=Decimal("4998"), ask=Decimal("4998.25"))  # 3 long at the bid: -300
    answer = await (await guarded_web.client.get("/api/guards")).json()
    assert answer["market_data"] is True
    assert list(answer["accounts"]) == ["f1"]  # f2 has no guards
    f1 = answer["accounts"]["f1"]
    assert f1["rules"] == [
        "max 4 contracts per symbol",
        "daily loss 500 (flatten_and_pause)",
        "window 00:00-00:01 sat America/Chicago",
    ]
    assert f1["standing"][:2] == ["ESZ6 3/4", "daily loss 300.00/500.00"]
    assert f1["standing"][2] in ("outside window", "window open")
    assert len(f1["standing"]) == 3
    # The executor's breach (order.errors) is shown while in force: a daily one for its day only.
    for n, at in enumerate((yesterday, now)):
        breach = OrderError(
            error_id=f"guard|f1|GUARD_DAILY_LOSS|{n}",
            stage="execute",
            reason=f"daily loss 510.00/500.00 (n{n}): flattening and pausing f1",
            account_id="f1",
            code="GUARD_DAILY_LOSS",
            occurred_at=at,
        )
        live.apply_error(breach, 0, n)
        standing = (await (await guarded_web.client.get("/api/guards")).json())["accounts"]["f1"]["standing"]
        shown = [line for line in standing if line.startswith("breached")]
        assert shown == ([] if at is yesterday else [f"breached (GUARD_DAILY_LOSS): {breach.reason}"])

"""The paper adapter renames the exchange's account in each event to ours: the same event
``dataclasses.replace`` made, for every kind the kernel publishes (and the event itself when
the names agree: events are frozen)."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from copytrader.brokers.base import SessionConfig
from copytrader.brokers.model import FillCorrection, FillEvent, OrderEvent, OrderStatus, OrderType, PositionEvent, Side
from copytrader.brokers.paper.adapter import PaperAdapter, reset_venues
from copytrader.brokers.simkernel.exchange import KernelEvent

AT = datetime(2026, 12, 1, tzinfo=UTC)
EVENTS: list[KernelEvent] = [
    OrderEvent(
        "FOL-1",
        "c1",
        "1001",
        "ESZ6",
        Side.BUY,
        OrderType.LIMIT,
        2,
        OrderStatus.WORKING,
        0,
        Decimal(5000),
        None,
        "r",
        AT,
    ),
    FillEvent("FOL-1", "c1", "1001", "5001", "ESZ6", Side.BUY, 1, Decimal("5000.25"), 1, 1, AT),
    FillCorrection(
        "FOL-1", "c1", "1001", "5001", "5002", "ESZ6", Side.BUY, False, 1, Decimal(5001), 1, Decimal(5000), AT
    ),
    PositionEvent("FOL-1", "ESZ6", 1, Decimal("5000.25"), Decimal(0)),
]


@pytest.fixture
def adapter() -> PaperAdapter:
    reset_venues()
    config = SessionConfig(session_id="p", platform="paper", accounts={"f1": "FOL-1", "same": "same"})
    return PaperAdapter(config)


@pytest.mark.parametrize("event", EVENTS, ids=lambda e: type(e).__name__)
def test_an_event_is_renamed_as_replace_renames_it(adapter: PaperAdapter, event: KernelEvent) -> None:
    ours = adapter._ours(event)
    assert ours == dataclasses.replace(event, account_id="f1")
    assert type(ours) is type(event)


def test_an_event_already_named_ours_is_passed_on(adapter: PaperAdapter) -> None:
    event: KernelEvent = dataclasses.replace(EVENTS[1], account_id="same")
    assert adapter._ours(event) is event

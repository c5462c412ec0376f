"""The web worker's live slippage: rows completed when the leader's fill comes later, a
correction re-measures its fill, a bust takes it out of the report, memory stays bounded."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from copytrader.core import ids
from copytrader.core.config import parse_config
from copytrader.core.records import Execution
from copytrader.web.slippage import LiveSlippage

NEW = ids.signal_id("L", "7", "new")
CONFIG = parse_config(
    {
        "sessions": [{"id": "p", "platform": "paper"}],
        "accounts": [{"id": "L", "session": "p"}, {"id": "F", "session": "p"}],
        "copy_groups": [{"id": "g", "leader": "L", "followers": [{"account": "F"}]}],
    },
    env={},
)


def record(
    kind: str, n: int, price: str | None, *, leader: bool = False, corrects: str | None = None, qty: int = 1
) -> Execution:
    return Execution(
        execution_id=f"{'L' if leader else 'F'}|{n}|{kind}",
        account_id="L" if leader else "F",
        platform="paper",
        kind=kind,
        client_order_id=None if leader else ids.client_order_id(NEW, "F"),
        broker_order_id="7" if leader else "B1",
        signal_id=None if leader else NEW,
        symbol="ESZ6",
        side="buy",
        quantity=qty,
        price=Decimal(price) if price else None,
        is_leader=leader,
        corrects=corrects,
        reference_price=None if leader else Decimal("5000.00"),
        occurred_at=datetime(2026, 3, 2, tzinfo=UTC),
    )


def feed(book: LiveSlippage, ex: Execution) -> dict[str, Any]:
    row = {**ex.as_dict()}
    book.annotate(ex, row)
    return row


def test_rows_are_completed_corrected_and_busted() -> None:
    book = LiveSlippage()
    first = feed(book, record("fill", 1, "5001.00"))
    second = feed(book, record("fill", 2, "5001.00"))
    assert first["slippage_leader_ticks"] is None and first["slippage_ref_ticks"] == Decimal(4)
    feed(book, record("fill", 1, "5000.50", leader=True, qty=2))
    assert (first["leader_price"], first["slippage_leader_ticks"], first["slippage_leader_amount"]) == (
        Decimal("5000.50"),
        Decimal(2),
        Decimal(25),
    )
    feed(book, record("fill_correction", 3, "5000.75", corrects=first["execution_id"]))
    assert first["slippage_leader_ticks"] == Decimal(1)
    feed(book, record("fill_bust", 4, None, corrects=second["execution_id"], qty=0))
    assert second["slippage_leader_ticks"] is None and second["slippage_ref_ticks"] is None
    (copy,) = book.copies_between(CONFIG, None, None)
    assert (copy.group_id, copy.quantity, copy.leader_ticks, copy.ref_ticks) == ("g", 1, Decimal(1), Decimal(3))


def test_memory_is_bounded() -> None:
    book = LiveSlippage(capacity=3)
    for n in range(10):
        ex = record("fill", n, "5000")
        ex.client_order_id = f"C{n}"
        feed(book, ex)
    assert list(book.copies) == ["C7", "C8", "C9"]
    assert book.copies_of == {"L:7": {"C7", "C8", "C9"}}  # the index forgets with the copies


def test_a_leader_fill_completes_exactly_the_remembered_copies_of_its_order() -> None:
    book = LiveSlippage(capacity=4)
    rows: dict[str, dict[str, Any]] = {}
    for n in range(6):  # two copies of another leader order between, then forgotten ones
        ex = record("fill", n, "5001.00")
        ex.client_order_id = f"C{n}"
        if n % 3 == 1:
            ex.signal_id = ids.signal_id("L", "8", "new")  # a copy of leader order 8
        rows[f"C{n}"] = feed(book, ex)
    feed(book, record("fill", 1, "5000.50", leader=True))  # leader order 7 fills
    completed = {c for c, row in rows.items() if row["slippage_leader_ticks"] is not None}
    assert completed == {"C2", "C3", "C5"}  # C2..C5 remembered; C4 copies order 8; C0, C1 forgotten
    assert sum(len(v) for v in book.copies_of.values()) == len(book.copies) == 4

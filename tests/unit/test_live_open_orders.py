"""The dashboard's "Open" column counts working orders correctly whatever order the executor's
records arrive in (found in the demo: every follower showed 4 open orders while flat)."""

from __future__ import annotations

from decimal import Decimal

from copytrader.core.records import Execution
from copytrader.web.live import AccountView

_n = 0


def record(kind: str, broker_order_id: str, client_order_id: str, *, leaves: int = 0, filled: int = 0) -> Execution:
    global _n
    _n += 1
    fill = kind in ("fill", "partial_fill")
    return Execution(
        execution_id=f"e{_n}",
        account_id="f001",
        platform="paper",
        kind=kind,
        signal_id=f"leader-1:{_n}:new",
        client_order_id=client_order_id,
        broker_order_id=broker_order_id,
        symbol="ESZ6",
        side="buy",
        quantity=filled if fill else 1,
        price=Decimal("5000") if fill else None,
        leaves_quantity=leaves,
    )


def view() -> AccountView:
    return AccountView("f001", "paper", "follower")


def test_a_market_order_whose_fill_arrives_before_its_ack_is_not_left_open() -> None:
    account = view()
    account.track_order(record("fill", "1018", "CT1", filled=1))
    account.track_order(record("ack", "1018", "CT1"))
    assert account.open_orders == set()


def test_a_resting_order_is_one_open_order_through_modifies_and_gone_after_its_cancel() -> None:
    account = view()
    account.track_order(record("ack", "1085", "CT-place"))
    assert account.open_orders == {"1085"}
    account.track_order(record("modified", "1085", "CT-modify"))  # a modify has a client id of its own
    assert account.open_orders == {"1085"}
    account.track_order(record("cancelled", "1085", "CT-cancel"))  # and so has the cancel
    assert account.open_orders == set()


def test_a_partial_fill_keeps_the_order_open_until_nothing_is_left() -> None:
    account = view()
    account.track_order(record("ack", "7", "CT7"))
    account.track_order(record("partial_fill", "7", "CT7", leaves=2, filled=1))
    assert account.open_orders == {"7"}
    account.track_order(record("fill", "7", "CT7", leaves=0, filled=2))
    assert account.open_orders == set()


def test_a_reject_without_a_broker_id_is_tracked_by_its_client_id() -> None:
    account = view()
    account.track_order(
        Execution(
            execution_id="r1",
            account_id="f001",
            platform="paper",
            kind="reject",
            signal_id="leader-1:9:new",
            client_order_id="CT9",
            symbol="ESZ6",
            side="buy",
            quantity=1,
            reason="no margin",
        )
    )
    account.track_order(record("ack", "", "CT9"))  # a confused late ack for the same request
    assert account.open_orders == set()

"""The protective-stop watcher (issue #17 item 4) on a fake clock: a follower holding a position
without the leader's stop is protected again (re-placed once, else flattened) after its
deadline, only on what the broker confirms, and every action is said on ``order.errors``."""

from __future__ import annotations

import json
from collections.abc import Callable
from decimal import Decimal

import pytest

from copytrader.agents.execution import protective_orders as orders
from copytrader.agents.execution.protective import ProtectiveStops
from copytrader.agents.execution.protective_orders import PROTECT_SIGNAL_PREFIX, Truth, Unverifiable
from copytrader.agents.notify.notices import from_error
from copytrader.brokers.model import FillEvent, OrderEvent, OrderStatus, OrderType, PositionEvent, Side
from copytrader.core import ids
from copytrader.core.records import Execution, OrderError, OrderIntent

DEADLINE = 2.0


class Handle:
    def __init__(self, due: float, callback: Callable[[], None]) -> None:
        self.due, self.callback, self.cancelled = due, callback, False

    def cancel(self) -> None:
        self.cancelled = True


class FakeClock:
    """``call_later`` that fires only when a test advances the time."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.handles: list[Handle] = []

    def __call__(self) -> float:
        return self.now

    def call_later(self, delay: float, callback: Callable[[], None]) -> Handle:
        handle = Handle(self.now + delay, callback)
        self.handles.append(handle)
        return handle

    def advance(self, seconds: float) -> None:
        self.now += seconds
        while due := [h for h in self.handles if not h.cancelled and h.due <= self.now]:
            for handle in due:
                self.handles.remove(handle)
                handle.callback()

    def armed(self) -> list[float]:
        return [h.due - self.now for h in self.handles if not h.cancelled]


class Broker:
    """The broker's truth as the watcher reads it; ``down`` makes it unreadable."""

    def __init__(self) -> None:
        self.position = 0
        self.stops: tuple[tuple[str | None, int], ...] = ()
        self.down = False
        self.reads = 0

    async def verify(self, account_id: str, symbol: str) -> Truth:
        self.reads += 1
        if self.down:
            raise Unverifiable("session s is not connected")
        return Truth(self.position, self.stops)


class Harness:
    def __init__(self, deadline: float | None = DEADLINE) -> None:
        self.clock = FakeClock()
        self.broker = Broker()
        self.sent: list[OrderIntent] = []
        self.errors: list[OrderError] = []

        async def report(error: OrderError) -> None:
            self.errors.append(error)

        self.watcher = ProtectiveStops(
            lambda _leader, _follower: deadline,
            self.broker.verify,
            self.sent.append,
            report,
            self.clock,
            self.clock.call_later,
        )

    def position(self, net: int) -> None:
        self.broker.position = net
        self.watcher.on_event(PositionEvent("f1", "ESZ6", net, Decimal("5000")))

    def fill(self, side: Side, quantity: int, client_id: str | None = None) -> None:
        self.broker.position += side.sign * quantity
        self.watcher.on_event(
            FillEvent("f1", client_id, "B9", f"x{client_id}", "ESZ6", side, quantity, Decimal("5000"), quantity, 0)
        )

    def outcome(self, intent: OrderIntent, code: str | None = None) -> None:
        """The router's one outcome: an ack, or an error with ``code``."""
        if code is None:
            ack = Execution(
                execution_id=f"{intent.client_order_id}|ack",
                account_id=intent.account_id,
                platform="paper",
                kind="ack",
                client_order_id=intent.client_order_id,
            )
            self.watcher.on_outcome(intent, ack)
        else:
            error = OrderError(
                error_id=f"{intent.client_order_id}|execute",
                stage="execute",
                reason=f"broker said {code}",
                account_id=intent.account_id,
                client_order_id=intent.client_order_id,
                code=code,
            )
            self.watcher.on_outcome(intent, error)

    async def advance(self, seconds: float) -> None:
        self.clock.advance(seconds)
        await self.watcher.settled()

    def codes(self) -> list[str]:
        return [e.code or "" for e in self.errors]


def stop_intent(signal: str = "L:7:new", side: str = "sell", quantity: int = 2, **kw: object) -> OrderIntent:
    base: dict[str, object] = dict(
        client_order_id=ids.client_order_id(signal, "f1"),
        signal_id=signal,
        account_id="f1",
        platform="paper",
        leader_account="L",
        action="place",
        symbol="ESZ6",
        side=side,
        quantity=quantity,
        order_type="stop",
        stop_price=Decimal("4990.25"),
    )
    return OrderIntent(**{**base, **kw})


def leader_change(action: str, target: OrderIntent, **kw: object) -> OrderIntent:
    signal = f"L:7:{action}:1"
    return OrderIntent(
        client_order_id=ids.client_order_id(signal, "f1"),
        signal_id=signal,
        account_id="f1",
        platform="paper",
        leader_account="L",
        action=action,
        symbol="ESZ6",
        side=target.side,
        quantity=kw.pop("quantity", target.quantity),
        target_client_order_id=target.client_order_id,
        **kw,
    )


async def test_a_rejected_stop_is_placed_again_at_the_deadline_and_said() -> None:
    h = Harness()
    h.position(2)
    stop = stop_intent()
    h.outcome(stop, "REJECTED")
    await h.advance(DEADLINE - 0.1)
    assert h.sent == [] and h.broker.reads == 0  # not before the deadline
    await h.advance(0.1)
    assert h.broker.reads == 1  # the broker is asked before anything is sent
    [replacement] = h.sent
    assert (replacement.action, replacement.order_type, replacement.side) == ("place", "stop", "sell")
    assert (replacement.stop_price, replacement.quantity, replacement.symbol) == (Decimal("4990.25"), 2, "ESZ6")
    assert replacement.client_order_id == ids.client_order_id(
        f"{PROTECT_SIGNAL_PREFIX}{stop.client_order_id}:replace:1", "f1"
    )
    assert replacement.leader_account == "L" and replacement.signal_id.startswith(PROTECT_SIGNAL_PREFIX)
    await h.advance(0.25)
    h.outcome(replacement)
    await h.watcher.settled()
    [said] = h.errors
    assert said.code == "STOP_MISSING_REPLACED" and said.client_order_id == replacement.client_order_id
    assert "f1 held +2 ESZ6" in said.reason and "2.25 s" in said.reason
    assert json.loads(said.payload or "") == {"symbol": "ESZ6", "position": 2, "naked_s": 2.25}
    await h.advance(10)
    assert len(h.sent) == 1 and h.clock.armed() == []  # protected: nothing more


async def test_a_replacement_rejected_too_flattens_the_symbol() -> None:
    h = Harness()
    h.position(-1)
    stop = stop_intent(side="buy", quantity=3)
    h.outcome(stop, "REJECTED")
    await h.advance(DEADLINE)
    [replacement] = h.sent
    assert replacement.quantity == 1  # never bigger than the position it protects
    h.outcome(replacement, "REJECTED")
    await h.advance(0)  # no second wait: the broker is read again, then the flatten goes
    assert h.broker.reads == 2
    flatten = h.sent[1]
    assert (flatten.action, flatten.symbol, flatten.account_id) == ("flatten", "ESZ6", "f1")
    h.outcome(flatten)
    await h.watcher.settled()
    assert h.codes() == ["STOP_MISSING_FLATTENED"]
    assert "f1 held -1 ESZ6" in h.errors[0].reason and "flattened" in h.errors[0].reason
    h.fill(Side.BUY, 1)
    await h.advance(10)
    assert len(h.sent) == 2


async def test_a_stop_the_broker_cancelled_later_is_replaced() -> None:
    h = Harness()
    h.position(1)
    stop = stop_intent()
    h.outcome(stop)
    await h.advance(5)
    assert h.clock.armed() == []
    event = OrderEvent("f1", stop.client_order_id, "B1", "ESZ6", Side.SELL, OrderType.STOP, 2, OrderStatus.CANCELLED)
    h.watcher.on_event(event)
    await h.advance(DEADLINE)
    assert [i.action for i in h.sent] == ["place"] and h.sent[0].quantity == 1


async def test_a_stop_that_turns_up_in_time_needs_nothing() -> None:
    h = Harness()
    h.position(2)
    stop = stop_intent()
    h.outcome(stop, "OUTCOME_UNKNOWN")
    await h.advance(1.0)
    late = OrderEvent("f1", stop.client_order_id, "B1", "ESZ6", Side.SELL, OrderType.STOP, 2, OrderStatus.WORKING)
    h.watcher.on_event(late)
    await h.advance(10)
    assert h.sent == [] and h.errors == [] and h.broker.reads == 0


async def test_a_late_lookup_that_finds_the_stop_needs_nothing() -> None:
    h = Harness()
    h.position(2)
    stop = stop_intent()
    h.outcome(stop, "OUTCOME_UNKNOWN")
    await h.advance(1.5)
    h.outcome(stop)  # the router's late lookup found it and reports the ack
    await h.advance(10)
    assert h.sent == [] and h.errors == []


async def test_a_position_gone_flat_needs_nothing() -> None:
    h = Harness()
    h.position(2)
    h.outcome(stop_intent(), "REJECTED")
    await h.advance(1.0)
    h.fill(Side.SELL, 2)
    h.position(0)  # an adapter that reports positions
    await h.advance(10)
    assert h.sent == [] and h.errors == [] and h.broker.reads == 0


async def test_a_position_gone_flat_by_fills_alone_needs_nothing() -> None:
    h = Harness()
    h.fill(Side.BUY, 2)  # an adapter that reports fills only
    h.watcher.books["f1"]["ESZ6"].position = 2  # as a snapshot left it
    h.outcome(stop_intent(), "REJECTED")
    await h.advance(1.0)
    h.fill(Side.SELL, 2)
    await h.advance(10)
    assert h.sent == [] and h.errors == [] and h.broker.reads == 0


async def test_the_broker_saying_flat_or_protected_overrules_our_count() -> None:
    h = Harness()
    h.position(2)
    h.outcome(stop_intent(), "REJECTED")
    h.broker.position = 0  # a fill we never saw
    await h.advance(DEADLINE)
    assert h.sent == [] and h.errors == []
    h.position(2)
    h.broker.stops = ((None, -1),)  # a sell stop the trader placed by hand
    await h.advance(DEADLINE)
    assert h.broker.reads == 2 and h.sent == [] and h.errors == []


async def test_a_session_down_is_reported_once_and_nothing_is_placed_until_it_is_back() -> None:
    h = Harness()
    h.position(2)
    h.outcome(stop_intent(), "REJECTED")
    h.broker.down = True
    await h.advance(DEADLINE)
    assert h.codes() == ["STOP_MISSING_UNVERIFIED"] and h.sent == []
    assert "cannot read the broker" in h.errors[0].reason and "waiting" in h.errors[0].reason
    for _ in range(3):
        await h.advance(DEADLINE)
    assert h.broker.reads == 4 and h.codes() == ["STOP_MISSING_UNVERIFIED"] and h.sent == []
    h.broker.down = False
    h.watcher.on_session_connected({"f1"})
    await h.advance(0)
    assert [i.action for i in h.sent] == ["place"]


async def test_an_unknown_outcome_is_cancelled_before_its_replacement() -> None:
    h = Harness()
    h.position(2)
    stop = stop_intent()
    h.outcome(stop, "OUTCOME_UNKNOWN")
    await h.advance(DEADLINE)
    cancel, place = h.sent
    assert (cancel.action, cancel.target_client_order_id) == ("cancel", stop.client_order_id)
    assert place.action == "place" and place.client_order_id != stop.client_order_id


async def test_the_leaders_later_modify_and_cancel_reach_the_replacement() -> None:
    h = Harness()
    h.position(2)
    stop = stop_intent()
    h.outcome(stop, "REJECTED")
    await h.advance(DEADLINE)
    [replacement] = h.sent
    h.outcome(replacement)
    modify = leader_change("modify", stop, stop_price=Decimal("4995"))
    h.outcome(modify, "UNKNOWN_ORDER")  # aimed at the copy that was rejected
    forwarded = h.sent[1]
    assert (forwarded.action, forwarded.target_client_order_id) == ("modify", replacement.client_order_id)
    assert forwarded.stop_price == Decimal("4995")
    h.outcome(forwarded)
    cancel = leader_change("cancel", stop)
    h.outcome(cancel, "UNKNOWN_ORDER")
    assert (h.sent[2].action, h.sent[2].target_client_order_id) == ("cancel", replacement.client_order_id)
    h.outcome(h.sent[2])
    await h.advance(10)
    assert len(h.sent) == 3  # the leader took its stop away: nothing to protect with


async def test_a_modified_stop_is_placed_again_as_the_leader_left_it() -> None:
    h = Harness()
    h.position(2)
    stop = stop_intent()
    h.outcome(stop)
    h.outcome(leader_change("modify", stop, stop_price=Decimal("4980"), quantity=1))
    h.watcher.on_event(
        OrderEvent("f1", stop.client_order_id, "B1", "ESZ6", Side.SELL, OrderType.STOP, 1, OrderStatus.EXPIRED)
    )
    await h.advance(DEADLINE)
    [again] = h.sent
    assert (again.stop_price, again.quantity) == (Decimal("4980"), 1)


async def test_an_entry_stop_on_the_positions_side_is_not_protective() -> None:
    h = Harness()
    h.position(2)
    h.outcome(stop_intent(side="buy"), "REJECTED")  # a buy stop adds to a long: an entry
    await h.advance(10)
    assert h.sent == [] and h.broker.reads == 0


async def test_a_stop_that_filled_is_done() -> None:
    h = Harness()
    h.position(2)
    stop = stop_intent()
    h.outcome(stop)
    h.fill(Side.SELL, 2, stop.client_order_id)
    h.fill(Side.BUY, 1)  # a new entry, no stop from the leader for it yet
    await h.advance(10)
    assert h.sent == [] and h.broker.reads == 0


async def test_a_leader_flatten_forgets_the_stops() -> None:
    h = Harness()
    h.position(2)
    stop = stop_intent()
    h.outcome(stop, "REJECTED")
    flatten = stop_intent(signal="L:9:flatten:0", action="flatten", order_type="market", stop_price=None)
    h.outcome(flatten)
    h.fill(Side.BUY, 3)  # the next trade
    await h.advance(10)
    assert h.sent == []


async def test_a_flatten_the_broker_refuses_is_said_and_tried_again() -> None:
    h = Harness()
    h.position(2)
    h.outcome(stop_intent(), "REJECTED")
    await h.advance(DEADLINE)
    h.outcome(h.sent[0], "REJECTED")
    await h.advance(0)
    first = h.sent[1]
    h.outcome(first, "BrokerUnavailable")
    await h.advance(DEADLINE)
    second = h.sent[2]
    assert second.action == "flatten" and second.client_order_id != first.client_order_id
    assert h.codes() == ["STOP_MISSING_FLATTEN_FAILED"]
    h.outcome(second)
    await h.watcher.settled()
    assert h.codes() == ["STOP_MISSING_FLATTEN_FAILED", "STOP_MISSING_FLATTENED"]


async def test_an_unknown_position_is_read_from_the_broker_before_anything() -> None:
    h = Harness()
    h.outcome(stop_intent(), "REJECTED")  # no fill or position seen since start
    await h.advance(DEADLINE)
    assert h.broker.reads == 1 and h.sent == []  # the broker says flat
    h.broker.position = 1
    h.watcher.on_session_connected({"f1"})  # a reconnect: counted positions are unknown again
    await h.advance(DEADLINE)
    assert [i.action for i in h.sent] == ["place"] and h.sent[0].quantity == 1


async def test_a_group_that_turned_the_watch_off_is_left_alone() -> None:
    h = Harness(deadline=None)
    h.position(2)
    h.outcome(stop_intent(), "REJECTED")
    await h.advance(10)
    assert h.sent == [] and h.broker.reads == 0


async def test_only_the_lane_owner_acts() -> None:
    h = Harness()
    h.watcher.owns = lambda _account: False
    h.position(2)
    h.outcome(stop_intent(), "REJECTED")
    await h.advance(10)
    assert h.sent == [] and h.broker.reads == 0


@pytest.mark.parametrize("quantity", [1, 2])
async def test_replacement_ids_are_derived_so_a_restart_sends_the_same(quantity: int) -> None:
    ids_seen = []
    for _ in range(2):
        h = Harness()
        h.position(quantity)
        h.outcome(stop_intent(), "REJECTED")
        await h.advance(DEADLINE)
        ids_seen.append(h.sent[0].client_order_id)
    assert ids_seen[0] == ids_seen[1]


@pytest.mark.parametrize(
    ("code", "severity"),
    [
        ("STOP_MISSING_REPLACED", "warning"),
        ("STOP_MISSING_FLATTENED", "critical"),
        ("STOP_MISSING_FLATTEN_FAILED", "critical"),
        ("STOP_MISSING_UNVERIFIED", "critical"),
    ],
)
def test_every_code_alerts_the_trader(code: str, severity: str) -> None:
    error = orders.error("f1", "ESZ6", 2, 2.5, code, "what was done", None, "1000.000")
    notice = from_error(error)
    assert notice is not None and (notice.kind, notice.severity) == ("guard", severity)
    assert notice.title == "Protective stop missing on f1" and "2.50 s" in notice.text


async def test_after_three_failed_flattens_it_says_so_and_stops_until_something_changes() -> None:
    h = Harness()
    h.position(2)
    h.outcome(stop_intent(), "REJECTED")
    await h.advance(DEADLINE)
    h.outcome(h.sent[0], "REJECTED")
    await h.advance(0)
    for _ in range(3):
        h.outcome(h.sent[-1], "BrokerUnavailable")
        await h.advance(DEADLINE)
    assert [i.action for i in h.sent] == ["place", "flatten", "flatten", "flatten"]
    assert h.codes() == ["STOP_MISSING_FLATTEN_FAILED"] * 3
    assert "flatten 3 of 3 failed" in h.errors[-1].reason and "by hand" in h.errors[-1].reason
    reads = h.broker.reads
    h.fill(Side.BUY, 1)  # more events: no broker reads, no orders while it gave up
    await h.advance(DEADLINE * 2)
    assert h.broker.reads == reads and len(h.sent) == 4
    h.watcher.on_session_connected({"f1"})  # a reconnect is a new start: flatten again
    await h.advance(0)
    assert h.broker.reads == reads + 1 and [i.action for i in h.sent[4:]] == ["flatten"]


async def test_a_replacement_cancelled_by_someone_else_is_a_lost_stop_not_the_leaders_cancel() -> None:
    h = Harness()
    h.position(2)
    stop = stop_intent()
    h.outcome(stop, "REJECTED")
    await h.advance(DEADLINE)
    [replacement] = h.sent
    h.outcome(replacement)
    orphan_cancel = leader_change("cancel", replacement)  # e.g. the reconciler's orphan cancel
    h.outcome(orphan_cancel)
    h.watcher.on_event(
        OrderEvent("f1", replacement.client_order_id, "B2", "ESZ6", Side.SELL, OrderType.STOP, 2, OrderStatus.CANCELLED)
    )
    await h.advance(DEADLINE)
    assert [i.action for i in h.sent] == ["place", "flatten"]  # protected or flat, never naked


async def test_close_leaves_no_timer_to_fire_into_closed_lanes() -> None:
    h = Harness()
    h.position(2)
    h.outcome(stop_intent(), "REJECTED")
    assert h.clock.armed() == [DEADLINE]
    await h.watcher.close()
    await h.advance(10)
    assert h.clock.armed() == [] and h.sent == [] and h.broker.reads == 0


async def test_reported_positions_are_not_counted_twice_with_their_fills() -> None:
    h = Harness()
    h.position(2)  # the adapter reports positions...
    h.fill(Side.SELL, 2)  # ...so this fill's position comes in its own report, not from our sum
    h.position(0)
    h.outcome(stop_intent(), "REJECTED")
    await h.advance(10)
    assert h.sent == [] and h.broker.reads == 0
    book = h.watcher.books["f1"]["ESZ6"]
    assert book.position == 0


async def test_a_failure_inside_the_read_is_never_a_reason_to_act() -> None:
    h = Harness()
    h.position(2)
    h.outcome(stop_intent(), "REJECTED")

    async def broken(account_id: str, symbol: str) -> Truth:
        raise RuntimeError("snapshot parser bug")

    h.watcher.verify = broken
    await h.advance(DEADLINE)
    assert h.codes() == ["STOP_MISSING_UNVERIFIED"] and h.sent == []
    assert "snapshot parser bug" in h.errors[0].reason


async def test_a_failing_action_is_logged_and_tried_again_never_stuck() -> None:
    h = Harness()
    h.position(2)
    h.outcome(stop_intent(), "REJECTED")
    calls: list[OrderIntent] = []

    def broken_then_fine(intent: OrderIntent) -> None:
        calls.append(intent)
        if len(calls) == 1:
            raise RuntimeError("lane gone")
        h.sent.append(intent)

    h.watcher.submit = broken_then_fine
    await h.advance(DEADLINE)
    assert h.sent == [] and h.clock.armed() == [DEADLINE]  # not stuck "acting": armed again
    await h.advance(DEADLINE)
    assert [i.action for i in h.sent] == ["flatten"]  # the replacement budget went on the failed try


async def test_a_stop_limit_is_placed_again_with_both_prices() -> None:
    h = Harness()
    h.position(-2)
    stop = stop_intent(side="buy", order_type="stop_limit", stop_price=Decimal("5010"), limit_price=Decimal("5012"))
    h.outcome(stop, "REJECTED")
    await h.advance(DEADLINE)
    [again] = h.sent
    assert (again.order_type, again.side, again.stop_price, again.limit_price) == (
        "stop_limit",
        "buy",
        Decimal("5010"),
        Decimal("5012"),
    )


def event(intent: OrderIntent, status: OrderStatus) -> OrderEvent:
    kind = OrderType(intent.order_type)
    return OrderEvent("f1", intent.client_order_id, "B1", "ESZ6", Side(intent.side), kind, intent.quantity, status)


async def test_a_reject_event_ahead_of_the_routers_ack_is_not_lost() -> None:
    h = Harness()
    h.position(2)
    stop = stop_intent()
    h.watcher.on_event(event(stop, OrderStatus.REJECTED))  # the WebSocket beat the REST answer
    h.outcome(stop)  # the ack comes after
    await h.advance(DEADLINE)
    assert [i.action for i in h.sent] == ["place"]


async def test_a_fill_ahead_of_the_routers_ack_leaves_no_stale_stop() -> None:
    h = Harness()
    h.position(2)
    stop = stop_intent()
    h.fill(Side.SELL, 2, stop.client_order_id)  # the stop triggered before its ack came back
    h.position(0)
    h.outcome(stop)
    h.position(1)  # a later long: that old sell stop must not count as its protection...
    h.outcome(stop_intent(signal="L:8:new"), "REJECTED")  # ...when the leader's new stop failed
    await h.advance(DEADLINE)
    assert [(i.action, i.side) for i in h.sent] == [("place", "sell")]


async def test_a_replacement_rejected_ahead_of_its_ack_is_a_failed_replacement() -> None:
    h = Harness()
    h.position(2)
    h.outcome(stop_intent(), "REJECTED")
    await h.advance(DEADLINE)
    [replacement] = h.sent
    h.watcher.on_event(event(replacement, OrderStatus.REJECTED))
    h.outcome(replacement)
    await h.advance(0)
    assert [i.action for i in h.sent] == ["place", "flatten"]
    assert "STOP_MISSING_REPLACED" not in h.codes()

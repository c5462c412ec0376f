"""The positions' packed duplicate-fill window (``core/fill_window.py``, session 27) against the
window it replaced: a list of the last 256 fill ids, as the tracker kept it up to session 26.

The old behaviour is the reference (:class:`OldWindow`): whatever sequence of fills,
redeliveries and busts arrives, the packed window must count, ignore and refuse exactly what
the list did, and a position the old code wrote to the ``positions`` changelog must restore
into one that still ignores the fills it had counted.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import faust
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from copytrader.core import fill_window
from copytrader.core.records import Execution, Position, RecordError
from copytrader.tables.positions import RECENT_FILLS, apply_fill, positions_table

#: What the old code wrote to the positions changelog for three fills (captured from main at
#: 65ca7e6 through Faust's own value serializer: ``app.serializers.dumps_value``).
OLD_CHANGELOG_ENTRY = (
    b'{"account_id":"f001","symbol":"ESZ6","net_quantity":3,"average_price":"5000.250000",'
    b'"realized_pnl":"0","fills":3,"recent_fill_ids":["f001|B0|fill|0","f001|B1|fill|1",'
    b'"f001|B2|fill|2"],"updated_at":"2026-12-01T18:39:31.473344Z",'
    b'"__faust":{"ns":"copytrader.core.records.Position"}}'
)


def a_fill(fill_id: str, side: str = "buy", quantity: int = 1, account: str = "f001") -> Execution:
    return Execution(
        execution_id=fill_id,
        client_order_id=f"order-{len(fill_id)}",
        account_id=account,
        platform="paper",
        symbol="ESZ6",
        kind="fill",
        side=side,
        quantity=quantity,
        price=Decimal("5000.25"),
    )


def a_bust(bust_id: str, busted: Execution) -> Execution:
    return Execution(
        execution_id=bust_id,
        client_order_id=busted.client_order_id,
        account_id=busted.account_id,
        platform="paper",
        symbol="ESZ6",
        kind="fill_bust",
        side=busted.side,
        quantity=0,
        corrects=busted.execution_id,
        original_quantity=busted.quantity,
        original_price=busted.price,
    )


@dataclass
class OldWindow:
    """The tracker's window up to session 26: the last :data:`RECENT_FILLS` ids, oldest first."""

    ids: list[str] = field(default_factory=list)

    def outcome(self, execution: Execution) -> str:
        """What the old ``apply_fill`` did with ``execution``: counted, ignored or refused."""
        if execution.execution_id in self.ids:
            return "ignored"
        if execution.kind == "fill_bust" and execution.corrects not in self.ids:
            return "refused"
        self.ids = [*self.ids, execution.execution_id][-RECENT_FILLS:]
        return "counted"


def outcome(position: Position | None, execution: Execution) -> tuple[Position | None, str]:
    try:
        moved, applied = apply_fill(position, execution)
    except ValueError:
        return position, "refused"
    return moved, "counted" if applied else "ignored"


#: One step after the warm-up: a new fill, a redelivery of the k-th latest execution (a fill or
#: a bust, in the window or fallen out of it), or a bust of the k-th latest fill.
steps = st.lists(
    st.one_of(
        st.tuples(st.just("fill"), st.sampled_from(["buy", "sell"]), st.integers(1, 3)),
        st.tuples(st.just("again"), st.integers(0, RECENT_FILLS + 40)),
        st.tuples(st.just("bust"), st.integers(0, RECENT_FILLS + 40)),
    ),
    max_size=40,
)


def executions_of(warm: int, plan: list[tuple[Any, ...]]) -> list[Execution]:
    """The executions a plan stands for: ``warm`` new fills, then the plan's steps."""
    sent: list[Execution] = []
    fills: list[Execution] = []
    for n in range(warm):
        fill = a_fill(f"f001|B{n}|fill|{n}", "buy" if n % 3 else "sell")
        sent.append(fill)
        fills.append(fill)
    for n, step in enumerate(plan):
        if step[0] == "fill":
            fill = a_fill(f"f001|N{n}|fill|{n}", step[1], step[2])
            sent.append(fill)
            fills.append(fill)
        elif step[0] == "again" and sent:
            sent.append(sent[-1 - step[1] % len(sent)])
        elif step[0] == "bust" and fills:
            sent.append(a_bust(f"f001|X{n}|bust", fills[-1 - step[1] % len(fills)]))
    return sent


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(warm=st.integers(0, RECENT_FILLS + 60), plan=steps)
def test_the_packed_window_counts_ignores_and_refuses_what_the_list_did(warm: int, plan: list[tuple[Any, ...]]) -> None:
    reference = OldWindow()
    position: Position | None = None
    for execution in executions_of(warm, plan):
        expected = reference.outcome(execution)
        position, got = outcome(position, execution)
        assert got == expected, execution.execution_id
        assert position is None or position.fill_window == "".join(map(fill_window.token, reference.ids))


def old_changelog_entry(position: Position, ids: list[str]) -> bytes:
    """``position`` as the old code wrote it to the changelog: the ids as a list, no packed window."""
    values = {k: v for k, v in orjson.loads(position.dumps()).items() if k != "fill_window"}
    return orjson.dumps({**values, "recent_fill_ids": ids, "__faust": {"ns": "copytrader.core.records.Position"}})


@pytest.fixture(scope="module")
def restore() -> Any:
    """How a starting worker reads one ``positions`` changelog value: Faust's own decoding."""
    app = faust.App("fill-window-test", autodiscover=False)
    topic = positions_table(app, 4).changelog_topic

    def restored(raw: bytes) -> Position:
        value = app.serializers.loads_value(topic.value_type, raw, serializer=topic.value_serializer)
        assert isinstance(value, Position)
        return value

    return restored


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(warm=st.integers(1, RECENT_FILLS + 60), plan=steps, cut=st.integers(0, 40))
def test_a_position_the_old_code_wrote_restores_and_keeps_ignoring_what_it_counted(
    restore: Any, warm: int, plan: list[tuple[Any, ...]], cut: int
) -> None:
    executions = executions_of(warm, plan)
    upgrade = warm + min(cut, len(executions) - warm)
    reference = OldWindow()
    position: Position | None = None
    for execution in executions[:upgrade]:
        reference.outcome(execution)
        position, _ = outcome(position, execution)
    assert position is not None
    position = restore(old_changelog_entry(position, reference.ids))
    assert position.recent_fill_ids == []
    assert position.fill_window == "".join(map(fill_window.token, reference.ids))
    # everything counted before the upgrade, delivered again after it: ignored as before
    for execution in [*executions[:upgrade][-RECENT_FILLS:], *executions[upgrade:]]:
        expected = reference.outcome(execution)
        position, got = outcome(position, execution)
        assert got == expected, execution.execution_id


def test_the_entry_the_old_code_wrote_restores(restore: Any) -> None:
    position = restore(OLD_CHANGELOG_ENTRY)
    assert (position.net_quantity, position.fills, position.recent_fill_ids) == (3, 3, [])
    assert fill_window.size(position.fill_window) == 3
    assert apply_fill(position, a_fill("f001|B1|fill|1"))[1] is False  # redelivered after the upgrade
    moved, applied = apply_fill(position, a_fill("f001|B3|fill|3"))
    assert applied and moved.net_quantity == 4
    # what the new code writes restores to the same position, and is smaller
    again = restore(moved.dumps())
    assert again == moved and len(moved.dumps()) < len(OLD_CHANGELOG_ENTRY) + 30


def test_a_full_old_window_restores_to_a_full_packed_one(restore: Any) -> None:
    ids = [f"f001|{'B' * 100}{n}|fill|{n}" for n in range(RECENT_FILLS)]  # long ids, the largest window
    position = restore(old_changelog_entry(Position(account_id="f001", symbol="ESZ6", fills=RECENT_FILLS), ids))
    assert fill_window.size(position.fill_window) == RECENT_FILLS
    assert len(position.dumps()) < RECENT_FILLS * fill_window.TOKEN_LEN + 400
    assert all(apply_fill(position, a_fill(fill_id))[1] is False for fill_id in ids)


def test_a_token_is_pinned() -> None:
    # Every window restored after an upgrade was packed by an earlier version: a different
    # digest (size, hash, alphabet) would make each position forget its recent fills.
    assert fill_window.token("f001|B0|fill|0") == fill_window.token("f001|B0|fill|0") == "Tj5YjZbzFA2W"
    assert len(fill_window.token("x" * 512)) == fill_window.TOKEN_LEN


def test_a_token_is_found_only_where_a_token_starts() -> None:
    first, second = fill_window.token("a"), fill_window.token("b")
    window = first + second
    assert fill_window.holds(window, first) and fill_window.holds(window, second)
    straddling = (first + second)[6:18]
    assert straddling in window and not fill_window.holds(window, straddling)
    assert fill_window.holds(straddling[:6] + first + second, second) is False  # misaligned by 6


def test_the_window_drops_its_oldest_past_its_size() -> None:
    window = ""
    for n in range(RECENT_FILLS + 1):
        window = fill_window.appended(window, fill_window.token(str(n)))
    assert fill_window.size(window) == RECENT_FILLS
    assert not fill_window.holds(window, fill_window.token("0"))
    assert fill_window.holds(window, fill_window.token("1"))


@pytest.mark.parametrize(
    "window",
    [
        "x" * 11,  # not whole tokens
        "A" * (fill_window.MAX_WINDOW_CHARS + fill_window.TOKEN_LEN),  # more than the window holds
        "abc+def/ghi=",  # the standard alphabet, not the URL one
        "é" * 12,
        12,
    ],
)
def test_a_record_refuses_what_is_not_a_window(window: object) -> None:
    with pytest.raises(RecordError) as refused:
        Position(account_id="f001", symbol="ESZ6", fill_window=window)
    assert refused.value.field == "fill_window"

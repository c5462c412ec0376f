"""What the dashboard shows, kept in memory by each web worker from the output topics.

Every row of a Kafka-fed stream carries its partition and offset (``_p``, ``_o``): those are
the stream's sequence numbers. They are the same in every web worker (each reads every
partition), so a browser that reconnects — to this worker or another — takes a fresh snapshot
with its cursor and then drops any pushed row at or below the cursor: no gap, no duplicate.
A ``trade.executions`` or ``positions.updates`` record carries several executions or
positions, so the ``orders`` and ``positions`` streams number each one ``offset × 1000 + its
place in the record`` (:func:`batch_sequence`): still one increasing sequence per partition. The ``grid`` stream is derived (one full row per account, replaced whole), versioned by a
per-process counter; a reconnect always starts from a fresh snapshot, so that is enough.
"""

from __future__ import annotations

import time
from collections import OrderedDict, defaultdict, deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from ..agents.shared.price_feed import FEED_ACCOUNT_PREFIX
from ..common.clock import utcnow
from ..common.stats import percentile
from ..core.config import CopyConfig
from ..core.records import MAX_PER_RECORD, POSITION_WINDOW_FIELDS, AccountStatus, Execution, OrderError, Position
from .guards import GuardBoard
from .reconcile_view import apply_broker_truth, reconcile_columns
from .slippage import LiveSlippage

ORDER_ROWS = 1000
#: Sequence numbers per offset of a batched topic: above the records one batch may hold.
SEQUENCE_PER_OFFSET = 1000
assert SEQUENCE_PER_OFFSET > MAX_PER_RECORD


def batch_sequence(offset: int, index: int) -> int:
    """The stream sequence number of the ``index``-th execution or position of a record."""
    return offset * SEQUENCE_PER_OFFSET + index


ERROR_ROWS = 500
LATENCY_SAMPLES = 20_000
HISTOGRAM_MS = (5, 10, 20, 50, 100, 200, 500, 1000)
OPEN_KINDS = ("ack", "modified", "partial_fill")
#: Closed orders remembered per account, so a late ack does not reopen one (an ack and its fill
#: are published milliseconds apart, by one executor). At ≈150 B each (``scripts/watcher_memory.py``)
#: a thousand per account is 150 MB at 1,000 followers, within the web pod's 512 MiB; 5,000 was 750.
MAX_CLOSED_REMEMBERED = 1000
CLOSED_KINDS = ("cancelled", "reject", "flattened")
#: Days of latency samples, copy counts and P&L closes the live state keeps. The dashboard reads
#: today; the live reports (served while the database has no tables) read back a week. Older days
#: are dropped, so a worker that runs for months does not keep a day's samples more every day.
LIVE_DAYS = 7
#: The key under which an (account, symbol)'s P&L closes keep the last close of the days
#: dropped: it sorts before every ISO date, so the oldest kept day's P&L stays its own.
BASE_DAY = ""
STREAMS = ("orders", "errors", "positions", "grid")


def utc_day(value: datetime | None = None) -> str:
    return (value or utcnow()).astimezone(UTC).date().isoformat()


def light(connection: str | None, circuit: str | None) -> str:
    """Status light: ``up``, ``degraded``, ``down`` or ``unknown`` (no report yet)."""
    if connection is None:
        return "unknown"
    if connection in ("disconnected", "connecting") or circuit == "open":
        return "down"
    if connection == "degraded" or circuit == "half_open":
        return "degraded"
    return "up"


def e2e_ms(stamps: dict[str, float]) -> float | None:
    if "acked" in stamps and "detected" in stamps:
        return round((stamps["acked"] - stamps["detected"]) * 1000, 3)
    return None


@dataclass(slots=True)
class AccountView:
    account_id: str
    platform: str
    role: str
    connection: str | None = None
    circuit: str | None = None
    last_error: str | None = None
    positions: dict[str, int] = field(default_factory=dict)
    realized: dict[str, Decimal] = field(default_factory=dict)
    open_orders: set[str] = field(default_factory=set)
    # Orders seen closed (filled, cancelled, rejected): a late ack must not reopen one. The
    # executor publishes an order's fill from its session's event pump and its ack from the
    # request's answer, so on the topic a market order's fill often comes before its ack.
    closed_orders: OrderedDict[str, None] = field(default_factory=OrderedDict)
    last_copy_ms: float | None = None
    last_signal: str | None = None
    last_detected: float | None = None
    last_skip: str | None = None
    last_skip_code: str | None = None

    def track_order(self, ex: Execution) -> None:
        """Count the account's working orders. An order is known by its broker id: every
        action on it (place, modify, cancel) carries a client id of its own."""
        order_id = ex.broker_order_id or ex.client_order_id or ex.execution_id
        if ex.kind in CLOSED_KINDS or (ex.kind == "fill" and ex.leaves_quantity == 0):
            self.open_orders.discard(order_id)
            self.closed_orders[order_id] = None
            if len(self.closed_orders) > MAX_CLOSED_REMEMBERED:
                self.closed_orders.popitem(last=False)
        elif ex.kind in OPEN_KINDS and order_id not in self.closed_orders:
            self.open_orders.add(order_id)

    last_outcome: str | None = None  # "copied" or "skipped: <code>", whichever came last
    paused: bool = False
    version: int = 0
    reconcile: dict[str, Any] | None = None  # the last reconciliation (web/reconcile_view.py)

    def row(self, paused_all: bool, pnl_today: Decimal) -> dict[str, Any]:
        return {
            "account_id": self.account_id,
            "platform": self.platform,
            "role": self.role,
            "connection": self.connection or "unknown",
            "circuit": self.circuit or "unknown",
            "light": light(self.connection, self.circuit),
            "last_error": self.last_error,
            "positions": dict(sorted(self.positions.items())),
            "net": sum(abs(v) for v in self.positions.values()),
            "open_orders": len(self.open_orders),
            "pnl": str(sum(self.realized.values(), Decimal(0))),
            "pnl_today": str(pnl_today),
            "last_copy_ms": self.last_copy_ms,
            "last_signal": self.last_signal,
            "last_detected": self.last_detected,
            "last_skip": self.last_skip,
            "last_skip_code": self.last_skip_code,
            "last_outcome": self.last_outcome,
            "paused": self.paused,
            "paused_all": paused_all,
            "_v": self.version,
            **reconcile_columns(self.reconcile),
        }


class LiveState:
    """The web worker's view of the topics; ``apply_*`` return what changed, for the push."""

    def __init__(self, config: CopyConfig) -> None:
        self.config = config
        self.orders: deque[dict[str, Any]] = deque(maxlen=ORDER_ROWS)
        self.errors: deque[dict[str, Any]] = deque(maxlen=ERROR_ROWS)
        self.positions: dict[str, dict[str, Any]] = {}
        self.cursors: dict[str, dict[str, int]] = {s: {} for s in STREAMS}
        self.paused_all = False
        self._version = 0
        leaders = set(config.leaders())
        self.accounts: dict[str, AccountView] = {
            a.account_id: AccountView(a.account_id, a.platform, "leader" if a.account_id in leaders else "follower")
            for a in config.accounts.values()
        }
        # P&L history: (account, symbol) → {day: last cumulative realised P&L of that day}
        self.pnl_closes: dict[tuple[str, str], dict[str, Decimal]] = defaultdict(dict)
        # The same closes by account (account → symbol → closes): every grid row holds the
        # account's P&L today, and a row is built on each of the account's records, so reading
        # them through ``pnl_closes`` cost one pass over every account's positions per record
        # (at 200 followers, 40 % of the dashboard feed's apply; ``scripts/watcher_cost.py``).
        self._closes_of: dict[str, dict[str, dict[str, Decimal]]] = defaultdict(dict)
        self.latency: dict[str, deque[tuple[str, str, float]]] = defaultdict(lambda: deque(maxlen=LATENCY_SAMPLES))
        self.copies: dict[tuple[str, str], int] = defaultdict(int)  # (day, account) → copies
        self._days: set[str] = set()  # the days ``latency`` and ``copies`` hold (≤ LIVE_DAYS)
        self.rejects: deque[dict[str, Any]] = deque(maxlen=2000)
        self.slippage = LiveSlippage()  # slippage columns of follower fill rows (web/slippage.py)
        # Price feeds' health (``market-data@<app id>``): not accounts, so not grid rows.
        self.feeds: dict[str, dict[str, Any]] = {}
        self.guards = GuardBoard(config)  # risk guards' standing per follower (web/guards.py)
        self._touched: dict[str, AccountView] | None = None  # inside batch(): the accounts changed

    # ------------------------------------------------------------------------- internals
    def _account(self, account_id: str, platform: str = "unknown") -> AccountView:
        view = self.accounts.get(account_id)
        if view is None:
            view = self.accounts[account_id] = AccountView(account_id, platform, "follower")
        return view

    def _touch(self, view: AccountView) -> list[tuple[str, dict[str, Any]]]:
        """``view`` changed: its grid row, now or (inside :meth:`batch`) once at the batch's end."""
        self._version += 1
        view.version = self._version
        self.cursors["grid"]["0"] = self._version
        if self._touched is not None:
            self._touched[view.account_id] = view
            return []
        return [("grid", self._grid_row(view))]

    def _grid_row(self, view: AccountView) -> dict[str, Any]:
        return view.row(self.paused_all, self.pnl_today(view.account_id))

    @contextmanager
    def batch(self) -> Iterator[list[tuple[str, dict[str, Any]]]]:
        """Apply several records with each account's grid row built once: the ``apply_*``
        calls inside return no ``grid`` change, and on leaving, the list yielded holds one
        ``grid`` row per account they touched, as it is then (its ``_v`` that of its last
        change).

        Why: a grid row is the account's whole row (its P&L today, positions, lights), and
        every execution and position of an account touches it; a fetch of the dashboard feed
        holds several records per account (the ack, the fill, the position), and only the
        last row of each reaches a page. Built on every touch, the rows were about a quarter
        of the feed's apply (``scripts/watcher_cost.py``).
        """
        touched: dict[str, AccountView] = {}
        self._touched = touched
        rows: list[tuple[str, dict[str, Any]]] = []
        try:
            yield rows
        finally:
            self._touched = None
            rows.extend(("grid", self._grid_row(view)) for view in touched.values())

    @staticmethod
    def _advance(cursor: dict[str, int], partition: int, offset: int) -> bool:
        """False when this (partition, offset) was seen already (a consumer restart)."""
        key = str(partition)
        if cursor.get(key, -1) >= offset:
            return False
        cursor[key] = offset
        return True

    def _keep_day(self, day: str) -> bool:
        """A day seen for the first time: keep it and drop the oldest beyond ``LIVE_DAYS``;
        False when it is itself older than every day kept."""
        self._days.add(day)
        while len(self._days) > LIVE_DAYS:
            oldest = min(self._days)
            self._days.discard(oldest)
            self.latency.pop(oldest, None)
            for key in [k for k in self.copies if k[0] == oldest]:
                del self.copies[key]
        return day in self._days

    @staticmethod
    def _close_new_day(closes: dict[str, Decimal], day: str, realized: Decimal) -> None:
        """A close for a day not yet held: beyond ``LIVE_DAYS`` days the oldest folds into
        ``BASE_DAY``; a close older than the days kept changes nothing (already folded)."""
        if BASE_DAY in closes and day < min(d for d in closes if d != BASE_DAY):
            return
        closes[day] = realized
        while len(closes) - (BASE_DAY in closes) > LIVE_DAYS:
            oldest = min(d for d in closes if d != BASE_DAY)
            closes[BASE_DAY] = closes.pop(oldest)

    # --------------------------------------------------------------------------- applies
    def apply_execution(self, ex: Execution, partition: int, offset: int) -> list[tuple[str, dict[str, Any]]]:
        if not self._advance(self.cursors["orders"], partition, offset):
            return []
        latency = e2e_ms(ex.stamps)
        # ``asdict()`` is a fresh dict of the record's fields (``as_dict`` filters the same
        # dict again for Faust's ``__`` metadata, which only its serialised form carries).
        row = ex.asdict()
        row.update(e2e_ms=latency, _p=partition, _o=offset)
        self.slippage.annotate(ex, row)
        self.orders.append(row)
        self.guards.on_execution(ex)
        view = self._account(ex.account_id, ex.platform)
        view.track_order(ex)
        if ex.request_outcome and not ex.is_leader and not ex.duplicate:
            if ex.kind == "reject":
                self.rejects.append(
                    {
                        "occurred_at": ex.occurred_at,
                        "source": "broker",
                        "account_id": ex.account_id,
                        "signal_id": ex.signal_id,
                        "code": None,
                        "reason": ex.reason or "",
                    }
                )
            else:
                self._count_copy(view, ex, latency)
        return [("orders", row), *self._touch(view)]

    def _count_copy(self, view: AccountView, ex: Execution, latency: float | None) -> None:
        """A follower's copy placed: today's counts and latency, the grid's last copy."""
        day = utc_day(ex.occurred_at)
        if day in self._days or self._keep_day(day):  # a day older than every kept day is not counted
            self.copies[(day, ex.account_id)] += 1
            if latency is not None:
                self.latency[day].append((ex.account_id, ex.platform, latency))
        if latency is not None:
            view.last_copy_ms = latency
        if ex.signal_id and ex.signal_id.endswith(":new"):
            view.last_signal = ex.signal_id
            view.last_detected = ex.stamps.get("detected")
            view.last_outcome = "copied"

    def apply_error(self, err: OrderError, partition: int, offset: int) -> list[tuple[str, dict[str, Any]]]:
        if not self._advance(self.cursors["errors"], partition, offset):
            return []
        row = {**err.as_dict(), "_p": partition, "_o": offset}
        self.errors.append(row)
        self.rejects.append(
            {
                "occurred_at": err.occurred_at,
                "source": err.stage,
                "account_id": err.account_id,
                "signal_id": err.signal_id,
                "code": err.code,
                "reason": err.reason,
            }
        )
        out: list[tuple[str, dict[str, Any]]] = [("errors", row)]
        self.guards.on_error(err)
        if err.account_id in self.accounts:
            view = self.accounts[err.account_id]
            view.last_skip, view.last_skip_code = err.signal_id, err.code
            view.last_outcome = f"skipped: {err.code or err.stage}"
            out += self._touch(view)
        return out

    def apply_position(self, pos: Position, partition: int, offset: int) -> list[tuple[str, dict[str, Any]]]:
        if not self._advance(self.cursors["positions"], partition, offset):
            return []
        row = {k: v for k, v in pos.as_dict().items() if k not in POSITION_WINDOW_FIELDS}
        row.update(key=f"{pos.account_id}|{pos.symbol}", _p=partition, _o=offset)
        self.positions[row["key"]] = row
        closes, day = self.pnl_closes[(pos.account_id, pos.symbol)], utc_day(pos.updated_at)
        self._closes_of[pos.account_id][pos.symbol] = closes
        if day in closes:
            closes[day] = Decimal(pos.realized_pnl)
        else:
            self._close_new_day(closes, day, Decimal(pos.realized_pnl))
        view = self._account(pos.account_id)
        view.positions[pos.symbol] = pos.net_quantity
        view.realized[pos.symbol] = Decimal(pos.realized_pnl)
        return [("positions", row), *self._touch(view)]

    def apply_status(self, status: AccountStatus) -> list[tuple[str, dict[str, Any]]]:
        if status.account_id.startswith(FEED_ACCOUNT_PREFIX):
            self.feeds[status.account_id] = {
                "platform": status.platform,
                "connection": status.connection,
                "last_error": status.last_error,
            }
            return []
        view = self._account(status.account_id, status.platform)
        if status.reconciliation is not None:  # the reconciler's report: broker truth, not health
            apply_broker_truth(view, status.reconciliation)
            return self._touch(view)
        before = (view.connection, view.circuit, view.last_error)
        view.connection, view.circuit, view.last_error = status.connection, status.circuit, status.last_error
        if status.last_copy_ms is not None and view.last_copy_ms is None:
            view.last_copy_ms = status.last_copy_ms
        if before == (view.connection, view.circuit, view.last_error):
            return []
        return self._touch(view)

    def apply_account(self, account_id: str, platform: str) -> list[tuple[str, dict[str, Any]]]:
        """An account defined (or re-pointed) in the dashboard gets its grid row at once."""
        view = self.accounts.get(account_id)
        if view is not None and view.platform == platform:
            return []
        view = self._account(account_id, platform)
        view.platform = platform
        return self._touch(view)

    def apply_control(self, account_id: str, paused: bool) -> list[tuple[str, dict[str, Any]]]:
        if account_id == "*":
            self.paused_all = paused
            return [change for view in self.accounts.values() for change in self._touch(view)]
        view = self._account(account_id)
        view.paused = paused
        return self._touch(view)

    # -------------------------------------------------------------------------- readings
    def snapshot(self, stream: str) -> dict[str, Any]:
        if stream == "orders":
            rows: list[dict[str, Any]] = list(self.orders)
        elif stream == "errors":
            rows = list(self.errors)
        elif stream == "positions":
            rows = list(self.positions.values())
        elif stream == "grid":
            rows = self.grid()
        else:
            raise KeyError(stream)
        return {"stream": stream, "cursor": dict(self.cursors[stream]), "rows": rows}

    def grid(self) -> list[dict[str, Any]]:
        order = {"leader": 0, "follower": 1}
        views = sorted(self.accounts.values(), key=lambda v: (order.get(v.role, 2), v.account_id))
        return [v.row(self.paused_all, self.pnl_today(v.account_id)) for v in views]

    def pnl_today(self, account_id: str, today: str | None = None) -> Decimal:
        today = today or utc_day()
        total = Decimal(0)
        for closes in self._closes_of.get(account_id, {}).values():
            if today not in closes:
                continue
            before = [d for d in closes if d < today]
            total += closes[today] - (closes[max(before)] if before else Decimal(0))
        return total

    def dashboard(self) -> dict[str, Any]:
        today = utc_day()
        samples = sorted(v for _, _, v in self.latency.get(today, ()))
        buckets = [0] * (len(HISTOGRAM_MS) + 1)
        for value in samples:
            index = next((i for i, edge in enumerate(HISTOGRAM_MS) if value < edge), len(HISTOGRAM_MS))
            buckets[index] += 1
        lights: defaultdict[str, int] = defaultdict(int)
        per_account: list[dict[str, Any]] = []
        total = Decimal(0)
        for view in self.accounts.values():
            lights[light(view.connection, view.circuit)] += 1
            pnl = self.pnl_today(view.account_id, today)
            total += pnl
            per_account.append(
                {
                    "account_id": view.account_id,
                    "role": view.role,
                    "pnl_today": str(pnl),
                    "copies_today": self.copies.get((today, view.account_id), 0),
                }
            )
        return {
            "day": today,
            "generated_at": time.time(),
            "pnl_today": str(total),
            "per_account": per_account,
            "accounts": {k: lights.get(k, 0) for k in ("up", "degraded", "down", "unknown")},
            "copies_today": sum(v for (d, _), v in self.copies.items() if d == today),
            "latency_ms": {"p50": percentile(samples, 0.5), "p99": percentile(samples, 0.99), "n": len(samples)},
            "histogram": {"edges_ms": list(HISTOGRAM_MS), "counts": buckets},
            "paused_all": self.paused_all,
        }

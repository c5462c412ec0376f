"""A benchmark's warm-up: the scripted leader marks its end; the observer times those copies apart."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from copytrader.brokers.errors import UnknownOrder
from copytrader.core.config import parse_config
from copytrader.core.records import Execution, ExecutionBatch, Heartbeat, TradeSignal
from copytrader.demo.configgen import demo_config
from copytrader.demo.observer import RunObserver
from copytrader.demo.trader import DemoTrader, TraderPlan


def observed(internal_ms_by_signal: dict[str, tuple[float, float]]) -> RunObserver:
    """One signal per entry (detected at, internal ms), copied by both followers of the demo leader."""
    observer = RunObserver("unused:9092", "", parse_config(demo_config(2), env={}))
    for signal_id, (detected, internal_ms) in internal_ms_by_signal.items():
        observer.seen.signals[signal_id] = TradeSignal(
            signal_id=signal_id,
            leader_account="leader-1",
            platform="paper",
            symbol="ESZ6",
            side="buy",
            quantity=1,
        )
        for account in ("f001", "f002"):
            stamps = {
                "detected": detected,
                "sent": detected + internal_ms / 1000,
                "acked": detected + internal_ms / 1000,
            }
            observer.seen.outcomes[(signal_id, account)].append(
                Execution(
                    execution_id=f"{signal_id}|{account}",
                    account_id=account,
                    platform="paper",
                    kind="ack",
                    broker_order_id=f"{signal_id}-{account}",
                    signal_id=signal_id,
                    request_outcome=True,
                    stamps=stamps,
                )
            )
    return observer


def test_copies_of_warm_up_signals_count_for_correctness_but_are_timed_apart() -> None:
    observer = observed({"s1": (100.0, 40.0), "s2": (101.0, 30.0), "s3": (102.0, 5.0), "s4": (103.0, 7.0)})
    summary = observer.summary(2, measured_from=101.5)
    assert (summary["orders_expected"], summary["orders_placed"], summary["missing"]) == (8, 8, 0)
    assert summary["internal_ms"]["n"] == 4 and summary["internal_ms"]["max"] == 7.0
    assert summary["warmup"]["orders"] == 4 and summary["warmup"]["internal_ms"]["max"] == 40.0


def test_without_a_warm_up_every_copy_is_timed() -> None:
    summary = observed({"s1": (100.0, 40.0), "s2": (101.0, 5.0)}).summary(2)
    assert summary["internal_ms"]["n"] == 4 and summary["internal_ms"]["max"] == 40.0
    assert summary["warmup"]["orders"] == 0


class RecordingAdapter:
    """Stands in for the leader's adapter: the trader only places, modifies and cancels."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    async def place(self, command: object) -> None:
        self.calls.append("place")

    async def modify(self, command: object) -> None:
        self.calls.append("modify")

    async def cancel(self, command: object) -> None:
        self.calls.append("cancel")


async def test_the_scripted_leader_marks_where_the_measured_actions_start() -> None:
    adapter = RecordingAdapter()
    marks: list[int] = []
    trader = DemoTrader(adapter, "leader-1", TraderPlan(trades=6, interval_s=0, warmup=4))  # type: ignore[arg-type]  # duck-typed adapter
    await trader.run(on_measured=lambda: marks.append(len(adapter.calls)))
    assert marks == [4]  # once, after the four warm-up actions
    assert len(adapter.calls) == 10


class FilledFirstAdapter(RecordingAdapter):
    """Every resting order was filled by the market before the trader modifies or cancels it."""

    async def modify(self, command: object) -> None:
        self.calls.append("modify")
        raise UnknownOrder("order 2064 is already filled")

    async def cancel(self, command: object) -> None:
        self.calls.append("cancel")
        raise UnknownOrder("order 2064 is already filled")


async def test_the_scripted_leader_moves_on_when_the_market_filled_its_order_first() -> None:
    adapter = FilledFirstAdapter()
    trader = DemoTrader(adapter, "leader-1", TraderPlan(trades=60, interval_s=0))  # type: ignore[arg-type]  # duck-typed adapter
    await trader.run()  # a 10-minute bench stopped here: the cancel raised out of the trader
    assert len(adapter.calls) == 60
    assert "too-late" in trader.actions
    assert trader.actions.count("too-late") == adapter.calls.count("modify") + adapter.calls.count("cancel")


def test_copies_of_the_first_two_seconds_are_shown_apart_whatever_the_warm_up() -> None:
    observer = observed({"s1": (100.0, 40.0), "s2": (101.9, 30.0), "s3": (102.0, 5.0), "s4": (103.0, 7.0)})
    for summary in (observer.summary(2), observer.summary(2, measured_from=101.5)):
        first, after = summary["first_2s"], summary["after_2s"]
        assert (first["orders"], after["orders"]) == (4, 4)  # s1, s2 | s3, s4 (2.0 s after s1 is "after")
        assert first["internal_ms"]["max"] == 40.0 and first["internal_ms"]["p50"] == 35.0
        assert after["internal_ms"]["max"] == 7.0


def test_the_run_folder_gets_each_copy_stamps() -> None:
    rows = observed({"s1": (100.0, 40.0)}).copy_stamps()
    assert [(r["signal_id"], r["account_id"]) for r in rows] == [("s1", "f001"), ("s1", "f002")]
    assert rows[0]["stamps"]["sent"] == rows[0]["stamps"]["detected"] + 0.04


class _Fetched:
    """What the observer's consumer yields: records of the run's topics, then nothing more."""

    def __init__(self, records: list[tuple[str, bytes]]) -> None:
        self.records = records

    def __aiter__(self) -> _Fetched:
        return self

    async def __anext__(self) -> Any:
        if not self.records:
            raise StopAsyncIteration
        topic, value = self.records.pop(0)
        return SimpleNamespace(topic=topic, value=value)


async def test_heartbeats_do_not_keep_the_run_from_settling() -> None:
    """The settle ends after a second without copies at work; heartbeats come every second
    whatever happens, and used to stretch the measured window to the settle's timeout."""
    observer = RunObserver("unused:9092", "run.", parse_config(demo_config(2), env={}))
    beat = Heartbeat(worker_id="w1", sequence=1).dumps()
    observer._consumer = _Fetched([("run.system.heartbeat", beat)])  # type: ignore[assignment]
    await observer._consume()
    assert observer.seen.records["system.heartbeat"] == 1 and not observer.changed.is_set()
    copy = ExecutionBatch(
        executions=[Execution(execution_id="e1", account_id="f001", platform="paper", kind="ack")]
    ).dumps()
    observer._consumer = _Fetched([("run.trade.executions", copy)])  # type: ignore[assignment]
    await observer._consume()
    assert observer.changed.is_set()

"""The fan-out's part of the warm-up (``agents/shared/warmup.py``): a throw-away plan of every
kind of signal for every leader, encoded as it would be sent, before the worker says it is ready.

With the direct consumer (the default) a second step waits for its first assignment and
resolves the fetch position of each partition: right after assignment aiokafka still looks up
each committed offset before its first fetch, and a signal arriving then would wait for it.

Why (docs/benchmarks.md, "First signal"): the first signal after start took about twice as
long through the fan-out as later ones. Part of that is Python running the planner's code for
the first time (the scaling rules, ids, Decimal arithmetic, Faust building each intent's fields,
the batch encoder), and the metric children the first signal creates. Planning is pure: the
intents and refusals it returns here are dropped, never sent, and a ``new`` signal reads the
planner's state (the leader's net position, the controls) without changing it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from decimal import Decimal

from ...brokers.instruments import INSTRUMENTS
from ...core import metrics
from ...core.config import CopyConfig
from ...core.records import TradeSignal
from ..shared.outbox import encode_intents, intent_groups
from ..shared.warmup import Warmup, wait_for
from .agent import FanoutStage
from .planner import FanoutPlanner
from .signal_consumer import DirectSignalConsumer

#: At most this many symbols per leader get a plan of their own (the code path is the same for
#: every symbol; the first ones also warm their price lookups).
MAX_SYMBOLS = 8
#: The signal kinds a leader produces that the planner copies, each planned once.
WARM_KINDS: tuple[tuple[str, str], ...] = (
    ("new", "market"),
    ("new", "limit"),
    ("new", "stop"),
    ("modify", "limit"),
    ("cancel", "limit"),
    ("flatten", "market"),
)
_SIGNAL_OUTCOMES = ("copied", "not_copied")


def warm_symbols(config: CopyConfig) -> list[str]:
    """The symbols the warm-up plans: those with a price feed (what the copies trade), else
    one bare root of each known instrument; at most :data:`MAX_SYMBOLS`."""
    if config.market_data is not None and config.market_data.symbols:
        return sorted(config.market_data.symbols)[:MAX_SYMBOLS]
    return sorted(INSTRUMENTS)[:MAX_SYMBOLS]


def sample_signal(leader: str, platform: str, symbol: str, kind: str, order_type: str) -> TradeSignal:
    """A signal as ingest builds one (stamped), under an id no leader event can produce."""
    now = time.time()
    price = Decimal("1.00")
    return TradeSignal(
        signal_id=f"warmup:{leader}:{symbol}:{kind}:{order_type}",
        leader_account=leader,
        platform=platform,
        symbol=symbol,
        side="buy",
        quantity=1,
        kind=kind,
        order_type=order_type,
        limit_price=price if order_type == "limit" else None,
        stop_price=price if order_type == "stop" else None,
        leader_order_id="warmup-order" if kind in ("modify", "cancel") else "",
        stamps={"detected": now, "published": now},
    )


async def warm_planner(planner: FanoutPlanner, symbols: Iterable[str] | None = None) -> int:
    """Plan and encode one signal of each kind for every leader (and each symbol's market
    entry); returns how many intents were planned and dropped. Yields to the loop after each
    plan: at a thousand followers one plan takes tens of milliseconds, and the worker's own
    consumers must keep their group heartbeats meanwhile.

    Nothing leaves this function: no intent or refusal is sent, ``leader_net`` is untouched
    (only a ``fill`` signal moves it, and none is planned), and the per-signal price cache is
    cleared by the next real signal's plan.
    """
    config = planner.config
    chosen = list(symbols) if symbols is not None else warm_symbols(config)
    planned = 0
    for leader in sorted(config.followers_by_leader):
        account = config.accounts.get(leader)
        platform = account.platform if account is not None else "paper"
        for index, symbol in enumerate(chosen):
            kinds = WARM_KINDS if index == 0 else WARM_KINDS[:1]
            for kind, order_type in kinds:
                signal = sample_signal(leader, platform, symbol, kind, order_type)
                intents, errors = planner.plan(signal)
                for _, batch_id, group in intent_groups(signal.signal_id, intents):
                    encode_intents(batch_id, group)  # as the outbox encodes what it sends
                for error in errors:
                    error.dumps()
                planned += len(intents)
                await asyncio.sleep(0)
    for kind, _ in WARM_KINDS:
        for outcome in _SIGNAL_OUTCOMES:  # the children handle_signal counts into (they show 0)
            metrics.SIGNALS_TOTAL.labels(kind, outcome)
    return planned


async def warm_positions(consumer: DirectSignalConsumer) -> int:
    """Wait for the consumer's first assignment, then resolve the fetch position of each of
    its partitions; returns how many (bounded by the warm-up's timeout)."""
    await wait_for("trade.signals assigned", lambda: bool(consumer.assignment()))
    assigned = sorted(consumer.assignment())
    for tp in assigned:
        await consumer.consumer.position(tp)
    return len(assigned)


def install(warmup: Warmup, stage: FanoutStage) -> None:
    """Add the fan-out's steps: the throw-away plans, and the direct consumer's positions (the
    Faust agent's consumer is Faust's own, ready when Faust assigned it partitions)."""
    planner = stage.planner
    warmup.add("fanout: a throw-away plan per leader, kind and symbol", lambda: warm_planner(planner))
    consumer = stage.signal_consumer
    if consumer is not None:
        warmup.add("fanout: trade.signals positions", lambda: warm_positions(consumer))


__all__ = ["MAX_SYMBOLS", "WARM_KINDS", "install", "sample_signal", "warm_planner", "warm_positions", "warm_symbols"]

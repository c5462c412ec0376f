"""``order.errors`` records carry the errors of one partition (#16, #18's soak): grouped by the
partition of their account, in order, bounded in size; every consumer reads a batch, a bare
error (older producers, the fan-out, the reconciler) and refuses anything else with a
``ValueError``."""

from __future__ import annotations

import json

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from copytrader.agents.shared.outbox import ERROR_PARTITIONS, MemoryOutbox, TopicOutbox, batch_errors
from copytrader.app.factory import empty_config
from copytrader.core.records import MAX_ERRORS_PER_RECORD, ErrorBatch, OrderError, errors_of
from copytrader.core.topics import partition_for
from copytrader.demo.soak import Judge
from copytrader.web.live import LiveState
from copytrader.web.realtime import KafkaFeed


def error(n: int, account: str = "f001", code: str = "COPY_STALE_NETTED", stage: str = "execute") -> OrderError:
    return OrderError(
        error_id=f"c{n}|execute",
        stage=stage,
        reason="3 copies older than 2 s (2.5–4.0 s) not placed",
        account_id=account,
        signal_id=f"leader-1:{n}:new",
        client_order_id=f"c{n}",
        code=code,
    )


def test_errors_are_grouped_by_the_partition_of_their_account_in_order() -> None:
    accounts = [f"f{n:03d}" for n in range(40)]
    errors = [error(n * 2 + k, account) for n, account in enumerate(accounts) for k in range(2)]
    batches = batch_errors(errors)
    assert sum(len(b.errors) for _, b in batches) == len(errors)
    assert len(batches) <= ERROR_PARTITIONS < len(errors)
    for partition, batch in batches:
        assert {partition_for(e.account_id, ERROR_PARTITIONS) for e in batch.errors} == {partition}
        ids = [e.error_id for e in batch.errors]
        assert ids == sorted(ids, key=lambda i: int(i[1:].split("|")[0]))  # the order they were queued


def test_a_record_never_holds_more_than_the_limit() -> None:
    errors = [error(n) for n in range(MAX_ERRORS_PER_RECORD * 2 + 1)]
    assert [len(b.errors) for _, b in batch_errors(errors)] == [MAX_ERRORS_PER_RECORD, MAX_ERRORS_PER_RECORD, 1]
    with pytest.raises(ValueError, match="errors"):
        ErrorBatch(errors=[error(n) for n in range(MAX_ERRORS_PER_RECORD + 1)])
    with pytest.raises(ValueError, match="errors"):
        ErrorBatch(errors=[])
    biggest = ErrorBatch(errors=[error(n) for n in range(MAX_ERRORS_PER_RECORD)])
    for e in biggest.errors:
        e.payload = "x" * 4000  # the router's bound on an unreadable answer
    assert len(biggest.dumps()) < 1_000_000  # Kafka's default message limit


def test_a_batch_and_a_bare_error_decode_to_the_same_errors() -> None:
    batch = ErrorBatch(errors=[error(1), error(2, "f002")])
    assert [(e.error_id, e.account_id, e.code) for e in errors_of(batch.dumps())] == [
        ("c1|execute", "f001", "COPY_STALE_NETTED"),
        ("c2|execute", "f002", "COPY_STALE_NETTED"),
    ]
    (bare,) = errors_of(error(3, code="REJECTED").dumps())
    assert (bare.error_id, bare.code) == ("c3|execute", "REJECTED")


def test_one_bad_error_refuses_its_whole_record_at_decode() -> None:
    data = orjson.loads(ErrorBatch(errors=[error(1), error(2)]).dumps())
    data["errors"][1]["stage"] = "teleport"
    with pytest.raises(ValueError, match="stage"):
        errors_of(orjson.dumps(data))


@settings(max_examples=200, deadline=None)
@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(["errors", "stage", "x"]), inner),
        max_leaves=8,
    )
)
def test_anything_else_is_a_value_error(value: object) -> None:
    raw = json.dumps(value).encode()  # NaN, infinities and huge integers too
    with pytest.raises(ValueError):
        errors_of(raw)


class Sent:
    def __init__(self) -> None:
        self.records: list[tuple[str, object, int | None]] = []

    async def send(self, key: str, value: object, partition: int | None = None) -> None:
        self.records.append((key, value, partition))


class FakeTopics:
    def __init__(self) -> None:
        self.errors = Sent()


async def test_the_topic_outbox_sends_one_record_per_partition_and_a_lone_error_bare() -> None:
    topics = FakeTopics()
    outbox = TopicOutbox(topics)  # type: ignore[arg-type]  # only ``errors`` is used
    errors = [error(n, f"f{n:03d}") for n in range(30)]
    await outbox.errors(errors)
    assert len(topics.errors.records) <= ERROR_PARTITIONS
    carried = [e for _, batch, _ in topics.errors.records if isinstance(batch, ErrorBatch) for e in batch.errors]
    assert sorted(e.error_id for e in carried) == sorted(e.error_id for e in errors)
    for key, batch, partition in topics.errors.records:
        assert isinstance(batch, ErrorBatch) and partition == partition_for(key, ERROR_PARTITIONS)
    topics.errors.records.clear()
    await outbox.errors([error(99)])
    assert [(key, type(value)) for key, value, _ in topics.errors.records] == [("f001", OrderError)]
    memory = MemoryOutbox()
    await memory.errors(errors[:3])
    assert memory.sent["error"] == errors[:3]


def test_the_dashboard_numbers_each_error_of_a_record_and_skips_a_replayed_record() -> None:
    live = LiveState(empty_config())
    feed = KafkaFeed("127.0.0.1:1", "", live, hub=None)
    record = ErrorBatch(errors=[error(1), error(2, "f002")]).dumps()
    rows = [row for stream, row in feed._apply("order.errors", 2, 5, record) if stream == "errors"]
    assert [(row["error_id"], row["_o"]) for row in rows] == [("c1|execute", 5000), ("c2|execute", 5001)]
    assert feed._apply("order.errors", 2, 5, record) == []  # a consumer restart replays it
    bare = [row["_o"] for s, row in feed._apply("order.errors", 2, 6, error(3).dumps()) if s == "errors"]
    assert bare == [6000]


def test_the_soak_judge_counts_every_error_of_a_batch() -> None:
    judge = Judge()
    judge.record("order.errors", ErrorBatch(errors=[error(1), error(2, stage="fanout")]).dumps())
    judge.record("order.errors", error(3, code="REJECTED").dumps())
    assert judge.errors == 3 and judge.records["order.errors"] == 2
    assert judge.error_codes == {"COPY_STALE_NETTED": 2, "REJECTED": 1}
    assert judge.refused == {("leader-1:2:new", "f001")}


def test_the_soak_judge_counts_outcomes_by_action() -> None:
    judge = Judge()
    judge.expected[("s1", "f001")] = ("place", "c1")
    judge.expected[("s2", "f001")] = ("cancel", "c2")
    reject = {"kind": "reject", "request_outcome": True, "signal_id": "s1", "account_id": "f001"}
    judge.record("trade.executions", orjson.dumps({"executions": [reject]}))
    assert judge.by_action() == {"cancel:none": 1, "place:reject": 1}
    assert judge.missing() == [("s2", "f001")]

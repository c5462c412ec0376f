"""FinishedOrders: full records for the latest finished orders, fingerprints after, dropped only
when a complete replay no longer lists them (#18 item 3)."""

from __future__ import annotations

import pytest

from copytrader.brokers.finished import FinishedOrders


def table(keep: int, reported: dict[str, int]) -> FinishedOrders:
    return FinishedOrders(lambda order_id: reported.get(order_id, 0), keep)


def test_the_oldest_finished_orders_beyond_keep_shrink_to_fingerprints_of_what_was_reported() -> None:
    reported = {"a": 2, "b": 1, "c": 3}
    finished = table(1, reported)
    assert finished.finished("a") == []
    reported["a"] = 3  # a late fill counted after the end: the fingerprint takes it
    assert finished.finished("b") == ["a"]
    assert finished.finished("c") == ["b"]
    assert (finished.forgotten("a"), finished.forgotten("b"), finished.forgotten("c")) == (3, 1, None)
    assert (len(finished), finished.fingerprint_count) == (3, 2)


def test_a_reopened_order_is_no_longer_forgotten_nor_counted() -> None:
    finished = table(0, {"a": 1})
    assert finished.finished("a") == ["a"]
    finished.reopened("a")
    assert finished.forgotten("a") is None and len(finished) == 0


def test_a_complete_replay_drops_the_fingerprints_it_did_not_list() -> None:
    finished = table(0, {})
    for order_id in ("a", "b", "c"):
        finished.finished(order_id)
    replay = finished.begin_replay()
    finished.listed(replay, "b")
    finished.listed(replay, "never-forgotten")
    finished.finished("d")  # forgotten while the replay was in flight: its answer may predate it
    assert sorted(finished.end_replay(replay)) == ["a", "c"]
    assert [finished.forgotten(x) for x in "abcd"] == [None, 0, None, 0]


def test_a_replay_that_is_not_ended_drops_nothing() -> None:
    finished = table(0, {})
    finished.finished("a")
    finished.begin_replay()  # failed half way: never ended
    later = finished.begin_replay()
    finished.listed(later, "a")
    assert finished.end_replay(later) == []
    assert finished.forgotten("a") == 0


def test_keep_must_not_be_negative() -> None:
    with pytest.raises(ValueError, match="keep"):
        table(-1, {})

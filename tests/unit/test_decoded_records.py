"""One decode per record for the consumers of one worker (``agents/shared/decoded_records.py``):
each registered reader gets the values, only the first pays the decoding, and nothing else
(another record at the same place, another decoder, a record that does not decode, a reader
that came too late) ever gets a value that its own decoding would not have given."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from copytrader.agents.shared.decoded_records import DecodedRecords

TOPIC = "p.trade.executions"


def counting(calls: list[bytes]) -> Callable[[bytes], list[str]]:
    def decode(raw: bytes) -> list[str]:
        calls.append(raw)
        if raw == b"bad":
            raise ValueError("not a record")
        return [raw.decode(), "second"]

    return decode


def book(readers: int, **options: Any) -> DecodedRecords:
    decoded = DecodedRecords(**options)
    for _ in range(readers):
        decoded.add_reader(TOPIC)
    return decoded


def test_three_readers_share_one_decode_and_the_entry_goes_with_the_last() -> None:
    calls: list[bytes] = []
    decode, decoded = counting(calls), book(3)
    values = [decoded.decode(decode, TOPIC, 2, 40, b"a") for _ in range(3)]
    assert values == [["a", "second"]] * 3
    assert calls == [b"a"]
    assert len({id(v) for v in values}) == 3  # each reader's list is its own
    assert decoded.kept == 0 and decoded.hits == 2
    decoded.decode(decode, TOPIC, 2, 40, b"a")  # a fourth read (a redelivery): decoded again
    assert calls == [b"a", b"a"]


def test_a_topic_read_once_is_never_kept() -> None:
    calls: list[bytes] = []
    decode, decoded = counting(calls), book(1)
    for _ in range(2):
        assert decoded.decode(decode, TOPIC, 0, 1, b"a") == ["a", "second"]
    assert calls == [b"a", b"a"] and decoded.kept == 0


def test_only_the_same_place_bytes_and_decoder_are_served() -> None:
    calls: list[bytes] = []
    decode, decoded = counting(calls), book(2)
    decoded.decode(decode, TOPIC, 0, 7, b"a")
    assert decoded.decode(decode, TOPIC, 0, 7, b"b") == ["b", "second"]  # a topic made again
    assert decoded.decode(decode, TOPIC, 1, 7, b"b") == ["b", "second"]  # another partition
    assert decoded.decode(counting([]), TOPIC, 0, 7, b"b") == ["b", "second"]  # another decoder
    assert calls == [b"a", b"b", b"b"]


def test_a_record_that_does_not_decode_fails_for_every_reader() -> None:
    calls: list[bytes] = []
    decode, decoded = counting(calls), book(3)
    for _ in range(3):
        with pytest.raises(ValueError):
            decoded.decode(decode, TOPIC, 0, 3, b"bad")
    assert calls == [b"bad"] * 3 and decoded.kept == 0


def test_kept_records_are_bounded_by_their_bytes_oldest_dropped_first() -> None:
    calls: list[bytes] = []
    decode, decoded = counting(calls), book(2, max_kept_bytes=10)
    for offset in range(5):
        decoded.decode(decode, TOPIC, 0, offset, b"abcd")  # 4 bytes each: two fit
    assert decoded.kept == 2
    decoded.decode(decode, TOPIC, 0, 0, b"abcd")  # dropped: decoded again
    decoded.decode(decode, TOPIC, 0, 4, b"abcd")  # still kept: served
    assert len(calls) == 6

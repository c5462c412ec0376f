"""The R|Protocol codec: frames round-trip, and no malformed frame escapes as anything but FrameError."""

from __future__ import annotations

import pytest
from ci_skips import require_module
from hypothesis import given, settings
from hypothesis import strategies as st

require_module("async_rithmic", "third-party client", "async-rithmic (install_requires in setup.cfg)")

from copytrader.brokers.rithmic import codec  # noqa: E402
from copytrader.brokers.rithmic.codec import FrameError, UnknownTemplate  # noqa: E402


def test_round_trip_keeps_every_field() -> None:
    sent = codec.build(312, user_msg=["req-1"], user_tag="cp-7", account_id="A1", symbol="ESZ6", quantity=3, price=1.5)
    frame = codec.encode(sent)
    assert int.from_bytes(frame[:4], "big") == len(frame) - 4  # Reference Guide: big-endian length prefix
    got = codec.decode(frame)
    assert type(got) is type(sent)
    assert got == sent
    assert codec.template_of(got) == 312
    assert list(got.user_msg) == ["req-1"]


def test_frame_without_length_prefix_is_refused() -> None:
    body = codec.build(18).SerializeToString()
    with pytest.raises(FrameError, match="message length is invalid"):
        codec.decode(body)  # three bytes, no header


@pytest.mark.parametrize("delta", [-1, 1, 1000])
def test_length_that_disagrees_with_payload_is_refused(delta: int) -> None:
    frame = codec.encode(codec.build(10, user="u", password="p"))
    declared = len(frame) - 4 + delta
    with pytest.raises(FrameError, match="message length is invalid"):
        codec.decode(declared.to_bytes(4, "big") + frame[4:])


@pytest.mark.parametrize("declared", [-1, -(2**31), 2**31 - 1, codec.MAX_MESSAGE_BYTES + 1])
def test_negative_and_huge_lengths_are_refused_without_buffering(declared: int) -> None:
    with pytest.raises(FrameError, match="message length is invalid"):
        codec.decode(declared.to_bytes(4, "big", signed=True) + b"\x00" * 8)


def test_oversized_message_is_not_encoded() -> None:
    with pytest.raises(FrameError, match="exceeds"):
        codec.encode(codec.build(75, rp_code=["x" * (codec.MAX_MESSAGE_BYTES + 1)]))


def test_unknown_template_is_a_named_error() -> None:
    base = codec.build(18)
    base.template_id = 358  # seen on "Rithmic 01" (async-rithmic 1.6.6 CHANGELOG); not mapped here
    with pytest.raises(UnknownTemplate) as caught:
        codec.decode(codec.encode(base))
    assert caught.value.template_id == 358
    with pytest.raises(UnknownTemplate):
        codec.build(99999)


def test_frame_without_template_id_is_unknown_template_zero() -> None:
    with pytest.raises(UnknownTemplate) as caught:
        codec.decode((0).to_bytes(4, "big"))
    assert caught.value.template_id == 0


def test_garbage_body_is_a_frame_error() -> None:
    body = b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff"  # an unterminated varint
    with pytest.raises(FrameError, match="undecodable"):
        codec.decode(len(body).to_bytes(4, "big") + body)


def _valid_frames() -> st.SearchStrategy[bytes]:
    ids = st.sampled_from(sorted(codec.TEMPLATES))
    texts = st.lists(st.text(max_size=20), max_size=3)

    def frame(template_id: int, msgs: list[str]) -> bytes:
        fields = codec.TEMPLATES[template_id].DESCRIPTOR.fields_by_name
        return codec.encode(
            codec.build(template_id, user_msg=msgs) if "user_msg" in fields else codec.build(template_id)
        )

    return st.builds(frame, ids, texts)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=64))
def test_fuzz_arbitrary_bytes_decode_or_raise_frame_error(frame: bytes) -> None:
    try:
        message = codec.decode(frame)
    except FrameError:
        return
    assert codec.template_of(message) in codec.TEMPLATES


@settings(max_examples=300, deadline=None)
@given(_valid_frames(), st.data())
def test_fuzz_truncated_frames_raise_frame_error(frame: bytes, data: st.DataObject) -> None:
    cut = data.draw(st.integers(min_value=0, max_value=len(frame) - 1))
    with pytest.raises(FrameError):
        codec.decode(frame[:cut])


@settings(max_examples=300, deadline=None)
@given(_valid_frames(), st.integers(min_value=-(2**31), max_value=2**31 - 1))
def test_fuzz_wrong_declared_length_raises_frame_error(frame: bytes, declared: int) -> None:
    real = len(frame) - 4
    if declared == real:
        declared += 1 if declared < 2**31 - 1 else -1
    with pytest.raises(FrameError):
        codec.decode(declared.to_bytes(4, "big", signed=True) + frame[4:])


@settings(max_examples=300, deadline=None)
@given(st.integers(min_value=1, max_value=2**31 - 1).filter(lambda t: t not in codec.TEMPLATES))
def test_fuzz_unknown_template_ids_are_unknown_template(template_id: int) -> None:
    message = codec.build(18)
    message.template_id = template_id
    with pytest.raises(UnknownTemplate):
        codec.decode(codec.encode(message))


@settings(max_examples=200, deadline=None)
@given(_valid_frames())
def test_fuzz_valid_frames_round_trip(frame: bytes) -> None:
    assert codec.encode(codec.decode(frame)) == frame

"""The sans-I/O parts: the 13-field command line, instrument names, ORDER IDs, the outgoing
file formats and the NUL-token framing. Fixtures are the help guide's own examples."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from nt_helpers import HELP_GUIDE_LINES

from copytrader.brokers.ninjatrader import tokens
from copytrader.brokers.ninjatrader.commandline import (
    Action,
    AtiCommand,
    Command,
    CommandError,
    NtOrderType,
    Tif,
    encode,
    parse,
)
from copytrader.brokers.ninjatrader.orderids import nt_order_id
from copytrader.brokers.ninjatrader.states import (
    NtState,
    OrderReport,
    PositionReport,
    read_connection_file,
    read_order_file,
    read_position_file,
    split_position_file_name,
)
from copytrader.brokers.ninjatrader.symbols import SymbolError, from_instrument, to_instrument


@pytest.mark.parametrize("line", HELP_GUIDE_LINES)
def test_help_guide_lines_parse_and_encode_back(line: str) -> None:
    assert encode(parse(line)) == line


def test_place_fields_are_read_into_types() -> None:
    cmd = parse("PLACE;Sim101;ES 12-26;SELL;2;LIMIT;1212.25;;GTC;;ORDER1;;")
    assert cmd == AtiCommand(
        Command.PLACE,
        account="Sim101",
        instrument="ES 12-26",
        action=Action.SELL,
        quantity=2,
        order_type=NtOrderType.LIMIT,
        limit_price=Decimal("1212.25"),
        tif=Tif.GTC,
        order_id="ORDER1",
    )


def test_nt7_stop_spelling_is_accepted_beside_stopmarket() -> None:
    for name in ("STOP", "STOPMARKET"):
        assert parse(f"PLACE;Sim101;ES 12-26;BUY;1;{name};;5005.00;DAY;;;;").stop_price == Decimal("5005.00")


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("PLACE;Sim101;ES 12-26;BUY;1;MARKET;;;DAY;;;", "expected 13"),
        ("PLACE;Sim101;ES 12-26;BUY;1;MARKET;;;DAY;;;;;", "expected 13"),
        ("PLACE;Sim101;ES 12-26;BUY;1;LIMIT;1212,25;;DAY;;;;", "US decimal"),
        ("PLACE;Sim101;ES 12-26;BUY;1;LIMIT;1e3;;DAY;;;;", "US decimal"),
        ("PLACE;Sim101;ES 12-26;BUY;1;TRAILSTOP;;;DAY;;;;", "ORDER TYPE"),
        ("PLACE;Sim101;ES 12-26;BUY;1;MARKET;;;IOC;;;;", "TIF"),
        ("PLACE;Sim101;ES 12-26;HOLD;1;MARKET;;;DAY;;;;", "ACTION"),
        ("PLACE;Sim101;ES 12-26;BUY;0;MARKET;;;DAY;;;;", "QTY above 0"),
        ("PLACE;Sim101;ES 12-26;BUY;1.5;MARKET;;;DAY;;;;", "whole number"),
        ("PLACE;Sim101;ES 12-26;BUY;1;LIMIT;;;DAY;;;;", "LIMIT PRICE"),
        ("PLACE;Sim101;ES 12-26;BUY;1;STOPMARKET;;;DAY;;;;", "STOP PRICE"),
        ("PLACE;;ES 12-26;BUY;1;MARKET;;;DAY;;;;", "needs ACCOUNT"),
        ("PLACE;Sim101;ESZ6;BUY;1;MARKET;;;DAY;;;;", "INSTRUMENT"),
        ("PLACE;Sim101;ES 12-26;BUY;1;MARKET;;;DAY;;A|B;;", "'|'"),
        ("CANCEL;;;;;;;;;;;;", "ORDER ID"),
        ("CLOSEPOSITION;Sim101;;;;;;;;;;;", "INSTRUMENT"),
        ("BUY;Sim101;ES 12-26;BUY;1;MARKET;;;DAY;;;;", "COMMAND"),
        ("PLACE;Sïm101;ES 12-26;BUY;1;MARKET;;;DAY;;;;", "ASCII"),
    ],
)
def test_lines_ninjatrader_would_refuse_say_why(line: str, reason: str) -> None:
    with pytest.raises(CommandError, match=reason):
        parse(line)


def test_encode_refuses_a_semicolon_inside_a_field() -> None:
    with pytest.raises(CommandError, match="holds ';'"):
        encode(AtiCommand(Command.CANCEL, order_id="A;B"))


# -- fuzz -------------------------------------------------------------------------------------------
_ids = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_", min_size=1, max_size=30)
_prices = st.decimals(min_value=Decimal("0.01"), max_value=Decimal("99999"), places=2)


@settings(max_examples=200, deadline=None)
@given(
    action=st.sampled_from(Action),
    quantity=st.integers(1, 10_000),
    order_type=st.sampled_from(NtOrderType),
    limit=_prices,
    stop=_prices,
    tif=st.sampled_from(Tif),
    order_id=_ids,
)
def test_fuzz_place_round_trips(
    action: Action, quantity: int, order_type: NtOrderType, limit: Decimal, stop: Decimal, tif: Tif, order_id: str
) -> None:
    cmd = AtiCommand(
        Command.PLACE,
        account="Sim101",
        instrument="NQ 03-27",
        action=action,
        quantity=quantity,
        order_type=order_type,
        limit_price=limit if order_type in (NtOrderType.LIMIT, NtOrderType.STOPLIMIT) else None,
        stop_price=stop if order_type in (NtOrderType.STOPMARKET, NtOrderType.STOPLIMIT, NtOrderType.STOP) else None,
        tif=tif,
        order_id=order_id,
    )
    assert parse(encode(cmd)) == cmd


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300))
def test_fuzz_any_text_parses_or_raises_command_error(text: str) -> None:
    try:
        parsed = parse(text)
    except CommandError as exc:
        assert str(exc)
    else:
        assert isinstance(parsed.command, Command)


# -- instruments, ids, files --------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("ours", "theirs"), [("ESZ6", "ES 12-26"), ("NQH7", "NQ 03-27"), ("MESM6", "MES 06-26"), ("CLF31", "CL 01-31")]
)
def test_symbols_map_both_ways(ours: str, theirs: str) -> None:
    assert to_instrument(ours) == theirs
    assert from_instrument(theirs) == ours


@pytest.mark.parametrize("bad", ["ES", "XXZ6", "ES 13-26", "ES 12/26", "es 12-26", "ES  12-26"])
def test_symbols_without_contract_or_of_unknown_roots_are_refused(bad: str) -> None:
    with pytest.raises(SymbolError):
        from_instrument(bad) if " " in bad or "/" in bad else to_instrument(bad)


def test_order_ids_keep_safe_ids_and_hash_the_rest_deterministically() -> None:
    assert nt_order_id("CTABCDEFGH234567") == "CTABCDEFGH234567"
    hashed = nt_order_id("leader:1:new|f1")
    assert hashed.startswith("H_") and len(hashed) == 34 and hashed == nt_order_id("leader:1:new|f1")
    assert nt_order_id("x" * 41) != nt_order_id("x" * 42)
    assert all(c not in hashed for c in ';|\\/:*?"<>')


@settings(max_examples=200, deadline=None)
@given(st.text(min_size=1, max_size=80))
def test_fuzz_any_client_id_becomes_a_line_safe_order_id(client_id: str) -> None:
    nt_id = nt_order_id(client_id)
    assert parse(encode(AtiCommand(Command.CANCEL, order_id=nt_id))).order_id == nt_id


def test_outgoing_files_read_as_the_help_guide_writes_them() -> None:
    assert read_order_file("Filled;2;1212.25\r\n") == OrderReport(NtState.FILLED, 2, Decimal("1212.25"))
    assert read_order_file("WORKING;0;0").state is NtState.WORKING
    assert read_position_file("SHORT;3;5000.5") == PositionReport(-3, Decimal("5000.5"))
    assert read_position_file("FLAT;0;0").net == 0
    assert read_connection_file("DISCONNECTED\r\n") is False
    assert split_position_file_name("ES 09-14 Globex_Sim101_Position.txt", ["Sim101"]) == ("ES 09-14", "Sim101")
    assert split_position_file_name("ES 09-14 Globex_My_Acct_Position.txt", ["Acct", "My_Acct"]) == (
        "ES 09-14",
        "My_Acct",
    )
    for text in ("Filled;2", "Exploded;1;1", "Filled;-1;5", "Filled;1;1,5", "Filled;1;nan"):
        with pytest.raises(ValueError):
            read_order_file(text)
    for text in ("FLAT;2;5000", "LONG;0;1", "SIDEWAYS;1;1"):
        with pytest.raises(ValueError):
            read_position_file(text)


# -- NUL tokens (N-tk) --------------------------------------------------------------------------------
def test_tokens_frame_a_command_and_a_value() -> None:
    assert tokens.command("CANCELALLORDERS;;;;;;;;;;;;") == b"0\x00CANCELALLORDERS;;;;;;;;;;;;\x00"
    decoder = tokens.TokenDecoder()
    data = tokens.value("OrderStatus|X1", "Working") + tokens.encode(tokens.MessageType.SUBSCRIBE, "ES 12-26", 1)
    for cut in (3, 11, len(data)):  # a frame split anywhere is read whole
        decoder = tokens.TokenDecoder()
        decoder.feed(data[:cut])
        first = list(decoder.frames())
        decoder.feed(data[cut:])
        frames = first + list(decoder.frames())
        assert frames == [
            tokens.Frame(tokens.MessageType.VALUE, ("OrderStatus|X1", "Working")),
            tokens.Frame(tokens.MessageType.SUBSCRIBE, ("ES 12-26", "1")),
        ]


def test_unknown_type_or_non_ascii_breaks_the_stream_and_bad_arguments_do_not() -> None:
    decoder = tokens.TokenDecoder()
    decoder.feed(tokens.encode(tokens.MessageType.CONFIRMORDERS, "x") + tokens.value("ATI", "True"))
    frames = list(decoder.frames())
    assert isinstance(frames[0], tokens.BadMessage) and frames[1] == tokens.Frame(
        tokens.MessageType.VALUE, ("ATI", "True")
    )
    for garbage in (b"9\x00", b"\xff\x00", b"x" * (tokens.MAX_TOKEN + 1)):
        broken = tokens.TokenDecoder()
        broken.feed(garbage)
        with pytest.raises(tokens.FramingError):
            list(broken.frames())


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400))
def test_fuzz_arbitrary_bytes_give_frames_or_a_framing_error(data: bytes) -> None:
    decoder = tokens.TokenDecoder()
    decoder.feed(data)
    try:
        for frame in decoder.frames():
            assert isinstance(frame, (tokens.Frame, tokens.BadMessage))
    except tokens.FramingError as exc:
        assert str(exc)

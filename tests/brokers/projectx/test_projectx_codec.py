"""Sans-I/O pieces: SignalR framing and ProjectX ↔ model translation."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from copytrader.brokers.model import Bracket, OrderStatus, OrderType, Side
from copytrader.brokers.projectx import codec, parsing
from copytrader.brokers.projectx import schemas as px

RS = "\x1e"


def test_handshake_request_and_response_frames() -> None:
    assert codec.handshake_request() == '{"protocol":"json","version":1}' + RS
    assert codec.handshake_response() == "{}" + RS
    server = codec.Decoder(expect_handshake="request")
    assert server.feed(codec.handshake_request()) == [] and server.handshake_done
    client = codec.Decoder(expect_handshake="response")
    assert client.feed("{}" + RS + codec.ping()) == [codec.Message(codec.MessageType.PING)]


def test_handshake_refusals() -> None:
    with pytest.raises(codec.ProtocolError):
        codec.Decoder(expect_handshake="request").feed('{"protocol":"messagepack","version":1}' + RS)
    with pytest.raises(codec.ProtocolError):
        codec.Decoder(expect_handshake="response").feed('{"error":"nope"}' + RS)
    # signalrcore sends its negotiate version (0) here; ASP.NET accepts version <= 1.
    codec.Decoder(expect_handshake="request").feed('{"protocol":"json","version":0}' + RS)


@pytest.mark.parametrize(
    "message",
    [
        codec.Message(codec.MessageType.INVOCATION, target="SubscribeOrders", arguments=(7001,), invocation_id="3"),
        codec.Message(codec.MessageType.INVOCATION, target="GatewayUserOrder", arguments=({"id": 1},)),
        codec.Message(codec.MessageType.COMPLETION, invocation_id="3", error="boom"),
        codec.Message(codec.MessageType.PING),
        codec.Message(codec.MessageType.CLOSE, error="bye", allow_reconnect=True),
    ],
)
def test_round_trip(message: codec.Message) -> None:
    assert codec.Decoder().feed(codec.encode(message)) == [message]


def test_records_split_across_frames_and_joined_in_one() -> None:
    wire = codec.invocation("A", [1]) + codec.ping() + codec.completion("9", result=None, has_result=True)
    decoder = codec.Decoder()
    out = decoder.feed(wire[:5]) + decoder.feed(wire[5:17]) + decoder.feed(wire[17:].encode())
    assert [m.type for m in out] == [codec.MessageType.INVOCATION, codec.MessageType.PING, codec.MessageType.COMPLETION]
    assert out[2].raw == {"type": 3, "invocationId": "9", "result": None}


def test_decimal_prices_encode_as_numbers() -> None:
    assert codec.dumps({"p": Decimal("6335.25")}) == '{"p":6335.25}'


def test_status_mapping_shows_partials_as_open_with_volume() -> None:
    assert parsing.status_from_px(px.OrderStatus.OPEN, 3, 1) is OrderStatus.PARTIALLY_FILLED
    assert parsing.status_from_px(px.OrderStatus.OPEN, 3, 0) is OrderStatus.WORKING
    assert parsing.status_from_px(px.OrderStatus.FILLED, 3, 3) is OrderStatus.FILLED
    for ours in OrderStatus:
        theirs = parsing.STATUS_TO_PX[ours]
        filled = 1 if ours is OrderStatus.PARTIALLY_FILLED else 0
        assert parsing.status_from_px(theirs, 2, filled) is ours


def test_symbols_and_contract_ids() -> None:
    today = date(2026, 11, 27)
    assert parsing.contract_for_symbol("ESZ6", today) == ("EP", "CON.F.US.EP.Z26")
    assert parsing.contract_for_symbol("MNQH27", today) == ("MNQ", "CON.F.US.MNQ.H27")
    assert parsing.contract_for_symbol("NQ", today) == ("ENQ", None)
    assert parsing.symbol_for_contract("CON.F.US.EP.U25") == "ESU5"
    with pytest.raises(KeyError):
        parsing.contract_for_symbol("ZZZZ", today)


def test_place_request_uses_documented_fields() -> None:
    body = parsing.place_request(
        account_id=465,
        contract_id="CON.F.US.EP.Z26",
        side=Side.SELL,
        quantity=1,
        order_type=OrderType.MARKET,
        limit_price=None,
        stop_price=None,
        custom_tag="cid-1",
        bracket=Bracket(take_profit=Decimal("5"), stop_loss=Decimal("2.5")),
        tick_size=Decimal("0.25"),
    )
    assert body["type"] == 2 and body["side"] == 1 and body["customTag"] == "cid-1"
    # A short's stop-loss sits above the entry (positive ticks), its take-profit below (negative).
    assert body["stopLossBracket"] == {"ticks": 10, "type": 4}
    assert body["takeProfitBracket"] == {"ticks": -20, "type": 1}
    long = parsing.place_request(
        account_id=465,
        contract_id="CON.F.US.EP.Z26",
        side=Side.BUY,
        quantity=1,
        order_type=OrderType.MARKET,
        limit_price=None,
        stop_price=None,
        custom_tag="cid-2",
        bracket=Bracket(take_profit=Decimal("5"), stop_loss=Decimal("2.5")),
        tick_size=Decimal("0.25"),
    )
    assert long["stopLossBracket"]["ticks"] == -10 and long["takeProfitBracket"]["ticks"] == 20
    with pytest.raises(ValueError):
        parsing.place_request(
            account_id=1,
            contract_id="x",
            side=Side.BUY,
            quantity=1,
            order_type=OrderType.STOP_LIMIT,
            limit_price=Decimal(1),
            stop_price=Decimal(1),
            custom_tag=None,
        )


def test_times_keep_utc_and_trim_dotnet_ticks() -> None:
    parsed = parsing.parse_time("2025-02-25T14:41:35.2143684+00:00")
    assert parsed == datetime(2025, 2, 25, 14, 41, 35, 214368, tzinfo=UTC)
    assert parsing.parse_time("2025-01-20T15:47:39.882Z") is not None


def test_unwrap_accepts_live_envelope_and_bare_payload() -> None:
    assert parsing.unwrap({"action": 1, "data": {"id": 5}}) == {"id": 5}
    assert parsing.unwrap({"id": 5}) == {"id": 5}


def test_a_voided_trade_is_not_a_fill() -> None:
    """Trade/search and GatewayUserTrade mark a busted trade ``voided``: it must not count as a fill."""
    from copytrader.brokers.projectx.tracking import Tracker

    tracker = Tracker({7001: "f1"}, parsing.symbol_for_contract)
    trade = {
        "id": 1,
        "accountId": 7001,
        "contractId": "CON.F.US.EP.Z26",
        "creationTimestamp": "2026-11-30T10:00:00Z",
        "price": 5000.25,
        "profitAndLoss": None,
        "fees": 1.4,
        "side": 0,
        "size": 1,
        "voided": True,
        "orderId": 9,
    }
    assert tracker.fill_event(trade) is None
    assert tracker.fill_event(dict(trade, id=2, voided=False)) is not None

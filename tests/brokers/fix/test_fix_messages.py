"""Domain ↔ FIX: request fields, and ExecutionReports read across the 4.2/4.4 difference."""

from __future__ import annotations

from decimal import Decimal

import pytest

from copytrader.brokers.fix import messages as m
from copytrader.brokers.fix.codec import SOH, FixDecodeError, parse, serialize
from copytrader.brokers.model import OrderStatus, OrderType, Side, TimeInForce

TERMS = m.OrderTerms("ACC1", "ESZ6", Side.BUY, 2, OrderType.STOP_LIMIT, Decimal("4990.25"), Decimal("4991.00"))


def report(**tags: str) -> m.FixMessage:
    base = {35: "8", 37: "1001", 11: "C1", 17: "E1", 39: "0", 55: "ESZ6", 54: "1", 38: "2", 40: "2", 14: "0", 151: "2"}
    base.update({int(k[1:]): v for k, v in tags.items()})
    return parse(serialize(base.items()))


def test_new_order_single_carries_what_both_versions_require() -> None:
    fields = dict(m.new_order("C1", TERMS))
    assert fields[m.CL_ORD_ID] == "C1" and fields[m.HANDL_INST] == "1" and fields[m.SIDE] == "1"
    assert (fields[m.ORD_TYPE], fields[m.PRICE], fields[m.STOP_PX]) == ("4", "4990.25", "4991")
    assert fields[m.TIME_IN_FORCE] == "0" and fields[m.ORDER_QTY] == "2" and m.TRANSACT_TIME in fields


def test_cancel_and_replace_name_the_current_clordid() -> None:
    cancel = dict(m.cancel_request("C1-C1", "C1", "1001", TERMS))
    assert (cancel[m.CL_ORD_ID], cancel[m.ORIG_CL_ORD_ID], cancel[m.ORDER_ID]) == ("C1-C1", "C1", "1001")
    gtc = m.OrderTerms("ACC1", "ESZ6", Side.SELL, 1, OrderType.LIMIT, Decimal("5001"), time_in_force=TimeInForce.GTC)
    replace = dict(m.replace_request("C1-R1", "C1", "1001", gtc))
    assert (replace[m.SIDE], replace[m.PRICE], replace[m.TIME_IN_FORCE]) == ("2", "5001", "1")
    assert m.STOP_PX not in replace


@pytest.mark.parametrize(
    ("version", "tags", "kind"),
    [
        ("FIX.4.2", {"t20": "0", "t150": "1"}, m.TRADE),  # partial fill
        ("FIX.4.2", {"t20": "0", "t150": "2"}, m.TRADE),  # fill
        ("FIX.4.2", {"t20": "1", "t150": "2"}, m.BUST),  # ExecTransType Cancel
        ("FIX.4.2", {"t20": "2", "t150": "2"}, m.CORRECT),
        ("FIX.4.2", {"t20": "3", "t150": "0"}, m.STATUS_ANSWER),
        ("FIX.4.2", {"t20": "0", "t150": "0"}, m.OTHER),
        ("FIX.4.4", {"t150": "F"}, m.TRADE),
        ("FIX.4.4", {"t150": "H"}, m.BUST),
        ("FIX.4.4", {"t150": "G"}, m.CORRECT),
        ("FIX.4.4", {"t150": "I"}, m.STATUS_ANSWER),
        ("FIX.4.4", {"t150": "4"}, m.OTHER),
        ("FIX.4.4", {"t150": "1"}, m.OTHER),  # 4.2's partial-fill code is no trade in 4.4
    ],
)
def test_report_kind_reads_each_version(version: str, tags: dict[str, str], kind: str) -> None:
    assert m.report_kind(version, report(**tags)) == kind


def test_a_42_exec_trans_type_out_of_range_is_an_error() -> None:
    with pytest.raises(FixDecodeError, match="ExecTransType"):
        m.report_kind("FIX.4.2", report(t20="9", t150="2"))


def test_trade_becomes_a_fill_and_an_order_state() -> None:
    trade = report(t150="F", t39="1", t32="1", t31="4990.25", t14="1", t151="1")
    fill = m.fill_event(trade, "A", "C1")
    assert (fill.quantity, fill.price, fill.cumulative_quantity, fill.leaves_quantity) == (1, Decimal("4990.25"), 1, 1)
    order = m.order_event(trade, "A", "C1")
    assert order.status is OrderStatus.PARTIALLY_FILLED and order.filled_quantity == 1


@pytest.mark.parametrize(
    "tags",
    [{"t32": "0", "t31": "5000"}, {"t32": "1", "t31": "-1"}, {"t32": "1.5", "t31": "5000"}, {"t32": "1", "t31": "NaN"}],
)
def test_a_trade_that_cannot_be_true_is_refused(tags: dict[str, str]) -> None:
    with pytest.raises(FixDecodeError):
        m.fill_event(report(t150="F", **tags), "A", "C1")


def test_unknown_enums_are_errors_not_guesses() -> None:
    with pytest.raises(FixDecodeError, match="OrdStatus"):
        m.order_event(report(t39="Z"), "A", None)
    with pytest.raises(FixDecodeError, match="Side"):
        m.order_event(report(t54="7"), "A", None)


def test_parse_rejects_malformed_framing() -> None:
    for raw in ["", "35", f"35=8{SOH}x=1", f"8=FIX.4.2{SOH}", f"35=8{SOH}-1=2", f"35=8{SOH}0=2"]:
        with pytest.raises(FixDecodeError):
            parse(raw)
    assert parse(f"8=FIX.4.4{SOH}35=8{SOH}58=a=b{SOH}").get(58) == "a=b"

"""The bridge's two decisions on QuickFIX's thread, taken without raising into the engine
(any exception raised in a callback of this binding aborts the interpreter)."""

from __future__ import annotations

import asyncio

import quickfix as fix
from waiting import wait_until

from copytrader.brokers.fix.application import Bridge, Listener, into_gap_fill


def order_resend() -> fix.Message:
    message = fix.Message()
    header = message.getHeader()
    header.setField(fix.BeginString("FIX.4.4"))
    header.setField(fix.MsgType("D"))
    header.setField(fix.MsgSeqNum(7))
    header.setField(fix.SenderCompID("ME"))
    header.setField(fix.TargetCompID("THEM"))
    header.setField(fix.PossDupFlag(True))
    header.setField(fix.OrigSendingTime())
    for tag, value in ((11, "C1"), (55, "ESZ6"), (54, "1"), (38, "2"), (40, "1")):
        message.setField(fix.StringField(tag, value))
    return message


def fields(message: fix.Message) -> dict[int, str]:
    return {int(t): v for t, _, v in (p.partition("=") for p in message.toString().split("\x01") if p)}


def test_a_resent_order_becomes_a_gap_fill_over_its_own_number() -> None:
    message = order_resend()
    into_gap_fill(message, 7)
    after = fields(message)
    assert (after[35], after[123], after[36], after[34], after[43]) == ("4", "Y", "8", "7", "Y")
    assert not {11, 55, 54, 38, 40} & after.keys()  # nothing of the order is left to execute


async def test_to_app_rewrites_a_possdup_order_and_reports_fresh_ones() -> None:
    class Seen(Listener):
        def __init__(self) -> None:
            self.sent: list[tuple[str, int]] = []

        def on_sent(self, key: object, msg_type: str, seq_num: int, raw: str) -> None:
            self.sent.append((msg_type, seq_num))

    seen = Seen()
    bridge = Bridge(asyncio.get_running_loop(), seen)
    session = fix.SessionID("FIX.4.4", "ME", "THEM")
    resend = order_resend()
    bridge.toApp(resend, session)
    assert fields(resend)[35] == "4" and bridge.suppressed_resends == 1
    fresh = order_resend()
    fresh.getHeader().removeField(43)
    bridge.toApp(fresh, session)
    await wait_until(lambda: seen.sent, timeout_s=2, what="the send reported on the loop")
    assert fields(fresh)[35] == "D" and seen.sent == [("D", 7)]

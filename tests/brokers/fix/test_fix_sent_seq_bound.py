"""The adapter's map of sent MsgSeqNums (for session Rejects) keeps only the latest (#18)."""

from __future__ import annotations

from pathlib import Path

import pytest

from copytrader.brokers.base import SessionConfig
from copytrader.brokers.fix import adapter as fix_adapter
from copytrader.brokers.fix import messages as m
from copytrader.brokers.fix.application import SessionKey
from copytrader.brokers.fix.codec import serialize


def test_only_the_latest_sent_order_messages_are_kept(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fix_adapter, "SENT_SEQ_KEPT", 3)
    adapter = fix_adapter.FixAdapter(
        SessionConfig(
            platform="fix",
            session_id="bound",
            accounts={"A": "ACC1"},
            endpoint="fix://127.0.0.1:9",
            options={
                "fix_version": "FIX.4.4",
                "sender_comp_id": "ME",
                "target_comp_id": "THEM",
                "store_dir": str(tmp_path),
            },
        )
    )
    key = SessionKey("FIX.4.4", "ME", "THEM")
    for seq in range(1, 6):
        adapter.on_sent(key, m.NEW_ORDER, seq, serialize([(35, m.NEW_ORDER), (11, f"C{seq}")]))
    assert adapter.sent_seq == {3: (m.NEW_ORDER, "C3"), 4: (m.NEW_ORDER, "C4"), 5: (m.NEW_ORDER, "C5")}

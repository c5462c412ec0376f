"""The CLI's one-line answers to a new user's mistakes."""

from __future__ import annotations

import socket

from copytrader.app.preflight import kafka_unreachable, prefixed_send_args


def test_send_to_one_of_our_topics_gets_the_prefix() -> None:
    args = ["send", "--key", "ESZ6", "trade.signals", "{}"]
    assert prefixed_send_args(args, "dev.") == ["send", "--key", "ESZ6", "dev.trade.signals", "{}"]
    assert prefixed_send_args(["send", "--key=ESZ6", "order.errors"], "p.") == ["send", "--key=ESZ6", "p.order.errors"]


def test_agents_foreign_topics_and_no_prefix_pass_unchanged() -> None:
    assert prefixed_send_args(["send", "@fanout", "{}"], "dev.") == ["send", "@fanout", "{}"]
    assert prefixed_send_args(["send", "other.topic"], "dev.") == ["send", "other.topic"]
    assert prefixed_send_args(["send", "trade.signals"], "") == ["send", "trade.signals"]
    assert prefixed_send_args(["worker", "-l", "info"], "dev.") == ["worker", "-l", "info"]


def test_a_listening_broker_address_passes_and_a_closed_one_is_named() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        assert kafka_unreachable(f"127.0.0.1:1,127.0.0.1:{port}", wait_s=0) is None
    problem = kafka_unreachable(f"127.0.0.1:{port}", wait_s=0)
    assert problem is not None and f"127.0.0.1:{port}" in problem and "copytrader kafka start" in problem

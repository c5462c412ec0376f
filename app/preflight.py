"""Checks the CLI runs before handing over to Faust, so a new user's mistakes read as one line.

Without them, ``copytrader worker`` with no broker ended in a 40-line aiokafka traceback, and
``copytrader send trade.signals`` with ``COPYTRADER_TOPIC_PREFIX`` set wrote to the unprefixed
topic that no worker reads, then reported success.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Sequence

from ..core.topics import SPEC, topic_name

__all__ = ["kafka_unreachable", "prefixed_send_args"]


def _host_port(address: str) -> tuple[str, int]:
    host, _, port = address.strip().rpartition(":")
    return (host or "127.0.0.1").strip("[]"), int(port or 9092)


def kafka_unreachable(bootstrap_servers: str, wait_s: float = 5.0) -> str | None:
    """``None`` when any bootstrap address accepts a TCP connection within ``wait_s``;
    otherwise one line saying where we looked and how to start a broker."""
    addresses = [a for a in bootstrap_servers.split(",") if a.strip()]
    deadline = time.monotonic() + wait_s
    while True:
        for address in addresses:
            try:
                with socket.create_connection(_host_port(address), timeout=1.0):
                    return None
            except (OSError, ValueError):
                continue
        if time.monotonic() >= deadline:
            break
        time.sleep(0.5)
    return (
        f"no Kafka broker answers at {', '.join(addresses)} (COPYTRADER_KAFKA_BROKER). "
        "Start a local one with `copytrader kafka start`, or point COPYTRADER_KAFKA_BROKER at your cluster."
    )


def prefixed_send_args(argv: Sequence[str], prefix: str) -> list[str]:
    """``send <topic> ...`` with one of our topic names gets the deployment's topic prefix.

    Faust's ``send`` takes the topic name literally; our workers read ``<prefix><name>``.
    Agent names (``@fanout``) and topics that are not ours pass through unchanged.
    """
    args = list(argv)
    if not prefix or "send" not in args:
        return args
    at = args.index("send") + 1
    # the entity is the first argument after ``send`` that is not an option (or its value)
    while at < len(args) and args[at].startswith("-"):
        at += 1 if "=" in args[at] else 2
    if at < len(args) and args[at] in SPEC:
        args[at] = topic_name(prefix, args[at])
    return args

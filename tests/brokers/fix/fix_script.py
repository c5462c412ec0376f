"""A tiny send/expect runner for session-level scripts, in the style of QuickFIX's acceptance
suite (its test/definitions/server/*.def files): one raw socket, one line per step.

Script lines (``|`` stands for SOH; ``#`` starts a comment):

* ``iCONNECT`` / ``iDISCONNECT``: open / close the connection.
* ``I<fields>``: send raw FIX. ``<BEGIN>`` is the FIX version under test, ``<TIME>`` now (UTC);
  BodyLength (9) and CheckSum (10) are computed unless the line gives them (a garbled message).
* ``E<fields>``: the next message received must hold every listed field: ``tag=value`` equal,
  ``tag~text`` containing ``text``. Heartbeats the acceptor sends on its own are skipped unless
  the line expects a Heartbeat.
* ``eDISCONNECT``: the acceptor closes the connection.
"""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

SOH = "\x01"
EXPECT_TIMEOUT_S = 6.0


def now() -> str:
    return datetime.now(UTC).strftime("%Y%m%d-%H:%M:%S.%f")[:-3]


def frame(line: str, begin: str) -> bytes:
    """A script's ``I`` line as wire bytes (header arithmetic done unless given)."""
    fields = [f for f in line.replace("<BEGIN>", begin).replace("<TIME>", now()).split("|") if f]
    if not fields[0].startswith("8="):
        raise ValueError(f"an I line starts with 8=: {line!r}")
    if fields[1].startswith("9="):  # the script set the length (and checksum) itself
        return (SOH.join(fields) + SOH).encode()
    body = SOH.join(fields[1:]) + SOH
    head = f"{fields[0]}{SOH}9={len(body.encode())}{SOH}"
    total = sum((head + body).encode()) % 256
    return f"{head}{body}10={total:03d}{SOH}".encode()


def split(raw: bytes) -> list[tuple[str, str]]:
    return [tuple(part.split("=", 1)) for part in raw.decode().split(SOH) if part]  # type: ignore[misc]


@dataclass
class ScriptRun:
    host: str
    port: int
    begin: str
    sock: socket.socket | None = None
    buffer: bytes = b""
    received: list[str] = field(default_factory=list)

    def run(self, script: Path) -> None:
        for number, raw_line in enumerate(script.read_text().splitlines(), start=1):
            line = raw_line.strip()
            if not line or line.startswith("#"):
                continue
            try:
                self.step(line)
            except AssertionError as exc:
                raise AssertionError(
                    f"{script.name}:{number}: {line}\n  {exc}\n  received: {self.received[-6:]}"
                ) from None

    def step(self, line: str) -> None:
        if line == "iCONNECT":
            self.sock = socket.create_connection((self.host, self.port), timeout=EXPECT_TIMEOUT_S)
        elif line == "iDISCONNECT":
            self.close()
        elif line == "eDISCONNECT":
            self.expect_disconnect()
        elif line.startswith("I"):
            assert self.sock is not None, "not connected"
            self.sock.sendall(frame(line[1:], self.begin))
        elif line.startswith("E"):
            self.expect(line[1:].replace("<BEGIN>", self.begin))
        else:
            raise AssertionError(f"unknown step {line!r}")

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    def _message(self, deadline: float) -> list[tuple[str, str]] | None:
        """The next complete message, or None when the peer closed."""
        assert self.sock is not None, "not connected"
        while True:
            end = self.buffer.find(SOH.encode() + b"10=")
            if end >= 0:
                stop = self.buffer.find(SOH.encode(), end + 1)
                if stop >= 0:
                    raw, self.buffer = self.buffer[: stop + 1], self.buffer[stop + 1 :]
                    self.received.append(raw.decode().replace(SOH, "|"))
                    return split(raw)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError("nothing more received in time")
            self.sock.settimeout(remaining)
            try:
                chunk = self.sock.recv(65536)
            except TimeoutError:
                raise AssertionError("nothing more received in time") from None
            except ConnectionError:
                return None
            if not chunk:
                return None
            self.buffer += chunk

    def expect(self, spec: str) -> None:
        wanted = [f for f in spec.split("|") if f]
        wants_heartbeat = "35=0" in wanted
        deadline = time.monotonic() + EXPECT_TIMEOUT_S
        while True:
            message = self._message(deadline)
            assert message is not None, f"the acceptor disconnected; expected {spec}"
            values = dict(reversed(message))  # the first occurrence of each tag wins
            if values.get("35") == "0" and not wants_heartbeat:
                continue
            break
        for item in wanted:
            if "~" in item and ("=" not in item or item.index("~") < item.index("=")):
                tag, _, text = item.partition("~")
                assert text in values.get(tag, ""), f"tag {tag} should contain {text!r}: {values.get(tag)!r}"
            else:
                tag, _, value = item.partition("=")
                assert values.get(tag) == value, f"tag {tag} should be {value!r}, got {values.get(tag)!r}"

    def expect_disconnect(self) -> None:
        deadline = time.monotonic() + EXPECT_TIMEOUT_S
        while self.sock is not None:
            message = self._message(deadline)
            if message is None:
                self.close()
                return
            kinds = dict(message).get("35")
            assert kinds in ("0", "1", "5"), f"expected the disconnect, got message type {kinds}"

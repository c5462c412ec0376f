"""One line when Kafka goes away, one when it is back, instead of hundreds a second.

While the broker is down every Kafka client of a worker (Faust's consumer and producer, the
executor's own consumer) retries on its own: connect, metadata, fetch, heartbeat, produce. Each
retry logs an error, and a worker wrote about 400 lines a second during a 15 s outage (issue
#18), burying anything else that happened. Retrying is right (the clients resume by themselves
once the broker answers); the lines are not.

:class:`KafkaOutageFilter` sits on the root logger's handlers. On the first connection-class
record from a Kafka client a probe thread asks the broker for its API versions. If it answers,
the record goes out as it was. If not, the log says "Kafka unreachable since …" and the clients'
records are held back (counted) while the probe asks again once a second; when it answers the filter says "Kafka reachable again after N s (M lines held back)", once, and keeps
holding the clients' stragglers for a short grace while they reconnect and rejoin their groups.
A reminder goes out at most every ``reminder_s`` while the broker stays away.
"""

from __future__ import annotations

import logging
import socket
import struct
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence

log = logging.getLogger("copytrader.kafka")

#: Loggers whose connection-class records are coalesced (prefix match on the record's name).
CLIENT_LOGGERS = (
    "aiokafka",
    "faust",
    "mode",
    "copytrader.agents.execution.intent_consumer",
    "copytrader.agents.fanout.signal_consumer",
)
#: Fragments of what a Kafka client logs when it cannot reach a broker or lost its coordinator.
CONNECTION_MARKERS = (
    "unable connect to node",
    "unable to update metadata",
    "unable to request metadata",
    "connect call failed",
    "nodenotreadyerror",
    "kafkaconnectionerror",
    "connection at",
    "requesttimedouterror",
    "group coordinator request failed",
    "coordinator dead",
    "coordinatornotavailable",
    "notcoordinator",
    "heartbeat session expired",
    "heartbeat failed",
    "heartbeat send request failed",
    "error sending heartbeatrequest",
    "failed fetch messages",
    "got error produce response",
    "orders.requests fetch failed",
    "trade.signals fetch failed",
    "kafkatimeouterror",
)
OUTAGE_ATTRIBUTE = "kafka_outage"  # set on this module's own records: never held back
VERDICT_ATTRIBUTE = "kafka_outage_verdict"  # one decision per record, however many handlers

Probe = Callable[[], bool]
Clock = Callable[[], float]


def is_connection_noise(record: logging.LogRecord) -> bool:
    """A Kafka client's warning or error about an unreachable broker or a lost coordinator."""
    if record.levelno < logging.WARNING or not record.name.startswith(CLIENT_LOGGERS):
        return False
    text = record.getMessage()
    if record.exc_info and record.exc_info[1] is not None:
        text += f" {type(record.exc_info[1]).__name__} {record.exc_info[1]}"
    lowered = text.lower()
    return any(marker in lowered for marker in CONNECTION_MARKERS)


def kafka_answers(servers: Sequence[str], timeout: float = 1.0) -> bool:
    """True when some bootstrap server answers an ApiVersions request (v0): the broker serves,
    which an open port alone does not prove (a starting broker listens before it answers)."""
    client_id = b"copytrader-probe"
    body = struct.pack(">hhih", 18, 0, 7, len(client_id)) + client_id
    for server in servers:
        host, _, port = server.rpartition(":")
        try:
            with socket.create_connection((host or "127.0.0.1", int(port)), timeout=timeout) as sock:
                sock.settimeout(timeout)
                sock.sendall(struct.pack(">i", len(body)) + body)
                header = _read_exactly(sock, 10)  # size, correlation id, error code
                size, correlation, error = struct.unpack(">iih", header)
                if correlation == 7 and error == 0 and size >= 6:
                    return True
        except (OSError, ValueError, struct.error):
            continue
    return False


def _read_exactly(sock: socket.socket, count: int) -> bytes:
    data = b""
    while len(data) < count:
        chunk = sock.recv(count - len(data))
        if not chunk:
            raise OSError("connection closed before the answer")
        data += chunk
    return data


class KafkaOutageFilter(logging.Filter):
    """Coalesces Kafka clients' connection errors into outage and recovery announcements.

    A connection-class record is held while the probe asks the broker: if it answers (a
    coordinator moving, a rebalance, a fresh cluster creating its offsets topic) the record is
    let through as it was, since the broker is fine; if not, the outage is announced and the
    clients' records are held back until the broker answers again.

    Thread-safe: Faust's consumer runs in a thread of its own and logs from there. ``probe``,
    ``clock`` and ``start_thread`` are parameters so the tests can drive it step by step.
    """

    def __init__(
        self,
        probe: Probe,
        *,
        probe_interval_s: float = 1.0,
        reminder_s: float = 30.0,
        grace_s: float = 10.0,
        clock: Clock = time.time,
        start_thread: bool = True,
    ) -> None:
        super().__init__()
        self.probe = probe
        self.probe_interval_s = probe_interval_s
        self.reminder_s = reminder_s
        self.grace_s = grace_s
        self.clock = clock
        self.start_thread = start_thread
        self.suspect: logging.LogRecord | None = None  # the first noisy record, while probing
        self.suspect_since: float | None = None
        self.down_since: float | None = None
        self.held_back = 0
        self.held_by_logger: Counter[str] = Counter()
        self.outages = 0
        self._last_said = 0.0
        self._grace_until = 0.0
        self._lock = threading.Lock()
        self._stopped = threading.Event()

    # -- the filter -------------------------------------------------------------------------
    def filter(self, record: logging.LogRecord) -> bool:
        verdict = record.__dict__.get(VERDICT_ATTRIBUTE)
        if verdict is not None:  # a second handler with this filter: decided already
            return bool(verdict)
        passed = self._decide(record)
        record.__dict__[VERDICT_ATTRIBUTE] = passed
        return passed

    def _decide(self, record: logging.LogRecord) -> bool:
        if getattr(record, OUTAGE_ATTRIBUTE, False) or not is_connection_noise(record):
            return True
        with self._lock:
            now = self.clock()
            if self.down_since is not None or self.suspect is not None or now < self._grace_until:
                self.held_back += 1
                self.held_by_logger[record.name] += 1
                return False
            self.suspect, self.suspect_since = record, now
        if self.start_thread:
            threading.Thread(target=self._watch, name="kafka-outage-probe", daemon=True).start()
        return False

    # -- the probe --------------------------------------------------------------------------
    def check(self) -> bool:
        """One probe step (the thread's, each interval): True when there is nothing to watch."""
        with self._lock:
            suspect, since, down = self.suspect, self.suspect_since, self.down_since
        if suspect is None and down is None:
            return True
        answers = self.probe()
        now = self.clock()
        if suspect is not None and since is not None:
            if answers:  # a false alarm: the record goes out as it was
                with self._lock:
                    self.suspect = self.suspect_since = None
                    self.held_back = 0
                    self.held_by_logger.clear()
                setattr(suspect, OUTAGE_ATTRIBUTE, True)
                suspect.__dict__.pop(VERDICT_ATTRIBUTE, None)
                logging.getLogger(suspect.name).handle(suspect)
                return True
            with self._lock:
                self.suspect = self.suspect_since = None
                self.down_since = since
                self._last_said = now
                self.outages += 1
            log.warning(
                "Kafka unreachable since %s (%s); holding back the clients' connection errors until it answers",
                time.strftime("%H:%M:%S", time.localtime(since)),
                suspect.getMessage()[:200],
                extra={OUTAGE_ATTRIBUTE: True},
            )
            return False
        assert down is not None
        if answers:
            with self._lock:
                held, self.held_back = self.held_back, 0
                sources = ", ".join(f"{name} {count}" for name, count in self.held_by_logger.most_common(3))
                self.held_by_logger.clear()
                self.down_since = None
                self._grace_until = now + self.grace_s
            log.warning(
                "Kafka reachable again after %.1f s (%d connection error lines held back%s)",
                now - down,
                held,
                f": {sources}" if sources else "",
                extra={OUTAGE_ATTRIBUTE: True},
            )
            return True
        if now - self._last_said >= self.reminder_s:
            self._last_said = now
            log.warning(
                "Kafka still unreachable after %.0f s (%d connection error lines held back so far)",
                now - down,
                self.held_back,
                extra={OUTAGE_ATTRIBUTE: True},
            )
        return False

    def _watch(self) -> None:
        while True:
            try:
                if self.check():
                    return
            except Exception:  # noqa: BLE001 - a probe bug must not end the announcements
                log.exception("Kafka probe failed", extra={OUTAGE_ATTRIBUTE: True})
            if self._stopped.wait(self.probe_interval_s):
                return

    def close(self) -> None:
        self._stopped.set()


def install(
    bootstrap_servers: str,
    logger: logging.Logger | None = None,
    *,
    reminder_s: float = 30.0,
    grace_s: float = 10.0,
    probe_interval_s: float = 1.0,
) -> KafkaOutageFilter:
    """Put one :class:`KafkaOutageFilter` on every handler of ``logger`` (the root by default);
    a second call replaces the first's filter rather than stacking another."""
    servers = [s.strip() for s in bootstrap_servers.split(",") if s.strip()]
    outage = KafkaOutageFilter(
        lambda: kafka_answers(servers), reminder_s=reminder_s, grace_s=grace_s, probe_interval_s=probe_interval_s
    )
    target = logger or logging.getLogger()
    for handler in target.handlers:
        for old in [f for f in handler.filters if isinstance(f, KafkaOutageFilter)]:
            handler.removeFilter(old)
            old.close()
        handler.addFilter(outage)
    return outage


__all__ = ["KafkaOutageFilter", "install", "is_connection_noise", "kafka_answers"]

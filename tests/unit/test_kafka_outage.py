"""The Kafka outage filter: one line when the broker goes, one when it is back (issue #18)."""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Iterator
from types import SimpleNamespace

import pytest
from aiokafka import AIOKafkaConsumer
from faust.transport.drivers import aiokafka as faust_aiokafka
from yarl import URL

from copytrader.agents.shared import aiokafka_internals, kafka_outage
from copytrader.agents.shared.kafka_outage import KafkaOutageFilter, is_connection_noise, kafka_answers
from copytrader.app.worker import CopyTraderWorker


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


class Probe:
    def __init__(self) -> None:
        self.answers = False
        self.calls = 0

    def __call__(self) -> bool:
        self.calls += 1
        return self.answers


class Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


@pytest.fixture
def setup() -> Iterator[tuple[KafkaOutageFilter, Probe, Clock, Collect]]:
    """A root-like logger tree: the filter on the handler, as ``install`` puts it on the root's."""
    probe, clock, collect = Probe(), Clock(), Collect()
    outage = KafkaOutageFilter(probe, clock=clock, reminder_s=30.0, grace_s=10.0, start_thread=False)
    collect.addFilter(outage)
    root = logging.getLogger()
    root.addHandler(collect)
    yield outage, probe, clock, collect
    root.removeHandler(collect)


def connection_error(n: int = 0) -> None:
    logging.getLogger("aiokafka.conn").error(
        "Unable connect to node with id 1: [Errno 111] Connect call failed ('127.0.0.1', %d)", 9000 + n
    )


def test_an_outage_is_announced_once_and_its_end_once_with_its_length(setup: tuple) -> None:
    outage, probe, clock, collect = setup
    for n in range(500):
        connection_error(n)
        logging.getLogger("aiokafka.consumer.fetcher").error("Failed fetch messages from 1: NodeNotReadyError")
    assert collect.lines == []  # held while the probe asks
    outage.check()
    assert len(collect.lines) == 1
    assert collect.lines[0].startswith("Kafka unreachable since")
    assert "Unable connect to node" in collect.lines[0]
    for _ in range(14):
        clock.now += 1.0
        connection_error()
        assert outage.check() is False
    probe.answers = True
    clock.now += 1.0
    assert outage.check() is True
    assert len(collect.lines) == 2
    assert collect.lines[1] == (
        "Kafka reachable again after 15.0 s (1013 connection error lines held back:"
        " aiokafka.conn 513, aiokafka.consumer.fetcher 500)"
    )


def test_a_long_outage_gets_a_reminder_at_most_every_reminder_interval(setup: tuple) -> None:
    outage, _probe, clock, collect = setup
    connection_error()
    outage.check()
    for _ in range(95):  # 95 s of probing, once a second
        clock.now += 1.0
        connection_error()
        outage.check()
    reminders = [line for line in collect.lines if line.startswith("Kafka still unreachable")]
    assert len(reminders) == 3  # at 30, 60 and 90 s
    assert reminders[0].startswith("Kafka still unreachable after 30 s")


def test_a_record_while_the_broker_answers_goes_out_as_it_was(setup: tuple) -> None:
    outage, probe, _clock, collect = setup
    probe.answers = True
    logging.getLogger("aiokafka.consumer.group_coordinator").warning(
        "Heartbeat failed for group g because it is rebalancing"
    )
    assert collect.lines == []
    assert outage.check() is True
    assert collect.lines == ["Heartbeat failed for group g because it is rebalancing"]
    assert outage.outages == 0


def test_stragglers_right_after_the_return_are_held_then_a_new_outage_is_announced(setup: tuple) -> None:
    outage, probe, clock, collect = setup
    connection_error()
    outage.check()
    probe.answers = True
    clock.now += 5.0
    outage.check()
    assert len(collect.lines) == 2
    clock.now += 2.0
    connection_error()  # a consumer still reconnecting, within the grace
    assert outage.suspect is None and len(collect.lines) == 2
    clock.now += 20.0
    probe.answers = False
    connection_error()
    outage.check()
    assert collect.lines[-1].startswith("Kafka unreachable since")
    assert outage.outages == 2


def test_other_records_pass_untouched(setup: tuple) -> None:
    _outage, _probe, _clock, collect = setup
    logging.getLogger("copytrader.agents.execution.router").error("broker rejected the order")
    logging.getLogger("aiokafka.consumer").error("some other aiokafka trouble")
    assert collect.lines == ["broker rejected the order", "some other aiokafka trouble"]


def test_two_handlers_count_a_record_once(setup: tuple) -> None:
    outage, _probe, _clock, _collect = setup
    second = Collect()
    second.addFilter(outage)
    logging.getLogger().addHandler(second)
    try:
        connection_error()
        outage.check()
        connection_error()
        connection_error()
    finally:
        logging.getLogger().removeHandler(second)
    assert outage.held_back == 2
    assert len(second.lines) == 1  # the announcement, on both handlers


@pytest.mark.parametrize(
    ("name", "level", "message", "noisy"),
    [
        ("aiokafka.conn", logging.ERROR, "Unable connect to node with id 1: Connect call failed", True),
        ("aiokafka.client", logging.ERROR, "Unable to update metadata from [1]", True),
        ("aiokafka.producer.sender", logging.WARNING, "Got error produce response: NodeNotReadyError", True),
        (
            "aiokafka.consumer.group_coordinator",
            logging.ERROR,
            "Heartbeat session expired - marking coordinator dead",
            True,
        ),
        ("copytrader.agents.execution.intent_consumer", logging.WARNING, "orders.requests fetch failed: x", True),
        ("aiokafka.conn", logging.INFO, "Unable connect to node with id 1", False),  # below warning
        ("copytrader.agents.execution.router", logging.ERROR, "Unable connect to node", False),  # not a client
        ("faust.transport", logging.ERROR, "Unknown topic", False),
    ],
)
def test_what_counts_as_connection_noise(name: str, level: int, message: str, noisy: bool) -> None:
    record = logging.LogRecord(name, level, __file__, 1, message, None, None)
    assert is_connection_noise(record) is noisy


def test_the_probe_sees_a_closed_port_and_an_answering_broker() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = sock.getsockname()[1]
    assert kafka_answers([f"127.0.0.1:{closed}"], timeout=0.5) is False
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()

    def answer() -> None:  # an ApiVersions answer: size 6, correlation id 7, error 0
        connection, _ = server.accept()
        with connection:
            connection.recv(64)
            connection.sendall(b"\x00\x00\x00\x06\x00\x00\x00\x07\x00\x00")

    thread = threading.Thread(target=answer, daemon=True)
    thread.start()
    try:
        assert kafka_answers([f"127.0.0.1:{closed}", f"127.0.0.1:{server.getsockname()[1]}"], timeout=2.0)
    finally:
        thread.join(5)
        server.close()


def test_install_puts_one_filter_on_each_handler_and_replaces_an_old_one() -> None:
    logger = logging.getLogger("test-kafka-outage-install")
    handler = Collect()
    logger.addHandler(handler)
    try:
        first = kafka_outage.install("127.0.0.1:1", logger)
        second = kafka_outage.install("127.0.0.1:1", logger)
        assert handler.filters == [second] and first is not second
    finally:
        logger.removeHandler(handler)


def test_the_worker_puts_the_filter_on_the_root_handlers_watching_its_broker() -> None:
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    root.handlers = [logging.StreamHandler()]
    try:
        worker = CopyTraderWorker.__new__(CopyTraderWorker)  # only the logging hook is exercised
        worker.spinner = None
        worker.app = SimpleNamespace(conf=SimpleNamespace(broker=[URL("kafka://127.0.0.1:19092")]))  # type: ignore[assignment]
        worker.on_setup_root_logger(root, logging.WARN)
        [outage] = [f for f in root.handlers[0].filters if isinstance(f, KafkaOutageFilter)]
        assert isinstance(outage, KafkaOutageFilter)
    finally:
        root.setLevel(level)
        root.handlers = handlers


async def test_the_retry_backoff_reaches_fausts_worker_consumer_and_producer(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(aiokafka_internals, "_retry_backoff_ms", aiokafka_internals._retry_backoff_ms)
    monkeypatch.setattr(faust_aiokafka.Producer, "_settings_extra", faust_aiokafka.Producer._settings_extra)
    monkeypatch.setattr(
        faust_aiokafka.AIOKafkaConsumerThread,
        "_create_worker_consumer",
        faust_aiokafka.AIOKafkaConsumerThread._create_worker_consumer,
    )
    consumer = AIOKafkaConsumer(bootstrap_servers="127.0.0.1:1", group_id=None)  # built, never started
    assert aiokafka_internals.retry_backoff_of(consumer) == (100, 0.1)  # aiokafka's default
    monkeypatch.setattr(aiokafka_internals, "_original", lambda thread, transport: consumer)
    aiokafka_internals.apply_retry_backoff(700)
    assert aiokafka_internals._create_worker_consumer(None, None) is consumer  # what Faust calls
    assert aiokafka_internals.retry_backoff_of(consumer) == (700, 0.7)
    producer = SimpleNamespace(app=SimpleNamespace(in_transaction=False))
    assert faust_aiokafka.Producer._settings_extra(producer) == {"retry_backoff_ms": 700}  # type: ignore[arg-type]
    producer.app.in_transaction = True  # Faust's own extras survive
    assert faust_aiokafka.Producer._settings_extra(producer) == {  # type: ignore[arg-type]
        "retry_backoff_ms": 700,
        "acks": "all",
        "enable_idempotence": True,
    }


async def test_the_consumers_faust_does_not_build_back_off_too(monkeypatch: pytest.MonkeyPatch) -> None:
    """The executor's intent consumer and the copy.controls feed pass the same backoff."""
    from copytrader.agents.execution.intent_consumer import DirectIntentConsumer

    monkeypatch.setattr(aiokafka_internals, "_retry_backoff_ms", 900)
    built: list[dict[str, object]] = []

    class Recording:
        def __init__(self, *topics: str, **options: object) -> None:
            built.append(options)
            raise RuntimeError("stop here: only the options matter")

    import copytrader.agents.shared.controls_feed as feed_module
    import copytrader.agents.shared.direct_consumer as direct_module  # both direct consumers build here

    monkeypatch.setattr(direct_module, "AIOKafkaConsumer", Recording)
    monkeypatch.setattr(feed_module, "AIOKafkaConsumer", Recording)
    consumer = DirectIntentConsumer.__new__(DirectIntentConsumer)
    consumer.adopt_offsets_from = None
    consumer._consumer_options = {"bootstrap_servers": "127.0.0.1:1"}
    with pytest.raises(RuntimeError, match="stop here"):
        await consumer.start()
    feed = feed_module.ControlsFeed("127.0.0.1:1", "", lambda record: None)
    with pytest.raises(RuntimeError, match="stop here"):
        await feed._consume()
    assert [options["retry_backoff_ms"] for options in built] == [900, 900]

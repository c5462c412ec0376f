"""A worker facing a Kafka broker that goes away: it says so once, says once that it is back,
and writes a bounded number of lines in between (issue #18, item 2).

The broker is this test's own (the machine's shared broker is never cut), behind a TCP proxy
that the broker advertises as its address, so every client of the worker goes through the proxy.
Cutting the proxy (closing its port and every connection) is the outage, without the minute a
JVM takes to stop and start again on a busy machine.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from ci_skips import require
from waiting import wait_until

from copytrader.app.kafka_local import KafkaError, LocalKafka, private_kafka
from copytrader.core.config import parse_config
from copytrader.core.topics import ensure_topics
from copytrader.demo.observer import RunObserver
from copytrader.demo.runner import free_port, start_worker

pytestmark = [pytest.mark.kafka]

OUTAGE_S = 5.0


class CuttableProxy:
    """Forwards a local port to the broker; ``cut()`` drops the port and every connection."""

    def __init__(self, port: int, target_port: int) -> None:
        self.port = port
        self.target_port = target_port
        self.server: asyncio.Server | None = None
        self.writers: set[asyncio.StreamWriter] = set()

    async def open(self) -> None:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)

    async def cut(self) -> None:
        assert self.server is not None
        self.server.close()
        for writer in list(self.writers):
            writer.transport.abort()
        self.writers.clear()
        await self.server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.transport.abort()
            return
        self.writers |= {writer, up_writer}
        await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError, asyncio.IncompleteReadError, ConnectionError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        writer.transport.abort()
        self.writers.discard(writer)


@pytest.fixture
async def proxied_kafka(tmp_path: Path) -> AsyncIterator[tuple[CuttableProxy, LocalKafka]]:
    jars = (LocalKafka().libs / ".complete").exists() or shutil.which("mvn")
    require("kafka", "a private broker runs Kafka's jars (Maven) on Java", available=shutil.which("java") and jars)
    proxy_port = free_port()
    kafka = private_kafka(tmp_path / "kafka", advertised_port=proxy_port)
    proxy = CuttableProxy(proxy_port, kafka.port)
    await proxy.open()
    try:
        await asyncio.to_thread(kafka.start)
    except KafkaError:
        await asyncio.to_thread(kafka.stop)
        raise
    try:
        yield proxy, kafka
    finally:
        await asyncio.to_thread(kafka.stop, 10.0)
        if proxy.server is not None:
            proxy.server.close()


def lines(path: Path) -> list[str]:
    return path.read_text(errors="replace").splitlines()


async def test_a_worker_announces_an_outage_once_and_its_end_once(
    proxied_kafka: tuple[CuttableProxy, LocalKafka], tmp_path: Path
) -> None:
    proxy, _kafka = proxied_kafka
    bootstrap = f"127.0.0.1:{proxy.port}"
    prefix = f"outage-{int(time.time() * 1000) % 10**9}."
    await ensure_topics(bootstrap, prefix)
    env = {
        "COPYTRADER_TOPIC_PREFIX": prefix,
        "COPYTRADER_DATA_DIR": str(tmp_path),
        "COPYTRADER_KAFKA_BROKER": f"kafka://{bootstrap}",
    }
    worker = start_worker("back", "execute", tmp_path, env)
    empty = parse_config({"sessions": [], "accounts": [], "copy_groups": []}, env={})
    observer = RunObserver(bootstrap, prefix, empty)
    await observer.start()
    try:
        tag = f":{worker.process.pid}:"

        def beats() -> list[int]:
            return [b.sequence for w, b in observer.seen.heartbeats.items() if tag in w and b.assigned_partitions]

        await wait_until(beats, timeout_s=60, what="the worker's heartbeat with its partitions")
        before = len(lines(worker.log))
        await proxy.cut()
        await wait_until(
            lambda: any("Kafka unreachable since" in line for line in lines(worker.log)),
            timeout_s=20,
            what="the outage announced",
        )
        await asyncio.sleep(OUTAGE_S)  # the outage itself: the clients retry all along
        during = lines(worker.log)[before:]
        await proxy.open()
        await wait_until(
            lambda: any("Kafka reachable again after" in line for line in lines(worker.log)),
            timeout_s=30,
            what="the return announced",
        )
        last = max(beats())
        await wait_until(lambda: max(beats()) > last, timeout_s=30, what="a heartbeat after the return")
    finally:
        await observer.stop()
        await asyncio.to_thread(worker.stop, 10.0)
    written = lines(worker.log)[before:]
    assert sum("Kafka unreachable since" in line for line in written) == 1, written
    assert sum("Kafka reachable again after" in line for line in written) == 1, written
    # Without the filter a worker wrote 70 to 400 lines a second here; with it, the announcement
    # and nothing else while the broker is away.
    assert len(during) <= 3, during
    back = next(line for line in written if "Kafka reachable again after" in line)
    seconds = float(back.split("after ")[1].split(" s")[0])
    assert OUTAGE_S <= seconds < OUTAGE_S + 30, back

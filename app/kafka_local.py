"""A local single-node Apache Kafka (KRaft) for the demo, the tests and development.

The broker's jars come from the Maven registry once (``kafka/pom.xml``, cached under
``~/.cache/copytrader``) and run on the machine's Java 17: no Docker, no tarball download.
A user with a cluster never needs this: they set ``COPYTRADER_KAFKA_BROKER``.
"""

from __future__ import annotations

import asyncio
import base64
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from aiokafka.admin import AIOKafkaAdminClient

PACKAGE_DIR = Path(__file__).resolve().parent.parent / "kafka"
KAFKA_VERSION = "3.9.2"
SERVER_PROPERTIES = """\
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@{host}:{controller_port}
listeners=PLAINTEXT://{host}:{port},CONTROLLER://{host}:{controller_port}
advertised.listeners=PLAINTEXT://{host}:{advertised_port}
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs={log_dirs}
num.partitions=1
auto.create.topics.enable=true
offsets.topic.replication.factor=1
offsets.topic.num.partitions=3
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=1
group.initial.rebalance.delay.ms=0
log.retention.hours=24
# Each new segment's offset and time index files are created this big (sparse) and mapped. The
# first index entry written into Kafka's default 10 MiB took about 5 ms per partition on an ext4
# disk, inside the request: a fresh topic's produce to ten partitions stalled 40-60 ms once they
# passed 4 KiB, the demo's first signals (docs/benchmarks.md, "A new partition's first index
# entry"). At 64 KiB that is under 1 ms. Segments roll at 16 MiB, before such an index fills
# (at most 4,098 entries, one per 4 KiB appended, of the time index's 5,461): Kafka rebuilds a
# segment's index on recovery and refuses to start when the entries do not fit ("Attempt to
# append to a full time index"), and a bound every segment stays under keeps index_bytes_for()
# at 64 KiB. A data directory written with larger segments (a broker from before this setting)
# gets an index that holds them: index_bytes_for().
log.index.interval.bytes={index_interval}
log.index.size.max.bytes={index_bytes}
log.segment.bytes={segment_bytes}
"""
#: ``log.index.size.max.bytes`` of the local broker (see the comment in SERVER_PROPERTIES).
INDEX_BYTES = 64 * 1024
#: ``log.segment.bytes``: a segment rolls before an index of INDEX_BYTES could fill.
SEGMENT_BYTES = 16 * 1024 * 1024
#: ``log.index.interval.bytes`` (Kafka's default, pinned: the sizes above depend on it).
INDEX_INTERVAL_BYTES = 4096
#: The largest index entry: a time-index entry (8-byte timestamp, 4-byte relative offset).
INDEX_ENTRY_BYTES = 12


def index_entries(segment_bytes: int) -> int:
    """The most index entries a segment of this size can need: Kafka adds one each time more
    than ``index.interval.bytes`` were appended since the last, and recovery may add one more
    (the segment's largest timestamp)."""
    return segment_bytes // INDEX_INTERVAL_BYTES + 2


def index_bytes_for(log_dirs: Path) -> int:
    """INDEX_BYTES, or more when a segment already in ``log_dirs`` needs it.

    Kafka resizes the active segment's index files to this bound when it loads them, and a
    broker whose data directory holds a segment written with larger indexes (a local broker
    from before the bound, with 1 GiB segments) would refuse to start ("newPosition > limit").
    Such a segment rolls at its next append (SEGMENT_BYTES), and once retention has removed
    it, the bound returns to INDEX_BYTES."""
    largest = max((log.stat().st_size for log in log_dirs.glob("*/*.log")), default=0)
    needed = index_entries(largest) * INDEX_ENTRY_BYTES
    return max(INDEX_BYTES, -(-needed // INDEX_BYTES) * INDEX_BYTES)


# Kafka's own start script sets these (kafka-run-class.sh, KAFKA_JVM_PERFORMANCE_OPTS).
JVM_PERFORMANCE_OPTS = (
    "-server -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35"
    " -XX:+ExplicitGCInvokesConcurrent -XX:MaxInlineLevel=15 -Djava.awt.headless=true"
)


class KafkaError(RuntimeError):
    """The local broker could not be prepared, started or stopped; the message says why."""


@dataclass(frozen=True, slots=True)
class LocalKafka:
    host: str = "127.0.0.1"
    port: int = 9092
    home: Path = Path("var/kafka")
    cache: Path = Path.home() / ".cache" / "copytrader"
    heap: str = "512m"
    # Where clients are told to connect (a TCP proxy in front of the broker, in outage tests).
    advertised_port: int | None = None

    @property
    def libs(self) -> Path:
        return self.cache / f"kafka-libs-{KAFKA_VERSION}"

    @property
    def pid_file(self) -> Path:
        return self.home / "kafka.pid"

    @property
    def log_file(self) -> Path:
        return self.home / "kafka.log"

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    # -- jars ---------------------------------------------------------------------------
    def resolve_jars(self) -> Path:
        """Fetch the broker's jars through Maven once; later calls reuse the cache."""
        marker = self.libs / ".complete"
        if marker.exists():
            return self.libs
        mvn = shutil.which("mvn")
        if mvn is None:
            raise KafkaError("Maven (mvn) is not installed: it fetches Kafka's jars (apt-get install maven)")
        self.libs.mkdir(parents=True, exist_ok=True)
        result = subprocess.run(
            [
                mvn,
                "-q",
                "-B",
                "-f",
                str(PACKAGE_DIR / "pom.xml"),
                "dependency:copy-dependencies",
                "-DincludeScope=runtime",
                f"-DoutputDirectory={self.libs}",
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise KafkaError(
                f"Maven could not fetch Kafka {KAFKA_VERSION}:\n{result.stdout[-2000:]}{result.stderr[-2000:]}"
            )
        marker.touch()
        return self.libs

    def jvm_options(self) -> list[str]:
        """Heap and collector flags, overridable with the variables of Kafka's own start scripts."""
        heap = os.environ.get("KAFKA_HEAP_OPTS") or f"-Xms{self.heap} -Xmx{self.heap}"
        performance = os.environ.get("KAFKA_JVM_PERFORMANCE_OPTS") or JVM_PERFORMANCE_OPTS
        return [*heap.split(), *performance.split(), *os.environ.get("KAFKA_OPTS", "").split()]

    # -- lifecycle ------------------------------------------------------------------------
    def serving(self) -> bool:
        try:
            with socket.create_connection((self.host, self.port), timeout=0.5):
                return True
        except OSError:
            return False

    def pid(self) -> int | None:
        try:
            pid = int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None
        try:
            os.kill(pid, 0)
        except OSError:
            return None
        return pid

    def server_properties(self, log_dirs: Path) -> str:
        """The broker's ``server.properties``, for its ports and data directory."""
        return SERVER_PROPERTIES.format(
            host=self.host,
            port=self.port,
            advertised_port=self.advertised_port or self.port,
            controller_port=self.port + 1,
            log_dirs=log_dirs,
            index_interval=INDEX_INTERVAL_BYTES,
            index_bytes=index_bytes_for(log_dirs),
            segment_bytes=SEGMENT_BYTES,
        )

    def start(self, timeout: float = 120.0) -> str:
        """Start the broker (format storage on first start) and wait until it answers."""
        if self.serving():
            if self.pid() is None:
                return f"a Kafka broker already serves {self.bootstrap} (not started by copytrader)"
            return f"already running on {self.bootstrap} (pid {self.pid()})"
        java = shutil.which("java")
        if java is None:
            raise KafkaError("Java 17 is not installed: the Kafka broker runs on it")
        libs = self.resolve_jars()
        self.home.mkdir(parents=True, exist_ok=True)
        data = self.home / "data"
        props = self.home / "server.properties"
        props.write_text(self.server_properties(data))
        classpath = f"{libs}/*"
        jvm = [*self.jvm_options(), f"-Dlog4j.configuration=file:{PACKAGE_DIR / 'log4j.properties'}"]
        if not (data / "meta.properties").exists():
            formatted = subprocess.run(
                [
                    java,
                    *jvm,
                    "-cp",
                    classpath,
                    "kafka.tools.StorageTool",
                    "format",
                    "-t",
                    _cluster_id(),
                    "-c",
                    str(props),
                    "--ignore-formatted",
                ],
                capture_output=True,
                text=True,
                check=False,
            )
            if formatted.returncode != 0:
                raise KafkaError(f"formatting Kafka storage failed: {formatted.stderr[-2000:]}")
        with open(self.log_file, "ab") as log:
            process = subprocess.Popen(
                [java, *jvm, "-cp", classpath, "kafka.Kafka", str(props)],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        self.pid_file.write_text(str(process.pid))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise KafkaError(f"Kafka exited with {process.returncode}; see {self.log_file}")
            if self.serving() and asyncio.run(self._answers()):
                return f"started on {self.bootstrap} (pid {process.pid})"
            time.sleep(0.5)
        raise KafkaError(f"Kafka did not answer within {timeout:.0f}s; see {self.log_file}")

    async def _answers(self) -> bool:
        admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap, request_timeout_ms=3000)
        try:
            await admin.start()
            await admin.list_topics()
            return True
        except Exception:  # noqa: BLE001 - any failure means "not ready yet"
            return False
        finally:
            await admin.close()

    def stop(self, timeout: float = 30.0) -> str:
        pid = self.pid()
        if pid is None:
            return "not running (no broker started by copytrader)"
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.pid() is None or _is_zombie(pid):
                self.pid_file.unlink(missing_ok=True)
                return f"stopped (pid {pid})"
            time.sleep(0.2)
        os.kill(pid, signal.SIGKILL)
        self.pid_file.unlink(missing_ok=True)
        return f"killed after {timeout:.0f}s (pid {pid})"

    def status(self) -> str:
        pid = self.pid()
        serving = self.serving()
        if pid and serving:
            return f"running on {self.bootstrap} (pid {pid})"
        if serving:
            return f"a broker serves {self.bootstrap} (not started by copytrader)"
        if pid:
            return f"process {pid} alive but not serving {self.bootstrap} yet"
        return "stopped"


def _cluster_id() -> str:
    """A random KRaft cluster id; not one starting with "-", which the storage tool reads as an
    option ("--cluster-id: expected one argument"), one format in 64."""
    while True:
        candidate = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not candidate.startswith("-"):
            return candidate


def _is_zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(")")[-1].split()[0] == "Z"
    except OSError:
        return sys.platform != "linux"


def private_kafka(home: Path, heap: str = "384m", advertised_port: int | None = None) -> LocalKafka:
    """A broker of one's own on free ports (broker, and the next one for its controller), with
    its data under ``home``: for benchmarks and tests that stop a broker, never the shared one."""
    while True:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        with socket.socket() as controller:
            try:
                controller.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
        return LocalKafka(port=port, home=home, heap=heap, advertised_port=advertised_port)


def local_kafka_for(bootstrap: str, data_dir: Path) -> LocalKafka:
    host, _, port = bootstrap.split(",")[0].rpartition(":")
    return LocalKafka(host=host or "127.0.0.1", port=int(port or 9092), home=data_dir / "kafka")

"""Runs one demo/benchmark scenario end to end on real Kafka.

Starts (or reuses) the local broker, writes a generated config, starts the workers as separate
processes (``front``: ingest + fan-out + the scripted leader; ``back``: executor + tracker), waits
until both have partitions, lets the leader trade, and has the observer account for every copy.
Each run uses fresh topics (a per-run prefix) so nothing from an earlier run can leak in.
"""

from __future__ import annotations

import asyncio
import ctypes
import fcntl
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import orjson
import yaml

from ..app.kafka_local import local_kafka_for
from ..core.config import parse_config
from ..core.records import Execution
from ..core.settings import Settings
from ..core.topics import delete_run_topics, ensure_topics
from .broker_warmup import warm_broker_quietly
from .calibration import broker_census, calibrate
from .configgen import MARKET_TOKEN_ENV, SIMULATED, demo_config, market_data
from .costs import IDLE_WINDOW_S, CostMeter, kafka_broker_pid
from .observer import RunObserver, dumps
from .repeats import median_of, readable

# Which roles run in which process. The hot path (fan-out → executor) never shares a Kafka
# consumer with the bulk topics (executions, positions): one consumer fetches all of its
# topics through one pipeline, so thousands of execution records would queue ahead of an intent.
HOT_PATH_ROLES = {"ingest", "fanout", "execute"}
BACKGROUND_NICENESS = 10
# Three processes: the copy path (ingest + fan-out, executor) each get a process of their own;
# everything that only watches (tracker, database, dashboard and API) shares the third, which
# runs niced, so on two cores the copy path wins every contest for the CPU.
WORKER_LAYOUTS: dict[int, list[tuple[str, str]]] = {
    1: [("all", "ingest,fanout,execute,track,web")],
    2: [("front", "ingest,fanout,web"), ("back", "execute,track")],
    3: [("front", "ingest,fanout"), ("back", "execute"), ("tracker", "track,store,web")],
    # The tracker's three roles apart, so that the bench's cost per copy names which one costs.
    5: [("front", "ingest,fanout"), ("back", "execute"), ("tracker", "track"), ("store", "store"), ("web", "web")],
}
#: Most replicas that still get partitions: trade.signals has 3, orders.requests 10.
MAX_FANOUTS, MAX_EXECUTORS = 3, 10


def worker_layout(processes: int, executors: int = 1, fanouts: int = 1) -> list[tuple[str, str, str]]:
    """``(name, roles, consumer group)`` of every worker: the layout's own, then the extra
    executor and fan-out replicas in the groups of ``back`` and ``front``, as the Helm chart
    runs them (the leader watcher stays single: it runs only in ``front``)."""
    rows = [(name, roles, name) for name, roles in WORKER_LAYOUTS[processes]]
    if executors > 1 or fanouts > 1:
        if processes != 3:
            raise ValueError("--executors/--fanouts need the 3-process layout (--processes 3)")
        if not (1 <= executors <= MAX_EXECUTORS and 1 <= fanouts <= MAX_FANOUTS):
            raise ValueError(f"at most {MAX_EXECUTORS} executors and {MAX_FANOUTS} fan-outs get partitions")
        rows += [(f"back-{n}", "execute", "back") for n in range(2, executors + 1)]
        rows += [(f"fanout-{n}", "fanout", "front") for n in range(2, fanouts + 1)]
    return rows


@dataclass(slots=True)
class ScenarioOptions:
    trades: int = 50
    # Leader actions before the measured ones: their copies count for correctness (expected,
    # placed, duplicates, missing) but their latencies are reported apart, as ``warmup``.
    warmup: int = 0
    interval: float = 0.1
    platform: str = "paper"
    leader_platform: str = "paper"
    processes: int = 3
    quiet: bool = False
    keep_kafka: bool = False
    keep_running: bool = False
    # A dxLink simulator as the price source (marks and the price chart on the dashboard).
    market_data: bool = True
    # ``bench --repeat N``: each configuration N times, then the median line with its spread.
    repeat: int = 1
    # ``bench --executors N --fanouts M``: replicas in the executor and fan-out consumer groups.
    executors: int = 1
    fanouts: int = 1
    # The copy group repairs drift it finds (reconciliation's auto_correct).
    auto_correct: bool = False
    # ``bench --viewers N``: N open dashboards, subscribed to every live stream (demo/viewers.py).
    viewers: int = 0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(slots=True)
class Worker:
    name: str
    process: subprocess.Popen[bytes]
    log: Path
    web_port: int
    roles: str = ""

    def stop(self, timeout: float = 20.0) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


#: Claims on preferred ports held by this process (released when it exits): see port_or_free.
_CLAIMS: dict[int, IO[bytes]] = {}


def port_or_free(preferred: int, claims: Path | None = None) -> int:
    """The preferred port when nothing listens there and no other run of this machine claimed
    it (the dashboard at a stable URL), else any free one.

    Why the claim: between the check here and the worker's bind (seconds of imports later),
    another run started at the same moment saw the port free too, and one of the two
    dashboards then failed to start. The claim is an exclusive lock on a file named after the
    port, held until this process ends (a crash releases it too).
    """
    if preferred in _CLAIMS:  # this run's own, for a second web worker: another port
        return free_port()
    folder = claims or Path(tempfile.gettempdir())
    handle = (folder / f"copytrader-port-{preferred}.lock").open("ab")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", preferred))
    except OSError:
        handle.close()  # claimed by another run, or something else listens there
        return free_port()
    _CLAIMS[preferred] = handle
    return preferred


_PR_SET_PDEATHSIG = 1  # linux/prctl.h


def _child_setup(background: bool) -> Callable[[], None]:
    """Runs in the forked worker before exec: die with the demo, and yield the CPU if asked.

    PR_SET_PDEATHSIG makes the kernel send SIGTERM to the worker when the demo process ends,
    however it ends (SIGKILL included), so no worker outlives the run as an orphan.
    """

    def setup() -> None:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
        if background:
            os.nice(BACKGROUND_NICENESS)

    return setup


def start_worker(
    name: str, roles: str, run_dir: Path, env: dict[str, str], port: int | None = None, group: str | None = None
) -> Worker:
    """``group``: the app id suffix (consumer group) when replicas share one; default ``name``."""
    port = port or free_port()
    log = run_dir / f"worker-{name}-{int(time.time() * 1000)}.log"
    worker_env = {
        **os.environ,
        **env,
        "COPYTRADER_ROLES": roles,
        "COPYTRADER_APP_ID": f"{env['COPYTRADER_TOPIC_PREFIX'].rstrip('.')}-{group or name}",
        "COPYTRADER_WEB_PORT": str(port),
    }
    background = not HOT_PATH_ROLES & set(roles.split(","))
    # The worker that watches the leader also runs the scripted leader (``demo.worker``): the
    # paper leader's venue lives in that process. Every other worker is the product's own.
    entry = "copytrader.demo.worker" if "ingest" in roles.split(",") else "copytrader.app.cli"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", entry, "worker", "-l", "warn"],
            env=worker_env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            # The tracker/database worker yields the CPU to the copy path on a small machine
            # (what CPU requests and limits do in Kubernetes); it only ever runs behind.
            preexec_fn=_child_setup(background),  # noqa: PLW1509 - no threads yet in the child
        )
    return Worker(name, process, log, port, roles)


class Scenario:
    """One run: ``async with Scenario(...) as run: await run.trade(); run.summary()``."""

    def __init__(
        self,
        mode: str,
        followers: int,
        latency: str,
        options: ScenarioOptions,
        settings: Settings | None = None,
        config: dict[str, Any] | None = None,
    ) -> None:
        self.mode = mode
        self.followers = followers
        self.latency = latency
        self.options = options
        self.settings = settings or Settings.from_env()
        self.run_id = f"{mode}-{int(time.time() * 1000) % 10**10}"
        self.prefix = f"{self.run_id}."
        self.run_dir = self.settings.data_dir / "runs" / self.run_id
        self.config_data = config or demo_config(
            followers,
            options.platform,
            latency,
            leader_platform=options.leader_platform,
            auto_correct=options.auto_correct,
        )
        self.config = parse_config(self.config_data, env={})
        self.workers: list[Worker] = []
        self.worker_env: dict[str, str] = {}
        self.observer = RunObserver(self.settings.bootstrap_servers, self.prefix, self.config, self._print_copy)
        self.started_kafka = False
        self._warming: asyncio.Task[str] | None = None
        self.sandboxes: list[Any] = []
        self.market_env: dict[str, str] = {}
        self.costs: CostMeter | None = None
        self.broker_before_run: dict[str, int] | None = None  # topics and partitions (bench)
        self.viewers: asyncio.subprocess.Process | None = None
        self.viewer_rows: list[int] | None = None

    # -- lifecycle ------------------------------------------------------------------------
    async def __aenter__(self) -> Scenario:
        try:
            await self._start()
        except BaseException:
            await self.__aexit__(None, None, None)
            raise
        return self

    async def _start(self) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        kafka = local_kafka_for(self.settings.bootstrap_servers, self.settings.data_dir)
        if not kafka.serving():
            self._say(f"starting local Kafka: {await asyncio.to_thread(kafka.start)}")
            self.started_kafka = True
        await self._start_simulators()
        await self._start_market_data()
        config_file = self.run_dir / "config.yaml"
        config_file.write_text(yaml.safe_dump(self.config_data, sort_keys=False))
        if self.mode == "bench":
            self.broker_before_run = await broker_census(self.settings.bootstrap_servers)
        await ensure_topics(self.settings.bootstrap_servers, self.prefix)
        # A broker started just now is cold (demo/broker_warmup.py): warm it while the workers start.
        if self.started_kafka:
            self._warming = asyncio.create_task(warm_broker_quietly(self.settings.bootstrap_servers, self.prefix))
        env = {
            "COPYTRADER_CONFIG": str(config_file),
            "COPYTRADER_TOPIC_PREFIX": self.prefix,
            "COPYTRADER_DATA_DIR": str(self.settings.data_dir),
            "COPYTRADER_KAFKA_BROKER": self.settings.kafka_broker,
            "COPYTRADER_DEMO_TRADES": str(self.options.trades),
            "COPYTRADER_DEMO_WARMUP": str(self.options.warmup),
            "COPYTRADER_DEMO_INTERVAL": str(self.options.interval),
            "COPYTRADER_DEMO_GO_FILE": str(self.run_dir / "go"),
            **self.market_env,
            "COPYTRADER_DATABASE_URL": os.environ.get(
                "COPYTRADER_DATABASE_URL", f"sqlite:///{self.run_dir / 'copytrader.db'}"
            ),
        }
        if not os.environ.get("COPYTRADER_SECRET_KEY") and not os.environ.get("COPYTRADER_SECRET_KEY_FILE"):
            from ..common.crypto import ensure_key_file

            env["COPYTRADER_SECRET_KEY_FILE"] = str(ensure_key_file(self.settings.data_dir))
        self.worker_env = env
        for name, roles, group in worker_layout(self.options.processes, self.options.executors, self.options.fanouts):
            port = port_or_free(self.settings.web_port) if "web" in roles.split(",") else None
            self.workers.append(start_worker(name, roles, self.run_dir, env, port, group=group))
        await self.observer.start()
        await self._wait_ready(timeout=120.0)
        if self._warming is not None:
            self._say(await self._warming)
        await self._start_viewers()
        await self._start_cost_meter()
        self._announce_dashboard()

    async def _start_cost_meter(self) -> None:
        """Every process of the run, for CPU and memory per copy (demo/costs.py)."""
        pids = {w.name: w.process.pid for w in self.workers}
        pids["observer"] = os.getpid()
        if self.viewers is not None:
            pids["viewers"] = self.viewers.pid
        broker = kafka_broker_pid(self.settings.bootstrap_servers)
        if broker is not None:
            pids["kafka"] = broker
        prefixes = (self.prefix, f"{self.prefix.rstrip('.')}-")
        self.costs = CostMeter(pids, tuple(w.name for w in self.workers), prefixes, broker)

    def _admin_password(self) -> tuple[str, str]:
        """The dashboard's admin password, and where it comes from."""
        password = os.environ.get("COPYTRADER_ADMIN_PASSWORD")
        if password:
            return password, "COPYTRADER_ADMIN_PASSWORD"
        from ..web.auth import ensure_admin_password

        # The web worker reads the same file.
        return ensure_admin_password(self.settings.data_dir), str(self.settings.data_dir / "admin-password")

    def _announce_dashboard(self) -> None:
        web = self.web_worker()
        if web is None or self.mode != "demo":
            return
        password, where = self._admin_password()
        self._say(f"dashboard: http://127.0.0.1:{web.web_port}/  user admin, password {password} ({where})")

    async def _start_viewers(self) -> None:
        """``--viewers N``: N open dashboards in a process of their own, subscribed before the
        first leader action (the password goes in the environment, not on the command line)."""
        web = self.web_worker()
        if not self.options.viewers or web is None:
            return
        env = {**os.environ, "COPYTRADER_ADMIN_PASSWORD": self._admin_password()[0]}
        self.viewers = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "copytrader.demo.viewers",
            f"http://127.0.0.1:{web.web_port}",
            str(self.options.viewers),
            env=env,
            stdout=asyncio.subprocess.PIPE,
        )
        assert self.viewers.stdout is not None
        line = await asyncio.wait_for(self.viewers.stdout.readline(), 60.0)
        if line.strip() != b"ready":
            raise RuntimeError(f"the dashboard viewers did not start (said {line!r}; exit {self.viewers.returncode})")

    async def _stop_viewers(self) -> None:
        """SIGTERM; the viewers answer with the rows each was pushed."""
        viewers, self.viewers = self.viewers, None
        if viewers is None or viewers.returncode is not None:
            return
        viewers.terminate()
        assert viewers.stdout is not None
        out, _ = await asyncio.wait_for(viewers.communicate(), 30.0)
        if out.strip():
            self.viewer_rows = [int(n) for n in orjson.loads(out.strip().splitlines()[-1])["rows"]]

    async def __aexit__(self, *exc: object) -> None:
        if self.viewers is not None and self.viewers.returncode is None:
            self.viewers.kill()
            await self.viewers.wait()
        if self._warming is not None and not self._warming.done():
            self._warming.cancel()  # the run failed to start: its topics are deleted below
            await asyncio.gather(self._warming, return_exceptions=True)
        await self.observer.stop()
        await asyncio.gather(*(asyncio.to_thread(w.stop) for w in self.workers))
        for sandbox in self.sandboxes:
            await sandbox.stop()
        await self._delete_topics()
        if self.started_kafka and not self.options.keep_kafka:
            kafka = local_kafka_for(self.settings.bootstrap_servers, self.settings.data_dir)
            self._say(f"local Kafka: {kafka.stop()}")

    async def _start_simulators(self) -> None:
        platforms = set(SIMULATED) if self.options.platform == "mixed" else {self.options.platform}
        platforms.add(self.options.leader_platform)
        endpoints: dict[str, dict[str, Any]] = {}
        for platform in sorted(platforms - {"paper"}):
            from .sandbox import start_sandbox

            sandbox, session = await start_sandbox(platform, self.latency, self.config_data)
            self.sandboxes.append(sandbox)
            endpoints[platform] = session
        if endpoints:
            self.config_data = demo_config(
                self.followers,
                self.options.platform,
                self.latency,
                endpoints,
                leader_platform=self.options.leader_platform,
                auto_correct=self.options.auto_correct,
            )
            self.config = parse_config(self.config_data, env=dict(os.environ))
            self.observer.config = self.config

    async def _start_market_data(self) -> None:
        """A dxLink simulator as the price source; its token reaches the workers' environment."""
        if not self.options.market_data:
            return
        from ..brokers.dxlink.simulator import create_simulator

        simulator = create_simulator(tick_ms=250)
        await simulator.start()
        self.sandboxes.append(simulator)
        self.market_env = {MARKET_TOKEN_ENV: str(simulator.demo_credentials()["token"])}
        self.config_data["market_data"] = market_data(simulator.base_url)
        self.config = parse_config(self.config_data, env={**os.environ, **self.market_env})
        self.observer.config = self.config

    async def _wait_ready(self, timeout: float) -> None:
        """Until every worker's ``/readyz`` says ready: partitions assigned and its warm-up
        done (``agents/shared/warmup.py``), so the first leader action meets warm workers."""
        import aiohttp

        deadline = time.monotonic() + timeout
        last: dict[str, object] = {}
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2.0)) as http:
            while time.monotonic() < deadline:
                for worker in self.workers:
                    if worker.process.poll() is not None:
                        raise RuntimeError(
                            f"worker {worker.name} exited ({worker.process.returncode}); see {worker.log}"
                        )
                waiting = [w for w in self.workers if not await self._ready(http, w, last)]
                if not waiting:
                    return
                await asyncio.sleep(0.2)
        raise TimeoutError(f"workers not ready within {timeout:.0f}s ({last}); see {self.run_dir}")

    @staticmethod
    async def _ready(http: Any, worker: Worker, last: dict[str, object]) -> bool:
        """One ``/readyz`` of one worker; its answer (or why there was none) goes to ``last``."""
        import aiohttp

        try:
            async with http.get(f"http://127.0.0.1:{worker.web_port}/readyz") as response:
                last[worker.name] = await response.json(content_type=None)
                return bool(response.status == 200)
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            last[worker.name] = repr(exc)
            return False

    async def _delete_topics(self) -> None:
        try:
            await delete_run_topics(self.settings.bootstrap_servers, self.prefix)
        except Exception:  # noqa: BLE001 - cleanup is best effort; the run is judged already
            pass

    # -- the run ----------------------------------------------------------------------------
    async def trade(self, settle_timeout: float = 30.0) -> dict[str, Any]:
        """Let the scripted leader trade, then wait until every copy is accounted for."""
        if self.costs and self.mode == "bench":
            # Every worker is ready: what each process spends now is its background rate.
            await self.costs.measure_background()
        go = self.run_dir / "go"
        go.write_text("go")
        done = go.with_suffix(".done")
        warm = go.with_suffix(".warm")
        if self.costs and not self.options.warmup:
            self.costs.start()
        budget = (self.options.warmup + self.options.trades) * self.options.interval + 60.0
        deadline = time.monotonic() + budget
        while not done.exists() and time.monotonic() < deadline:
            self._check_workers()
            if self.costs and not self.costs.started and warm.exists():
                self.costs.start()  # the measured actions began (within one 0.1 s poll)
            await asyncio.sleep(0.1)
        if self.costs and not self.costs.started:
            self.costs.start()
        return await self.settle(settle_timeout)

    async def settle(self, timeout: float) -> dict[str, Any]:
        """Wait until nothing is missing (or the timeout), then summarise."""
        deadline = time.monotonic() + timeout
        quiet_since = time.monotonic()
        while time.monotonic() < deadline:
            self.observer.changed.clear()
            if not self.observer.missing() and time.monotonic() - quiet_since > 1.0:
                break
            try:
                await asyncio.wait_for(self.observer.changed.wait(), 0.5)
                quiet_since = time.monotonic()
            except TimeoutError:
                pass
        if self.costs is not None:
            # The demo ends at once; the bench also measures each process's idle rate.
            await self.costs.stop_when_quiet(idle_s=IDLE_WINDOW_S if self.mode == "bench" else 0.0)
        await self._stop_viewers()
        return self.summary()

    def summary(self) -> dict[str, Any]:
        summary = self.observer.summary(
            self.followers,
            mode=self.mode,
            platform=self.options.platform,
            broker_latency_ms=self.latency,
            processes=self.options.processes,
            executors=self.options.executors,
            fanouts=self.options.fanouts,
            trades=self.options.trades,
            warmup_trades=self.options.warmup,
            measured_from=self._measured_from(),
        )
        if self.costs is not None:
            if not self.costs.finished:
                self.costs.stop()  # settled by timeout: the window ends now
            costs = self.costs.report(int(summary["internal_ms"]["n"]))
            summary["cpu_ms_per_copy"] = costs.pop("cpu_ms_per_copy")
            summary["costs"] = costs
        if self.broker_before_run is not None:
            summary["broker_before_run"] = self.broker_before_run
        if self.options.viewers:
            summary["viewers"] = {"count": self.options.viewers, "rows": self.viewer_rows}
        self._write_copies()
        return summary

    def _write_copies(self) -> None:
        """Each copy's stage stamps, one JSON line per copy, in the run's folder."""
        lines = b"".join(orjson.dumps(row) + b"\n" for row in self.observer.copy_stamps())
        try:
            (self.run_dir / "copies.jsonl").write_bytes(lines)
        except OSError as exc:
            self._say(f"copies.jsonl not written: {exc}")

    def _measured_from(self) -> float | None:
        """When the scripted leader finished its warm-up actions (wall clock), if it had any."""
        try:
            return float((self.run_dir / "go.warm").read_text())
        except (OSError, ValueError):
            return None

    def web_worker(self) -> Worker | None:
        """The worker serving the dashboard and the API."""
        return next((w for w in self.workers if "web" in w.roles.split(",")), None)

    def kill_worker(self, name: str) -> None:
        """SIGKILL one worker (no clean shutdown, no offset commit): a crash."""
        worker = next(w for w in self.workers if w.name == name)
        worker.process.kill()
        worker.process.wait()

    def restart_worker(self, name: str) -> None:
        """Start a killed worker again with the same roles and app id (same consumer group)."""
        index = next(i for i, w in enumerate(self.workers) if w.name == name)
        layout = worker_layout(self.options.processes, self.options.executors, self.options.fanouts)
        _, roles, group = next(row for row in layout if row[0] == name)
        self.workers[index] = start_worker(name, roles, self.run_dir, self.worker_env, group=group)

    def _check_workers(self) -> None:
        for worker in self.workers:
            if worker.process.poll() is not None:
                raise RuntimeError(f"worker {worker.name} died ({worker.process.returncode}); see {worker.log}")

    def _print_copy(self, execution: Execution) -> None:
        if self.options.quiet:
            return
        s = execution.stamps
        internal = (s["sent"] - s["detected"]) * 1000 if "sent" in s and "detected" in s else float("nan")
        e2e = (s["acked"] - s["detected"]) * 1000 if "acked" in s and "detected" in s else float("nan")
        print(
            f"copy {execution.account_id:<6} {execution.kind:<9} {execution.side:<4} {execution.quantity:>2} "
            f"{execution.symbol:<6} {execution.client_order_id}  internal {internal:6.1f} ms  "
            f"end-to-end {e2e:6.1f} ms{'  (duplicate absorbed)' if execution.duplicate else ''}"
            f"{'  REJECTED: ' + (execution.reason or '') if execution.kind == 'reject' else ''}",
            flush=True,
        )

    def _say(self, text: str) -> None:
        print(text, file=sys.stderr, flush=True)


async def run_scenario(mode: str, followers: int, latency: str, options: ScenarioOptions) -> dict[str, Any]:
    # The machine's yardstick, measured before any worker starts (docs/benchmarks.md).
    calibration = await calibrate() if mode == "bench" else None
    async with Scenario(mode, followers, latency, options) as run:
        summary = await run.trade()
        if calibration is not None:
            summary["calibration"] = calibration
        if options.keep_running:
            print(dumps(summary), flush=True)
            run._say("workers keep running for the dashboard; Ctrl-C stops them")
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                pass
    return summary


def _stop_on_sigterm() -> None:
    """SIGTERM ends the run like Ctrl-C does: the current task is cancelled, so every
    ``Scenario.__aexit__`` stops its workers and simulators before the process exits."""
    task = asyncio.current_task()
    if task is not None:
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)


async def run_many(
    mode: str, followers: list[int], latencies: list[str], options: ScenarioOptions
) -> list[dict[str, Any]]:
    _stop_on_sigterm()
    results = []
    for count in followers:
        for latency in latencies:
            runs = []
            for attempt in range(1, options.repeat + 1):
                summary = await run_scenario(mode, count, latency, options)
                if options.repeat > 1:
                    summary["run"] = attempt
                print(dumps(summary), flush=True)
                runs.append(summary)
            results.extend(runs)
            if options.repeat > 1:
                line = median_of(runs)
                print(dumps(line), flush=True)
                print(readable(line), file=sys.stderr, flush=True)
    return results


__all__ = ["Scenario", "ScenarioOptions", "run_scenario", "run_many"]

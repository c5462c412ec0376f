"""The harness's commands under ``copytrader``: ``demo``, ``bench`` and ``sim``.

They reach the ``copytrader`` command through the ``copytrader.commands`` entry point group
(setup.cfg), so the product's CLI (``app/cli.py``) lists them without importing the harness.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from .configgen import MIXED

FOLLOWER_PLATFORMS = (*MIXED, "mixed")
LEADER_PLATFORMS = MIXED
F = TypeVar("F", bound=Callable[..., Any])


def _follower_counts(text: str) -> list[int]:
    """``--followers 20`` or ``20,200``: each a whole number of at least 1."""
    try:
        counts = [int(x) for x in text.split(",")]
    except ValueError:
        raise click.BadParameter(f"{text!r}: give whole numbers, e.g. 20 or 20,200", param_hint="--followers") from None
    if any(n < 1 for n in counts):
        raise click.BadParameter(f"{text!r}: a run needs at least 1 follower", param_hint="--followers")
    return counts


def _scenario_options(fn: F) -> F:
    """The options demo and bench share, as one decorator."""
    options = [
        click.option("--followers", default="20", show_default=True, help="Follower accounts (comma list runs each)."),
        click.option(
            "--trades", default=50, show_default=True, help="Leader actions (market, limit, modify, cancel, stop)."
        ),
        click.option(
            "--latency",
            "latency",
            default="0",
            show_default=True,
            help="Simulated broker latency in ms (comma list runs each; '50+20' adds a tail).",
        ),
        click.option(
            "--warmup",
            default=None,
            type=click.IntRange(0),
            help="Leader actions before the measured ones; their latencies are reported apart [bench: 10, demo: 0]. "
            "Every run also reports its first 2 s apart (first_2s, after_2s).",
        ),
        click.option("--interval", default=0.1, show_default=True, help="Seconds between leader actions."),
        click.option(
            "--platform",
            default="paper",
            show_default=True,
            type=click.Choice(FOLLOWER_PLATFORMS),
            help="Follower platform: paper, a simulator, or mixed (followers on every order platform).",
        ),
        click.option(
            "--leader-platform",
            default="paper",
            show_default=True,
            type=click.Choice(LEADER_PLATFORMS),
            help="The leader's platform: paper or one of the simulators.",
        ),
        click.option(
            "--processes",
            default=3,
            show_default=True,
            type=click.Choice(["1", "2", "3", "5"]),
            callback=lambda _ctx, _param, value: int(value),
            help="1: one worker; 2: fan-out | executor+tracker; 3: fan-out | executor | tracker/store/web; "
            "5: the tracker's three roles apart.",
        ),
        click.option("--quiet", is_flag=True, help="Only the summary, not one line per copy."),
        click.option("--keep-kafka", is_flag=True, help="Leave a broker this command started running."),
        click.option(
            "--keep-running",
            is_flag=True,
            help="After the summary, keep the workers (and the dashboard) up until Ctrl-C.",
        ),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


BENCH_WARMUP = 10


def _run_scenarios(mode: str, **kw: object) -> None:
    from .runner import ScenarioOptions, run_many

    followers = _follower_counts(str(kw.pop("followers")))
    latencies = [x.strip() for x in str(kw.pop("latency")).split(",")]
    results = asyncio.run(run_many(mode, followers, latencies, ScenarioOptions(**kw)))  # type: ignore[arg-type]  # click types match
    if any(r.get("missing") or r.get("duplicates") for r in results):
        sys.exit(1)


@click.command(name="demo", help="A simulated leader trades; N followers copy it through real Kafka.")
@_scenario_options
def demo(**kw: object) -> None:
    kw["warmup"] = kw["warmup"] or 0  # the demo shows every copy from the first
    _run_scenarios("demo", **kw)


def _count(flag: str, default: int, low: int, high: int, text: str) -> Callable[[F], F]:
    """A bench option that takes a whole number within bounds."""
    return click.option(flag, default=default, show_default=True, type=click.IntRange(low, high), help=text)


@click.command(name="bench", help="Latency benchmark: stage percentiles at N followers (prints JSON).")
@_scenario_options
@_count("--repeat", 1, 1, 50, "Runs per configuration; with 2 or more, a median line with the spread follows them.")
@_count(
    "--executors", 1, 1, 10, "Executor processes in one consumer group (they split orders.requests' 10 partitions)."
)
@_count("--fanouts", 1, 1, 3, "Fan-out processes in one consumer group (they split trade.signals' 3 partitions).")
@_count("--viewers", 0, 0, 20, "Open dashboards (Socket.IO clients subscribed to every live stream) while it runs.")
def bench(**kw: object) -> None:
    kw["quiet"] = True
    # Steady state: the first seconds after start are slower even with the workers' own
    # warm-up before /readyz (docs/benchmarks.md, "Cold start"); those copies are still counted
    # and shown under "warmup", and "first_2s"/"after_2s" show the cold start in every run.
    kw["warmup"] = BENCH_WARMUP if kw["warmup"] is None else kw["warmup"]
    _run_scenarios("bench", **kw)


def _rate_limit(_ctx: object, _param: object, value: str | None) -> tuple[int, float] | None:
    """``N/SECONDS`` (e.g. ``200/60``) → (requests, seconds)."""
    if value is None:
        return None
    requests, _, seconds = value.partition("/")
    try:
        parsed = (int(requests), float(seconds or 1))
    except ValueError:
        raise click.BadParameter(f"expected N/SECONDS such as 200/60, got {value!r}") from None
    if parsed[0] < 1 or parsed[1] <= 0:
        raise click.BadParameter(f"expected a positive budget, got {value!r}")
    return parsed


@click.command(name="sim", help="Start one platform's simulator on its own and print where it listens.")
@click.argument("platform")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=0, show_default=True, help="0 picks a free port.")
@click.option("--latency", default="0", show_default=True, help="Injected latency per call, ms.")
@click.option(
    "--accounts", default=None, type=click.IntRange(1), help="Accounts to open [default: the demo login's two]."
)
@click.option(
    "--accounts-per-login",
    default=1,
    show_default=True,
    type=click.IntRange(1),
    help="Accounts per login (one login per follower firm, as real prop accounts have).",
)
@click.option(
    "--rate-limit",
    default=None,
    callback=_rate_limit,
    metavar="N/SECONDS",
    help="Request budget per login, e.g. 200/60 [default: the platform's documented limits].",
)
@click.option("--incoming", default=None, help="ninjatrader: the OIF incoming folder [default: a temporary one].")
@click.option("--outgoing", default=None, help="ninjatrader: the outgoing folder [default: beside --incoming].")
@click.option("--fix-version", default=None, help="fix: FIX.4.2 or FIX.4.4 only [default: both].")
@click.option("--sender-comp-id", default=None, help="fix: the CompID the (first) client sends as SenderCompID.")
@click.option("--target-comp-id", default=None, help="fix: the simulator's CompID (the clients' TargetCompID).")
def sim(
    platform: str,
    host: str,
    port: int,
    latency: str,
    accounts: int | None,
    accounts_per_login: int,
    rate_limit: tuple[int, float] | None,
    incoming: str | None,
    outgoing: str | None,
    fix_version: str | None,
    sender_comp_id: str | None,
    target_comp_id: str | None,
) -> None:
    from .sandbox import serve_simulator, sim_options

    options = sim_options(platform, accounts, accounts_per_login, rate_limit)
    if incoming or outgoing:
        if platform != "ninjatrader":
            raise click.BadParameter("only the ninjatrader simulator has instruction folders", param_hint="--incoming")
        options["folder"] = str(Path(incoming or outgoing or ".").parent)
        options.update({k: v for k, v in (("incoming", incoming), ("outgoing", outgoing)) if v})
    if platform == "fix":
        from ..brokers.fix.simulator import cli_options

        try:
            options = cli_options(options, fix_version, sender_comp_id, target_comp_id)
        except ValueError as exc:
            raise click.BadParameter(str(exc)) from None
    asyncio.run(serve_simulator(platform, host, port, latency, **options))

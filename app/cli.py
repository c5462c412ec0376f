"""``copytrader``: Faust's own CLI for this app (worker, agents, tables, send, ...) plus the
project's commands (kafka, demo, bench, sim), all under one entry point."""

from __future__ import annotations

import asyncio
import sys

import click

from ..core.settings import Settings


@click.group(name="kafka", help="Run a local single-node Kafka (KRaft) broker: start | stop | status.")
def kafka() -> None:
    pass


def _local_kafka():  # type: ignore[no-untyped-def]  # returns LocalKafka; imported lazily
    from .kafka_local import local_kafka_for

    settings = Settings.from_env()
    return local_kafka_for(settings.bootstrap_servers, settings.data_dir)


@kafka.command(name="start", help="Fetch the jars once (Maven), format storage, start, wait until it serves.")
def kafka_start() -> None:
    from .kafka_local import KafkaError

    try:
        click.echo(_local_kafka().start())
    except KafkaError as exc:
        raise click.ClickException(str(exc)) from None


@kafka.command(name="stop", help="Stop the broker started by `copytrader kafka start`.")
def kafka_stop() -> None:
    click.echo(_local_kafka().stop())


@kafka.command(name="status", help="Say whether the local broker runs and serves (exit 1 when it does not).")
def kafka_status() -> None:
    kafka = _local_kafka()
    click.echo(kafka.status())
    if not kafka.serving():
        raise SystemExit(1)


FOLLOWER_PLATFORMS = ("paper", "tradovate", "projectx", "mixed")
LEADER_PLATFORMS = ("paper", "tradovate", "projectx")


def _follower_counts(text: str) -> list[int]:
    """``--followers 20`` or ``20,200``: each a whole number of at least 1."""
    try:
        counts = [int(x) for x in text.split(",")]
    except ValueError:
        raise click.BadParameter(f"{text!r}: give whole numbers, e.g. 20 or 20,200", param_hint="--followers") from None
    if any(n < 1 for n in counts):
        raise click.BadParameter(f"{text!r}: a run needs at least 1 follower", param_hint="--followers")
    return counts


def _scenario_options(fn):  # type: ignore[no-untyped-def]  # click decorator stack
    options = [
        click.option("--followers", default="20", show_default=True, help="Follower accounts (comma list runs each)."),
        click.option("--trades", default=50, show_default=True, help="Leader actions (market, limit, modify, cancel, stop)."),
        click.option("--latency", "latency", default="0", show_default=True, help="Simulated broker latency in ms (comma list runs each; '50+20' adds a tail)."),
        click.option("--warmup", default=None, type=click.IntRange(0), help="Leader actions before the measured ones; their latencies are reported apart [bench: 10, demo: 0]."),
        click.option("--interval", default=0.1, show_default=True, help="Seconds between leader actions."),
        click.option("--platform", default="paper", show_default=True, type=click.Choice(FOLLOWER_PLATFORMS), help="Follower platform: paper, or a simulator (tradovate, projectx, mixed)."),
        click.option("--leader-platform", default="paper", show_default=True, type=click.Choice(LEADER_PLATFORMS), help="The leader's platform: paper, tradovate or projectx (simulators)."),
        click.option("--processes", default=3, show_default=True, type=click.IntRange(1, 3), help="1: one worker; 2: fan-out | executor+tracker; 3: fan-out | executor | tracker."),
        click.option("--quiet", is_flag=True, help="Only the summary, not one line per copy."),
        click.option("--keep-kafka", is_flag=True, help="Leave a broker this command started running."),
        click.option("--keep-running", is_flag=True, help="After the summary, keep the workers (and the dashboard) up until Ctrl-C."),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


BENCH_WARMUP = 10


def _run_scenarios(mode: str, **kw: object) -> None:
    from ..demo.runner import ScenarioOptions, run_many

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


@click.command(name="bench", help="Latency benchmark: stage percentiles at N followers (prints JSON).")
@_scenario_options
def bench(**kw: object) -> None:
    kw["quiet"] = True
    # Steady state: the first seconds after start (fresh topics, first use of each code path)
    # are slower; they are still counted and shown under "warmup". See docs/benchmarks.md.
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
@click.option("--accounts", default=None, type=click.IntRange(1), help="Accounts to open [default: the demo login's two].")
@click.option("--accounts-per-login", default=1, show_default=True, type=click.IntRange(1),
              help="Accounts per login (one login per follower firm, as real prop accounts have).")
@click.option("--rate-limit", default=None, callback=_rate_limit, metavar="N/SECONDS",
              help="Request budget per login, e.g. 200/60 [default: the platform's documented limits].")
def sim(platform: str, host: str, port: int, latency: str, accounts: int | None, accounts_per_login: int,
        rate_limit: tuple[int, float] | None) -> None:
    from ..demo.sandbox import serve_simulator, sim_options

    options = sim_options(platform, accounts, accounts_per_login, rate_limit)
    asyncio.run(serve_simulator(platform, host, port, latency, **options))


@click.command(name="table", help="Print a table's current rows (positions, broker_health) from its changelog.")
@click.argument("name")
@click.option("--id", "app_id", default=None, help="The worker's app id (default: COPYTRADER_APP_ID or copytrader).")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per row.")
def table(name: str, app_id: str | None, as_json: bool) -> None:
    import orjson

    from .tableview import read_table

    settings = Settings.from_env()
    try:
        rows = asyncio.run(read_table(settings.bootstrap_servers, app_id or settings.app_id, name))
    except LookupError as exc:
        raise click.ClickException(str(exc)) from None
    for key, row in sorted(rows.items()):
        if as_json:
            click.echo(orjson.dumps({"key": key, **row} if isinstance(row, dict) else {"key": key, "value": row}).decode())
        else:
            shown = {k: v for k, v in row.items() if k != "recent_fill_ids"} if isinstance(row, dict) else row
            click.echo(f"{key:<24} {shown}")
    click.echo(f"{len(rows)} row(s)", err=True)


def project_commands() -> tuple[click.Command, ...]:
    from ..storage.cli import audit, db

    return (kafka, demo, bench, sim, table, db, audit)


def main() -> None:
    from faust.cli.faust import cli as faust_cli

    from ..core.config import ConfigError
    from .preflight import kafka_unreachable, prefixed_send_args

    for command in project_commands():
        faust_cli.add_command(command)
    settings = Settings.from_env()
    sys.argv[1:] = prefixed_send_args(sys.argv[1:], settings.topic_prefix)
    if "worker" in sys.argv[1:2] and not {"-h", "--help"} & set(sys.argv):
        problem = kafka_unreachable(settings.bootstrap_servers)
        if problem:
            click.echo(f"copytrader worker: {problem}", err=True)
            sys.exit(2)
    try:
        from .main import app
    except (ConfigError, OSError) as exc:
        click.echo(f"copytrader: configuration error: {exc}", err=True)
        sys.exit(2)
    app.main()


if __name__ == "__main__":  # pragma: no cover
    main()



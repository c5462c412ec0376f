"""``copytrader``: Faust's own CLI for this app (worker, agents, tables, send, ...) plus the
project's commands (kafka, demo, bench, sim), all under one entry point."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

import click

from ..core.settings import Settings

if TYPE_CHECKING:
    from .factory import CopyTraderApp
    from .kafka_local import LocalKafka


@click.group(name="kafka", help="Run a local single-node Kafka (KRaft) broker: start | stop | status.")
def kafka() -> None:
    pass


def _local_kafka() -> LocalKafka:
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


@click.command(name="table", help="Print a table's current rows (positions, broker_health) from its changelog.")
@click.argument("name")
@click.option("--id", "app_id", default=None, help="The worker's app id (default: COPYTRADER_APP_ID or copytrader).")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per row.")
def table(name: str, app_id: str | None, as_json: bool) -> None:
    import orjson

    from ..core.records import POSITION_WINDOW_FIELDS
    from .tableview import read_table

    settings = Settings.from_env()
    try:
        rows = asyncio.run(read_table(settings.bootstrap_servers, app_id or settings.app_id, name))
    except LookupError as exc:
        raise click.ClickException(str(exc)) from None
    for key, row in sorted(rows.items()):
        if as_json:
            click.echo(
                orjson.dumps({"key": key, **row} if isinstance(row, dict) else {"key": key, "value": row}).decode()
            )
        else:
            shown = {k: v for k, v in row.items() if k not in POSITION_WINDOW_FIELDS} if isinstance(row, dict) else row
            click.echo(f"{key:<24} {shown}")
    click.echo(f"{len(rows)} row(s)", err=True)


#: Commands other packages add to ``copytrader`` (setup.cfg ``[options.entry_points]``): the
#: demo harness adds ``demo``, ``bench`` and ``sim`` this way, so the wiring never imports it.
COMMAND_GROUP = "copytrader.commands"


def plugin_commands() -> list[click.Command]:
    from importlib.metadata import entry_points

    return [entry.load() for entry in sorted(entry_points(group=COMMAND_GROUP), key=lambda e: e.name)]


def project_commands() -> tuple[click.Command, ...]:
    from ..storage.cli import audit, db

    return (kafka, table, db, audit, *plugin_commands())


def main(extend: Callable[[CopyTraderApp], None] | None = None) -> None:
    """``copytrader``: Faust's CLI on this project's app, plus the project's commands.

    ``extend`` adds to the app before it runs (the demo harness adds its scripted leader to
    the worker it starts, ``demo/worker.py``); the product itself passes nothing.
    """
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
    if extend is not None:
        extend(app)
    app.main()


if __name__ == "__main__":  # pragma: no cover
    main()

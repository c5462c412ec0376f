"""``copytrader db upgrade|current|partitions`` and ``copytrader audit verify``.

Plain click groups, registered by ``app/cli.py`` next to the project's other commands. The
database URL comes from ``--url``, else ``COPYTRADER_DATABASE_URL``, else the embedded SQLite
file; the URL is never printed with its password.
"""

from __future__ import annotations

import sys

import click
from sqlalchemy.engine import make_url

from .db import database_url_from_env, make_engine, session_factory

URL_HELP = "Database URL (default: $COPYTRADER_DATABASE_URL, else sqlite:///var/copytrader.db)."


def _safe(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


@click.group(name="db", help="Database schema: upgrade | current | partitions.")
def db() -> None:
    pass


@db.command(name="upgrade", help="Apply the migrations (idempotent) and create the monthly partitions due.")
@click.option("--url", default=None, help=URL_HELP)
@click.option("--revision", default="head", show_default=True)
def db_upgrade(url: str | None, revision: str) -> None:
    from .migrate import upgrade

    url = database_url_from_env(url)
    state = upgrade(url, revision)
    click.echo(
        f"{_safe(url)}: at revision {state.revision} (head {state.head}); time series: {state.timeseries_backend}"
    )


@db.command(name="current", help="Show the database's revision and time-series layout; exit 1 if behind.")
@click.option("--url", default=None, help=URL_HELP)
def db_current(url: str | None) -> None:
    from .migrate import current

    url = database_url_from_env(url)
    state = current(url)
    status = "up to date" if state.up_to_date else "needs `copytrader db upgrade`"
    click.echo(
        f"{_safe(url)}: revision {state.revision or '(none)'}, head {state.head} ({status}); "
        f"time series: {state.timeseries_backend or '(not migrated)'}"
    )
    if not state.up_to_date:
        sys.exit(1)


@db.command(name="partitions", help="Create the monthly partitions due (PostgreSQL partitioned layout only).")
@click.option("--url", default=None, help=URL_HELP)
@click.option("--ahead", default=3, show_default=True, help="Months to create ahead of the current one.")
def db_partitions(url: str | None, ahead: int) -> None:
    from .timeseries import ensure_partitions

    engine = make_engine(database_url_from_env(url))
    try:
        with engine.begin() as conn:
            created = ensure_partitions(conn, ahead=ahead)
    finally:
        engine.dispose()
    click.echo(f"created: {', '.join(created)}" if created else "nothing to create")


@click.group(name="audit", help="The hash-chained audit log: verify.")
def audit() -> None:
    pass


@audit.command(name="verify", help="Walk the audit chain; report the first broken link (exit 1) or 'chain intact'.")
@click.option("--url", default=None, help=URL_HELP)
def audit_verify(url: str | None) -> None:
    from .audit import verify

    engine = make_engine(database_url_from_env(url))
    try:
        with session_factory(engine)() as session:
            result = verify(session)
    finally:
        engine.dispose()
    if result.ok:
        click.echo(f"chain intact: {result.entries} entries (head {result.head_hash[:16]})")
        return
    click.echo(
        f"chain broken at seq {result.broken_seq}: {result.reason} ({result.entries} entries verified before it)",
        err=True,
    )
    sys.exit(1)


COMMANDS = (db, audit)

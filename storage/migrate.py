"""Alembic, driven from code: ``upgrade(database_url)`` and ``current(database_url)``.

The Alembic configuration is built here rather than read from an ``alembic.ini``, so the
migrations run the same from a checkout, an installed wheel or a container, whatever the
working directory. The connection is handed to ``env.py`` through ``config.attributes``, which
also keeps passwords out of Alembic's ``%``-interpolating config parser.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, text

from .db import database_url_from_env, make_engine
from .timeseries import ensure_partitions, recorded_backend

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
MIGRATION_LOCK_KEY = 0x4354_4D49_4752_41  # "CTMIGRA"


def alembic_config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None, "no migrations found"
    return head


@dataclass(frozen=True, slots=True)
class DatabaseState:
    revision: str | None
    head: str
    timeseries_backend: str | None

    @property
    def up_to_date(self) -> bool:
        return self.revision == self.head


def upgrade(database_url: str | None = None, revision: str = "head", *, engine: Engine | None = None) -> DatabaseState:
    """Migrate to ``revision`` and create the monthly partitions due; safe to run repeatedly."""
    owned = engine is None
    engine = engine or make_engine(database_url_from_env(database_url))
    try:
        with engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                # Two workers starting together must not both create the tables.
                conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": MIGRATION_LOCK_KEY})
            command.upgrade(alembic_config(conn), revision)
        with engine.begin() as conn:
            ensure_partitions(conn)
        return _state(engine)
    finally:
        if owned:
            engine.dispose()


def current(database_url: str | None = None, *, engine: Engine | None = None) -> DatabaseState:
    """The database's revision, the code's head, and the time-series layout in use."""
    if engine is not None:
        return _state(engine)
    engine = make_engine(database_url_from_env(database_url))
    try:
        return _state(engine)
    finally:
        engine.dispose()


def _state(engine: Engine) -> DatabaseState:
    with engine.connect() as conn:
        revision = MigrationContext.configure(conn).get_current_revision()
        backend = recorded_backend(conn)
    return DatabaseState(revision=revision, head=head_revision(), timeseries_backend=backend)

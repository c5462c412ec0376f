"""Alembic environment: runs on the connection ``storage.migrate`` passes in.

Offline (SQL script) mode is not supported: the time-series layout is decided by asking the
live database what it supports, which a script cannot do.
"""

from __future__ import annotations

from alembic import context

from copytrader.storage.db import database_url_from_env, make_engine
from copytrader.storage.models import Base
from copytrader.storage.timeseries import include_name

config = context.config
target_metadata = Base.metadata


def run_migrations(connection: object) -> None:
    context.configure(
        connection=connection,  # type: ignore[arg-type]  # a sqlalchemy Connection
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",  # type: ignore[attr-defined]  # SQLite ALTERs by table copy
        compare_type=True,
        include_name=include_name,
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    raise SystemExit("offline migrations are not supported: the layout depends on the live database")

connection = config.attributes.get("connection")
if connection is not None:
    run_migrations(connection)
else:
    engine = make_engine(database_url_from_env(config.get_main_option("sqlalchemy.url")))
    with engine.begin() as conn:
        run_migrations(conn)

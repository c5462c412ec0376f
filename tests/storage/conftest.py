"""Databases for the storage tests: a temp SQLite file always, PostgreSQL when configured.

PostgreSQL tests need ``COPYTRADER_TEST_POSTGRES_URL`` (``scripts/start-postgres.sh`` starts a
server and prints one); each test gets a fresh database created from it and dropped after,
so partitions and the audit chain never leak between tests.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
from ci_skips import require
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from copytrader.storage.db import make_engine, session_factory
from copytrader.storage.migrate import upgrade

PG_ENV = "COPYTRADER_TEST_POSTGRES_URL"


def _postgres_base_url() -> str:
    url = os.environ.get(PG_ENV)
    require(
        "postgresql", f"{PG_ENV} is not set (run scripts/start-postgres.sh and export the URL it prints)", available=url
    )
    assert url is not None
    return url


@pytest.fixture
def sqlite_url(tmp_path: os.PathLike[str]) -> str:
    return f"sqlite:///{tmp_path}/copytrader.db"


@pytest.fixture
def postgres_url() -> Iterator[str]:
    base = make_url(_postgres_base_url())
    name = f"ct_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        yield base.set(database=name).render_as_string(hide_password=False)
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest) -> str:
    """Runs a test once on SQLite and once on PostgreSQL (skipped without a server)."""
    fixture = "sqlite_url" if request.param == "sqlite" else "postgres_url"
    url: str = request.getfixturevalue(fixture)
    return url


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    upgrade(db_url)
    eng = make_engine(db_url)
    yield eng
    eng.dispose()


@pytest.fixture
def pg_engine(postgres_url: str) -> Iterator[Engine]:
    upgrade(postgres_url)
    eng = make_engine(postgres_url)
    yield eng
    eng.dispose()


@pytest.fixture
def db(engine: Engine) -> Iterator[Session]:
    with session_factory(engine)() as session:
        yield session

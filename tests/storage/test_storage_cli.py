"""``copytrader db upgrade|current`` and ``copytrader audit verify`` through click."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from click.testing import CliRunner
from sqlalchemy import text

from copytrader.storage.audit import AuditRecord, AuditWriter
from copytrader.storage.cli import audit, db
from copytrader.storage.db import make_engine, session_factory
from copytrader.storage.migrate import head_revision


@pytest.fixture
def runner(sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("COPYTRADER_DATABASE_URL", sqlite_url)
    return CliRunner()


def test_db_upgrade_and_current(runner: CliRunner) -> None:
    behind = runner.invoke(db, ["current"])
    assert behind.exit_code == 1 and "needs `copytrader db upgrade`" in behind.output
    done = runner.invoke(db, ["upgrade"])
    assert done.exit_code == 0, done.output
    assert f"at revision {head_revision()}" in done.output and "time series: plain" in done.output
    now = runner.invoke(db, ["current"])
    assert now.exit_code == 0 and "up to date" in now.output


@pytest.mark.postgres
def test_url_password_is_never_printed(postgres_url: str) -> None:
    result = CliRunner().invoke(db, ["upgrade", "--url", postgres_url])
    assert result.exit_code == 0, result.output
    assert ":***@" in result.output and "time series: partitioned" in result.output


def test_audit_verify_intact_then_broken(runner: CliRunner, sqlite_url: str) -> None:
    assert runner.invoke(db, ["upgrade"]).exit_code == 0
    engine = make_engine(sqlite_url)
    at = datetime(2026, 3, 2, tzinfo=UTC)
    AuditWriter(session_factory(engine)).append(
        [AuditRecord(kind="error", natural_id=f"e{i}", occurred_at=at, payload={"reason": "r"}) for i in range(4)]
    )
    intact = runner.invoke(audit, ["verify"])
    assert intact.exit_code == 0 and "chain intact: 4 entries" in intact.output
    with engine.begin() as conn:
        conn.execute(text("DROP TRIGGER audit_log_no_update"))
        conn.execute(text("UPDATE audit_log SET account_id = 'someone' WHERE seq = 3"))
    engine.dispose()
    broken = runner.invoke(audit, ["verify"])
    assert broken.exit_code == 1
    assert "chain broken at seq 3" in broken.output

"""Schema: the models create, the migrations apply (twice), match the models and downgrade."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, create_engine, inspect, text
from sqlalchemy.exc import DBAPIError

from copytrader.storage import migrate
from copytrader.storage.db import make_engine
from copytrader.storage.models import Base
from copytrader.storage.timeseries import TIMESERIES_TABLES, include_name, is_partition

TABLES = {
    "users",
    "accounts",
    "broker_credentials",
    "copy_groups",
    "copy_rules",
    "audit_log",
    "executions",
    "position_snapshots",
    "pnl_series",
    "storage_meta",
    "alembic_version",
}


def test_models_create_all_on_sqlite(tmp_path: object) -> None:
    engine = create_engine(f"sqlite:///{tmp_path}/models.db")
    Base.metadata.create_all(engine)
    assert TABLES - {"alembic_version"} <= set(inspect(engine).get_table_names())
    engine.dispose()


def test_upgrade_creates_schema_and_is_idempotent(db_url: str) -> None:
    first = migrate.upgrade(db_url)
    second = migrate.upgrade(db_url)
    assert first.up_to_date and second.up_to_date
    assert first.revision == migrate.head_revision()
    engine = make_engine(db_url)
    try:
        names = {n for n in inspect(engine).get_table_names() if not is_partition(n)}
        assert names == TABLES
        expected = "plain" if engine.dialect.name == "sqlite" else "partitioned"
        assert first.timeseries_backend == expected
    finally:
        engine.dispose()


def test_migrations_match_models(engine: Engine) -> None:
    """Autogenerate finds nothing to do: the hand-written migration is the models' schema."""
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True, "include_name": include_name})
        assert compare_metadata(context, Base.metadata) == []


def test_downgrade_to_base_and_back(db_url: str) -> None:
    migrate.upgrade(db_url)
    engine = make_engine(db_url)
    try:
        with engine.begin() as conn:
            from alembic import command

            command.downgrade(migrate.alembic_config(conn), "base")
        assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
        assert migrate.current(engine=engine).revision is None
        assert migrate.upgrade(engine=engine).up_to_date
    finally:
        engine.dispose()


def test_current_reports_not_migrated(sqlite_url: str) -> None:
    state = migrate.current(sqlite_url)
    assert state.revision is None and not state.up_to_date and state.timeseries_backend is None


def test_audit_log_refuses_update_and_delete(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO audit_log (seq, occurred_at, kind, natural_id, payload, prev_hash, hash, recorded_at) "
                "VALUES (1, '2026-01-01 00:00:00', 'signal', 's1', '{}', :z, :h, '2026-01-01 00:00:00')"
            ),
            {"z": "0" * 64, "h": "f" * 64},
        )
    for statement in ("UPDATE audit_log SET payload = '{\"x\": 1}'", "DELETE FROM audit_log"):
        with pytest.raises(DBAPIError, match="append-only"), engine.begin() as conn:
            conn.execute(text(statement))


@pytest.mark.postgres
def test_postgres_timeseries_tables_are_partitioned(pg_engine: Engine) -> None:
    with pg_engine.connect() as conn:
        partitioned = set(
            conn.execute(
                text("SELECT c.relname FROM pg_partitioned_table p JOIN pg_class c ON c.oid = p.partrelid")
            ).scalars()
        )
    assert partitioned == set(TIMESERIES_TABLES)


def test_upgrade_over_two_revisions_keeps_the_rows(db_url: str) -> None:
    """A database at 0001 holding executions upgrades to 0002 (fill corrections) with its rows
    intact and the new columns empty, takes a correction row, and downgrades back."""
    from alembic import command

    from copytrader.storage.models import ExecutionRow

    migrate.upgrade(db_url, revision="0001")
    engine = make_engine(db_url)
    try:
        assert migrate.current(engine=engine).revision == "0001"
        assert "corrects" not in {c["name"] for c in inspect(engine).get_columns("executions")}
        row = {
            "execution_id": "f1|1001|fill|5001",
            "account_id": "f1",
            "platform": "paper",
            "kind": "fill",
            "client_order_id": "CT1",
            "symbol": "ESZ6",
            "side": "buy",
            "quantity": 2,
            "price": 5000,
            "cumulative_quantity": 2,
            "leaves_quantity": 0,
            "is_leader": False,
            "duplicate": False,
            "request_outcome": False,
            "occurred_at": "2026-11-30 12:00:00",
            "stamps": "{}",
        }
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO executions (execution_id, account_id, platform, kind, client_order_id, symbol, side,"
                    " quantity, price, cumulative_quantity, leaves_quantity, is_leader, duplicate, request_outcome,"
                    " occurred_at, stamps) VALUES (:execution_id, :account_id, :platform, :kind, :client_order_id,"
                    " :symbol, :side, :quantity, :price, :cumulative_quantity, :leaves_quantity, :is_leader,"
                    " :duplicate, :request_outcome, :occurred_at, :stamps)"
                ),
                row,
            )
        state = migrate.upgrade(engine=engine, revision="0002")
        assert state.revision == "0002"
        with engine.begin() as conn:
            kept = conn.execute(text("SELECT execution_id, quantity, corrects FROM executions")).all()
            assert [tuple(r) for r in kept] == [("f1|1001|fill|5001", 2, None)]
            conn.execute(
                ExecutionRow.__table__.insert().values(
                    execution_id="f1|1001|correction|1",
                    account_id="f1",
                    platform="paper",
                    kind="fill_correction",
                    symbol="ESZ6",
                    side="buy",
                    quantity=1,
                    price=5000,
                    cumulative_quantity=0,
                    leaves_quantity=0,
                    is_leader=False,
                    duplicate=False,
                    request_outcome=False,
                    occurred_at=datetime(2026, 11, 30, 12, 1, tzinfo=UTC),
                    stamps={},
                    corrects="f1|1001|fill|5001",
                    original_quantity=2,
                    original_price=5000,
                )
            )
        with engine.begin() as conn:
            command.downgrade(migrate.alembic_config(conn), "0001")
        assert migrate.current(engine=engine).revision == "0001"
        assert "corrects" not in {c["name"] for c in inspect(engine).get_columns("executions")}
        with engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM executions")).scalar_one() == 2
    finally:
        engine.dispose()


def test_0004_widens_the_id_columns_keeping_rows_and_downgrades(db_url: str) -> None:
    from alembic import command

    migrate.upgrade(db_url, revision="0003")
    engine = make_engine(db_url)

    def widths(table: str) -> dict[str, int]:
        return {c["name"]: getattr(c["type"], "length", 0) for c in inspect(engine).get_columns(table)}

    try:
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO executions (execution_id, account_id, platform, kind, symbol, side, quantity, price,"
                    " cumulative_quantity, leaves_quantity, is_leader, duplicate, request_outcome, occurred_at, stamps)"
                    " VALUES ('x|1', 'F1', 'paper', 'fill', 'ESZ6', 'buy', 1, 5000, 1, 0, false, false, false,"
                    " '2026-03-02 14:00:00', '{}')"
                )
            )
        assert widths("executions")["execution_id"] == 200
        assert migrate.upgrade(engine=engine, revision="0004").revision == "0004"
        assert {
            k: v for k, v in widths("executions").items() if k in ("execution_id", "signal_id", "corrects", "platform")
        } == {"execution_id": 512, "signal_id": 256, "corrects": 512, "platform": 64}
        assert (widths("audit_log")["natural_id"], widths("audit_log")["signal_id"]) == (576, 256)
        with engine.connect() as conn:
            assert [tuple(r) for r in conn.execute(text("SELECT execution_id, price FROM executions"))] == [
                ("x|1", 5000)
            ]
        with engine.begin() as conn:
            command.downgrade(migrate.alembic_config(conn), "0003")
        assert widths("executions")["execution_id"] == 200 and widths("audit_log")["natural_id"] == 200
    finally:
        engine.dispose()


def test_0005_leaner_indexes_keep_rows_chain_triggers_and_redelivery_and_downgrade(db_url: str) -> None:
    """A log written at 0004 upgrades to 0005 with its rows, chain and append-only triggers
    intact, takes new entries whose redelivery is still a no-op, and downgrades back."""
    from alembic import command

    from copytrader.storage.audit import AuditRecord, AuditWriter, verify
    from copytrader.storage.db import session_factory

    def indexes(table: str) -> dict[str, tuple[str, ...]]:
        """The plain indexes (PostgreSQL lists a unique constraint's own index too)."""
        found = inspect(engine).get_indexes(table)
        return {i["name"] or "": tuple(i["column_names"] or ()) for i in found if not i.get("duplicates_constraint")}

    def unique(table: str) -> set[tuple[str, ...]]:
        return {tuple(c["column_names"]) for c in inspect(engine).get_unique_constraints(table)}

    def records(prefix: str) -> list[AuditRecord]:
        at = datetime(2026, 3, 2, 14, 30, tzinfo=UTC)
        return [AuditRecord("signal", f"{prefix}{i}", at, {"i": i}, signal_id=f"{prefix}{i}") for i in range(3)]

    def refuses_update_and_delete() -> None:
        for statement in ("UPDATE audit_log SET payload = '{}'", "DELETE FROM audit_log"):
            with pytest.raises(DBAPIError, match="append-only"), engine.begin() as conn:
                conn.execute(text(statement))

    migrate.upgrade(db_url, revision="0004")
    engine = make_engine(db_url)
    try:
        writer = AuditWriter(session_factory(engine))
        assert len(writer.append(records("old"))) == 3
        assert ("hash",) in unique("audit_log")
        assert migrate.upgrade(engine=engine, revision="0005").revision == "0005"
        assert ("hash",) not in unique("audit_log")
        assert {("kind", "natural_id")} <= unique("audit_log") and ("execution_id",) in unique("executions")
        assert indexes("audit_log") == {"ix_audit_log_signal_id": ("signal_id",)}
        assert indexes("executions") == {
            "ix_executions_occurred_at": ("occurred_at",),
            "ix_executions_client_order_id": ("client_order_id",),
            "ix_executions_signal_id": ("signal_id",),
            "ix_executions_broker_order_id": ("broker_order_id",),
            "ix_executions_corrects": ("corrects",),
        }
        with engine.connect() as conn:
            partial = (
                "SELECT sql FROM sqlite_master WHERE name = 'ix_executions_corrects'"
                if engine.dialect.name == "sqlite"
                else "SELECT indexdef FROM pg_indexes WHERE indexname = 'ix_executions_corrects'"
            )
            assert "corrects IS NOT NULL" in conn.execute(text(partial)).scalar_one()
        refuses_update_and_delete()
        assert [a.natural_id for a in writer.append(records("old") + records("new"))] == ["new0", "new1", "new2"]
        with session_factory(engine)() as db:
            assert verify(db).ok and verify(db).entries == 6
        with engine.begin() as conn:
            command.downgrade(migrate.alembic_config(conn), "0004")
        assert ("hash",) in unique("audit_log")
        assert "ix_executions_account_id_occurred_at" in indexes("executions")
        assert "ix_executions_occurred_at" not in indexes("executions")
        assert set(indexes("audit_log")) == {
            "ix_audit_log_signal_id",
            "ix_audit_log_client_order_id",
            "ix_audit_log_account_id_occurred_at",
        }
        refuses_update_and_delete()
        with session_factory(engine)() as db:
            assert verify(db).entries == 6 and verify(db).ok
    finally:
        engine.dispose()

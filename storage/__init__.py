"""Persistence: SQLAlchemy models, Alembic migrations, the audit chain, credentials and reports.

Nothing here runs Faust or touches Kafka: the agent side (``agents/tracking/storage_sink.py``) maps
records to plain rows (``storage.mapping``) and hands them to
:class:`~copytrader.storage.writer.BatchWriter` in a worker thread, so every module in this
package is ordinary blocking SQLAlchemy code, testable without a broker.
"""

DEFAULT_DATABASE_URL = "sqlite:///var/copytrader.db"

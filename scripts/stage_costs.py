"""CPU per copy of each stage off the copy path, replayed from captured records.

Why: on a shared 2-core machine the bench's per-process figures move with the load (a niced
worker that runs behind stretches the window, and its idle rate is measured while it still
catches up). Here the same records (captured from a bench run's topics with ``--capture``)
go through each stage's own code in this process, and ``time.process_time`` counts only the
CPU spent on them: the tracker's fill accounting, the database sink's mapping and writes
(SQLite in a temporary directory), the dashboard's live state, and Faust's JSON decoding
that each of them pays. The figures are per copy (per follower intent in the records).

Usage: ``python scripts/stage_costs.py --capture recs.pkl -- <bench arguments>`` once, then
``python scripts/stage_costs.py recs.pkl`` as often as needed (prints one JSON line);
``--stages store`` replays the sink only, ``--postgres URL`` writes to a fresh PostgreSQL
database on that server instead of SQLite (created and dropped by the script).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import pickle
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

STAGES = frozenset({"track", "store", "web"})
TOPICS = ("trade.signals", "orders.requests", "trade.executions", "order.errors", "positions.updates", "account.status")
Captured = list[tuple[str, int, int, bytes | None, bytes | None]]


async def capture(out: Path, bench_args: list[str], bootstrap: str) -> int:
    """Run ``copytrader bench`` and copy every record of its topics (prefix ``bench-<n>.``)."""
    from aiokafka import AIOKafkaConsumer

    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, auto_offset_reset="earliest", enable_auto_commit=False, metadata_max_age_ms=1000
    )
    await consumer.start()
    consumer.subscribe(pattern=r"^bench-\d+\.(" + "|".join(t.replace(".", r"\.") for t in TOPICS) + ")$")
    bench = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "copytrader.app.cli", "bench", "--quiet", *bench_args
    )
    records: Captured = []
    try:
        while bench.returncode is None:
            for tp, messages in (await consumer.getmany(timeout_ms=500, max_records=5000)).items():
                records += [(tp.topic.split(".", 1)[1], tp.partition, m.offset, m.key, m.value) for m in messages]
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(bench.wait(), 0.01)
    finally:
        await consumer.stop()
    await asyncio.to_thread(out.write_bytes, pickle.dumps(records))
    return len(records)


def timed(work: Callable[[], Any]) -> float:
    """CPU seconds of ``work()`` in this process (all threads)."""
    start = time.process_time()
    work()
    return time.process_time() - start


def by_topic(records: Captured) -> dict[str, list[tuple[int, int, bytes]]]:
    topics: dict[str, list[tuple[int, int, bytes]]] = {t: [] for t in TOPICS}
    for topic, partition, offset, _key, value in records:
        if value is not None and topic in topics:
            topics[topic].append((partition, offset, value))
    return topics


def chunks(items: list[Any], size: int) -> Iterable[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def store_costs(
    topics: dict[str, list[tuple[int, int, bytes]]], decoded: dict[str, list[Any]], batch: int, postgres: str | None
) -> dict[str, float]:
    """The database sink: mapping and writing in batches, topic by topic, into a fresh SQLite
    file or (``postgres``, a server URL) a fresh PostgreSQL database dropped afterwards."""
    from copytrader.storage import mapping
    from copytrader.storage.writer import BatchWriter

    costs: dict[str, float] = {}
    with fresh_database(postgres) as engine:
        writer = BatchWriter(engine)
        mappers = {
            "trade.signals": (mapping.signals_batch, [v for _, _, v in topics["trade.signals"]]),
            "orders.requests": (mapping.intents_batch, decoded["orders.requests"]),
            "trade.executions": (mapping.executions_batch, decoded["trade.executions"]),
            "order.errors": (mapping.errors_batch, decoded["order.errors"]),
            "positions.updates": (mapping.positions_batch, decoded["positions.updates"]),
        }
        for topic, (mapper, values) in mappers.items():
            start = time.process_time()
            rows = [mapper(c) for c in chunks(values, batch)]
            costs[f"store map {topic}"] = time.process_time() - start
            start = time.process_time()
            for row_batch in rows:
                writer.write(row_batch)
            costs[f"store write {topic}"] = time.process_time() - start
    return costs


@contextlib.contextmanager
def fresh_database(postgres: str | None) -> Iterator[Any]:
    """A migrated, empty database: a SQLite file in a temporary folder, or a PostgreSQL
    database created on the server of ``postgres`` and dropped after."""
    import uuid

    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    from copytrader.storage.db import make_engine
    from copytrader.storage.migrate import upgrade

    with contextlib.ExitStack() as cleanup:
        if postgres is None:
            tmp = cleanup.enter_context(tempfile.TemporaryDirectory())
            url = f"sqlite:///{tmp}/stage.db"
        else:
            base = make_url(postgres)
            name = f"ct_stage_{uuid.uuid4().hex[:12]}"
            admin = create_engine(base, isolation_level="AUTOCOMMIT")
            cleanup.callback(admin.dispose)
            with admin.connect() as conn:
                conn.execute(text(f'CREATE DATABASE "{name}"'))

            def drop() -> None:
                with admin.connect() as conn:
                    conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))

            cleanup.callback(drop)
            url = base.set(database=name).render_as_string(hide_password=False)
        engine = make_engine(url)
        cleanup.callback(engine.dispose)
        upgrade(engine=engine)
        yield engine


def measure(path: Path, batch: int, stages: frozenset[str] = STAGES, postgres: str | None = None) -> dict[str, Any]:
    import faust

    from copytrader.app.factory import empty_config
    from copytrader.core.records import AccountStatus, IntentBatch, errors_of, executions_of, positions_of
    from copytrader.tables.positions import apply_fill, positions_table
    from copytrader.web.live import LiveState, batch_sequence

    topics = by_topic(pickle.loads(path.read_bytes()))
    decoders: dict[str, Any] = {
        "orders.requests": IntentBatch.loads,
        "trade.executions": executions_of,  # a list per record
        "order.errors": errors_of,  # a list per record
        "positions.updates": positions_of,  # a list per record
        "account.status": AccountStatus.loads,
    }
    decoded: dict[str, list[Any]] = {}
    costs: dict[str, float] = {}
    for topic, decode in decoders.items():
        values = [v for _, _, v in topics[topic]]
        start = time.process_time()
        decoded[topic] = [decode(v) for v in values]
        costs[f"decode {topic}"] = time.process_time() - start
    # one (partition, sequence, item) per item of a batched record, numbered as the dashboard numbers them
    for batched in ("trade.executions", "positions.updates", "order.errors"):
        items = [
            (partition, batch_sequence(offset, index), item)
            for (partition, offset, _), record in zip(topics[batched], decoded[batched], strict=True)
            for index, item in enumerate(record)
        ]
        decoded[batched] = [item for _, _, item in items]
        topics[batched] = [(partition, sequence, b"") for partition, sequence, _ in items]
    copies = sum(len(b.intents) for b in decoded["orders.requests"])

    # the tracker: every execution decoded (above), fills applied to positions
    written: list[Any] = []

    def track() -> None:
        positions: dict[tuple[str, str], Any] = {}
        for ex in decoded["trade.executions"]:
            if ex.kind in ("fill", "partial_fill"):
                key = (ex.account_id, ex.symbol)
                positions[key], applied = apply_fill(positions.get(key), ex)
                if applied:
                    written.append(positions[key])

    changelog: list[bytes] = []

    def encode_changelog() -> None:
        """Each table write's changelog value, encoded as Faust encodes it (the positions
        table's own topic and serializer)."""
        app = faust.App("stage-costs", autodiscover=False)
        topic = positions_table(app, 1).changelog_topic
        dumps = app.serializers.dumps_value
        start = time.process_time()
        serializer = getattr(topic, "value_serializer", None)  # a Topic's; TopicT does not declare it
        changelog.extend(dumps(topic.value_type, p, serializer=serializer) or b"" for p in written)
        costs["track changelog encode"] = time.process_time() - start

    if "track" in stages:
        costs["track apply_fill"] = timed(track)
        encode_changelog()

    if "store" in stages:
        costs.update(store_costs(topics, decoded, batch, postgres))
    # the dashboard: the live state's apply of every record
    live = LiveState(empty_config())
    applies = {
        "trade.executions": live.apply_execution,
        "order.errors": live.apply_error,
        "positions.updates": live.apply_position,
    }
    for topic, apply in applies.items() if "web" in stages else ():
        applied = list(zip(decoded[topic], topics[topic], strict=True))
        start = time.process_time()
        for record, (partition, offset, _) in applied:
            apply(record, partition, offset)
        costs[f"web apply {topic}"] = time.process_time() - start
    if "web" in stages:
        costs["web apply account.status"] = timed(lambda: [live.apply_status(s) for s in decoded["account.status"]])

    per_copy = {name: round(seconds * 1000 / copies, 4) for name, seconds in costs.items()}
    return {
        "copies": copies,
        "records": {t: len(v) for t, v in topics.items()},
        "ms_per_copy": per_copy,
        "total_ms_per_copy": round(sum(per_copy.values()), 4),
        "store_ms_per_copy": round(sum(v for k, v in per_copy.items() if k.startswith("store ")), 4),
        "changelog_bytes_per_copy": round(sum(map(len, changelog)) / copies, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("records", type=Path)
    parser.add_argument("--capture", action="store_true", help="run the bench (arguments after --) and capture")
    parser.add_argument("--bootstrap", default="127.0.0.1:9092")
    parser.add_argument("--batch", type=int, default=500, help="records per database batch (the sink's BATCH_SIZE)")
    parser.add_argument("--stages", default="track,store,web", help="comma-separated stages to replay")
    parser.add_argument("--postgres", help="write to a fresh database on this PostgreSQL server instead of SQLite")
    args, rest = parser.parse_known_args()
    if args.capture:
        count = asyncio.run(capture(args.records, [a for a in rest if a != "--"], args.bootstrap))
        print(json.dumps({"captured": count, "to": str(args.records)}))
        return
    stages = frozenset(args.stages.split(","))
    if stages - STAGES:
        parser.error(f"unknown stage(s): {', '.join(sorted(stages - STAGES))}")
    print(json.dumps(measure(args.records, args.batch, stages, args.postgres)))


if __name__ == "__main__":
    main()

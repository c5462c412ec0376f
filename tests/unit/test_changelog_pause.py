"""Changelog partitions Faust pauses are paused in aiokafka too (``aiokafka_internals`` item 7,
session 27): Faust's own pause only stops it handing records out, and aiokafka went on
fetching the worker's own table changelogs, record by record, until the next rebalance."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import faust
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from faust.types import TP

from copytrader.agents.shared import aiokafka_internals


@pytest.fixture
async def worker() -> AsyncIterator[tuple[Any, AIOKafkaConsumer, str]]:
    """Faust's worker consumer for an app with one table, wired to an aiokafka consumer that
    never starts (pause and resume are bookkeeping: no broker is needed to see them)."""
    aiokafka_internals.apply_changelog_pause()
    app = faust.App("changelog-pause-test", autodiscover=False)
    table = app.Table("things", partitions=2)
    kafka = AIOKafkaConsumer(bootstrap_servers="127.0.0.1:1", group_id=None)
    consumer = app.consumer
    consumer._thread._consumer = kafka
    consumer._thread.thread_loop = asyncio.get_running_loop()  # the consumer thread's loop, here the test's
    yield consumer, kafka, table.changelog_topic.get_topic_name()
    with contextlib.suppress(asyncio.CancelledError):
        await kafka.stop()


async def _settled() -> None:
    await asyncio.sleep(0)  # the mirrored calls run on the consumer thread's loop, in order


async def test_a_changelog_faust_pauses_is_paused_in_aiokafka(worker: tuple[Any, AIOKafkaConsumer, str]) -> None:
    consumer, kafka, changelog = worker
    stream, log0, log1 = TP("things-in", 0), TP(changelog, 0), TP(changelog, 1)
    kafka.assign([TopicPartition(*tp) for tp in (stream, log0, log1)])

    consumer.pause_partitions({stream, log0, log1})  # what Faust does to everything on assignment
    await _settled()
    assert kafka.paused() == {log0, log1}  # a stream partition's pause stays Faust's own business
    assert {stream, log0, log1} <= consumer._paused_partitions  # Faust's bookkeeping as before

    consumer.resume_partitions({log1})  # recovery reading it, or a standby replica
    await _settled()
    assert kafka.paused() == {log0}
    consumer.pause_partitions({log1})  # recovery done
    consumer.resume_partitions({log1})  # and straight back: the last word holds
    await _settled()
    assert kafka.paused() == {log0}


async def test_a_partition_revoked_before_the_pause_runs_is_skipped(worker: tuple[Any, AIOKafkaConsumer, str]) -> None:
    consumer, kafka, changelog = worker
    kept, revoked = TP(changelog, 0), TP(changelog, 1)
    kafka.assign([TopicPartition(*kept), TopicPartition(*revoked)])
    consumer.pause_partitions({kept, revoked})
    kafka.assign([TopicPartition(*kept)])  # a rebalance got there first
    await _settled()
    assert kafka.paused() == {kept}

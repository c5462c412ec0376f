"""A direct consumer's first start on topics a Faust agent consumed: continue where it stopped.

Without this, switching an existing deployment from a Faust agent (whose group is the app id)
to a plain aiokafka consumer in a group of its own would replay the topics' whole retention
from ``earliest``. Run before subscribing, so no fetch can start from the wrong place; the
offsets are committed as the new group's own.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Sequence

from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError
from aiokafka.structs import OffsetAndMetadata, TopicPartition

log = logging.getLogger(__name__)


async def adopt_offsets(
    bootstrap_servers: str, group_id: str, from_groups: str | Sequence[str], topics: Collection[str]
) -> int:
    """Commit the first of ``from_groups`` that has offsets on ``topics`` as ``group_id``'s,
    unless ``group_id`` already has offsets on any of them. Returns how many partitions were
    adopted."""
    sources = (from_groups,) if isinstance(from_groups, str) else tuple(from_groups)
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers)
    adopted: dict[TopicPartition, int] = {}
    source = ""
    try:
        await admin.start()
        ours = await admin.list_consumer_group_offsets(group_id)
        if any(tp.topic in topics for tp in ours):
            return 0  # this group has its own history here
        for source in sources:
            theirs = await admin.list_consumer_group_offsets(source)
            adopted = {tp: meta.offset for tp, meta in theirs.items() if tp.topic in topics and meta.offset >= 0}
            if adopted:
                break
    except KafkaError as exc:
        log.warning("could not read the offsets of %s (%s); not adopting them", ", ".join(sources), exc)
        return 0
    finally:
        await admin.close()
    if not adopted:
        return 0
    seeder = AIOKafkaConsumer(bootstrap_servers=bootstrap_servers, group_id=group_id, enable_auto_commit=False)
    await seeder.start()
    try:
        seeder.assign(list(adopted))
        await seeder.commit({tp: OffsetAndMetadata(offset, "") for tp, offset in adopted.items()})
        log.info("group %s continues at %s from group %s", group_id, adopted, source)
    except KafkaError as exc:  # another member of this group got there first
        log.warning("adopting %s's offsets for %s failed: %s", source, group_id, exc)
        return 0
    finally:
        await seeder.stop()
    return len(adopted)


__all__ = ["adopt_offsets"]

"""A direct consumer's first start on topics a Faust agent consumed: continue where it stopped.

Without this, switching an existing deployment from a Faust agent (whose group is the app id)
to a plain aiokafka consumer in a group of its own would replay the topics' whole retention
from ``earliest``. Run before subscribing, so no fetch can start from the wrong place; the
offsets are committed as the new group's own.
"""

from __future__ import annotations

import logging
from collections.abc import Collection

from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError
from aiokafka.structs import OffsetAndMetadata

log = logging.getLogger(__name__)


async def adopt_offsets(bootstrap_servers: str, group_id: str, from_group: str, topics: Collection[str]) -> int:
    """Commit ``from_group``'s offsets on ``topics`` as ``group_id``'s, unless ``group_id``
    already has offsets on any of them. Returns how many partitions were adopted."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers)
    try:
        await admin.start()
        ours = await admin.list_consumer_group_offsets(group_id)
        if any(tp.topic in topics for tp in ours):
            return 0  # this group has its own history here
        theirs = await admin.list_consumer_group_offsets(from_group)
    except KafkaError as exc:
        log.warning("could not read %s's offsets (%s); not adopting them", from_group, exc)
        return 0
    finally:
        await admin.close()
    adopted = {tp: meta.offset for tp, meta in theirs.items() if tp.topic in topics and meta.offset >= 0}
    if not adopted:
        return 0
    seeder = AIOKafkaConsumer(bootstrap_servers=bootstrap_servers, group_id=group_id, enable_auto_commit=False)
    await seeder.start()
    try:
        seeder.assign(list(adopted))
        await seeder.commit({tp: OffsetAndMetadata(offset, "") for tp, offset in adopted.items()})
        log.info("group %s continues at %s from group %s", group_id, adopted, from_group)
    except KafkaError as exc:  # another member of this group got there first
        log.warning("adopting %s's offsets for %s failed: %s", from_group, group_id, exc)
        return 0
    finally:
        await seeder.stop()
    return len(adopted)


__all__ = ["adopt_offsets"]

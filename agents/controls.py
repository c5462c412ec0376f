"""Copy controls across processes: ``copy.controls`` commands applied into every worker's ``Controls``.

Why a plain aiokafka consumer with ``group_id=None`` and not a Faust agent or GlobalTable:
Faust agents of one app share a consumer group, so with two fan-out workers only one of them
would see a pause; a GlobalTable would do, but its changelog can only be written from inside
an agent's stream (the dashboard process has none), and its recovery is the part of Faust with
the most open reports. The topic is tiny (one compacted partition, one record per account), so
every fan-out worker simply reads it from the beginning and keeps following it: the last
record per key is the state. The web worker reads the same topic to show the switches.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition

from ..app.config import ConfigError, _parse_rule
from ..app.scaling import CopyRule
from ..app.topics import topic_name
from .planner import ALL_ACCOUNTS, Controls
from .supervise import restart_on_failure

if TYPE_CHECKING:
    from ..app.factory import CopyTraderApp

log = logging.getLogger(__name__)
TOPIC = "copy.controls"


@dataclass(frozen=True, slots=True)
class ControlCommand:
    """Pause or resume one follower (``account_id``) or all copying (``"*"``)."""

    command_id: str
    account_id: str
    paused: bool
    by: str = "system"
    at: float = 0.0

    def encode(self) -> bytes:
        return orjson.dumps({
            "command_id": self.command_id, "account_id": self.account_id, "paused": self.paused,
            "by": self.by, "at": self.at or time.time(),
        })

    @classmethod
    def decode(cls, raw: bytes) -> ControlCommand:
        """Raises ``ValueError`` on anything that is not a well-formed command."""
        data = orjson.loads(raw)
        if not isinstance(data, dict):
            raise ValueError("control command must be a JSON object")  # noqa: TRY004 - callers catch ValueError for any malformed record
        account = data.get("account_id")
        paused = data.get("paused")
        if not isinstance(account, str) or not account or not isinstance(paused, bool):
            raise ValueError("control command needs account_id (string) and paused (bool)")
        return cls(str(data.get("command_id", "")), account, paused, str(data.get("by", "")), float(data.get("at", 0.0)))


@dataclass(frozen=True, slots=True)
class RuleCommand:
    """Replace one follower's copy rule (and enabled flag) in one copy group.

    Same topic as pauses, key ``rule:<group>:<account>``: compaction keeps the latest rule per
    follower, so the topic is also where dashboard edits persist across restarts.
    """

    command_id: str
    group_id: str
    account_id: str
    rule: dict[str, Any]
    enabled: bool
    by: str = "system"
    at: float = 0.0

    @property
    def key(self) -> str:
        return f"rule:{self.group_id}:{self.account_id}"

    def encode(self) -> bytes:
        return orjson.dumps({
            "kind": "rule", "command_id": self.command_id, "group_id": self.group_id,
            "account_id": self.account_id, "rule": self.rule, "enabled": self.enabled,
            "by": self.by, "at": self.at or time.time(),
        })

    def parsed_rule(self) -> CopyRule:
        """Validated exactly as the YAML is; raises ``ValueError`` naming the field."""
        try:
            return _parse_rule(self.rule, "rule")
        except ConfigError as exc:
            raise ValueError(str(exc)) from None


def decode_command(raw: bytes) -> ControlCommand | RuleCommand:
    """Either kind of record on ``copy.controls``; ``ValueError`` for anything malformed."""
    data = orjson.loads(raw)
    if isinstance(data, dict) and data.get("kind") == "rule":
        fields = ("group_id", "account_id", "rule", "enabled")
        if not all(k in data for k in fields) or not isinstance(data["rule"], dict):
            raise ValueError("rule command needs group_id, account_id, rule (object) and enabled")
        return RuleCommand(str(data.get("command_id", "")), str(data["group_id"]), str(data["account_id"]),
                           data["rule"], bool(data["enabled"]), str(data.get("by", "")), float(data.get("at", 0.0)))
    return ControlCommand.decode(raw)


class ControlsFeed:
    """Follows ``copy.controls`` from the beginning and applies each command to ``controls``.

    ``caught_up`` is set once the records present at start have been applied, so callers that
    care (tests, readiness) can wait for the replay to finish.
    """

    def __init__(self, bootstrap: str, prefix: str, controls: Controls,
                 on_command: Callable[[ControlCommand, int], Any] | None = None) -> None:
        self.bootstrap = bootstrap
        self.topic = topic_name(prefix, TOPIC)
        self.controls = controls
        self.on_command = on_command
        self.caught_up = asyncio.Event()
        self._consumer: AIOKafkaConsumer | None = None

    async def run(self) -> None:
        """Consume until cancelled; a broker hiccup only delays commands, it never loses them."""
        await restart_on_failure(self._consume_and_close, "copy.controls consumer")

    async def _consume_and_close(self) -> None:
        try:
            await self._consume()
        finally:
            if self._consumer is not None:
                await self._consumer.stop()
                self._consumer = None

    async def _consume(self) -> None:
        self._consumer = consumer = AIOKafkaConsumer(
            self.topic, bootstrap_servers=self.bootstrap, group_id=None,
            auto_offset_reset="earliest", enable_auto_commit=False, fetch_max_wait_ms=20,
        )
        await consumer.start()
        ends = await self._end_offsets(consumer)
        if not any(ends.values()):
            self.caught_up.set()
        async for message in consumer:
            try:
                command = decode_command(message.value or b"")
                if isinstance(command, RuleCommand):
                    self.controls.set_rule(command.group_id, command.account_id, command.parsed_rule(), command.enabled)
                    log.info("rule applied: %s/%s by %s", command.group_id, command.account_id, command.by)
                else:
                    self.controls.set_paused(command.account_id, command.paused)
                    log.info("control applied: %s paused=%s by %s", command.account_id, command.paused, command.by)
            except ValueError as exc:
                log.warning("ignored malformed control command at offset %s: %s", message.offset, exc)
            else:
                if self.on_command is not None:
                    result = self.on_command(command, message.offset)
                    if asyncio.iscoroutine(result):
                        await result
            end = ends.get(TopicPartition(message.topic, message.partition), 0)
            if not self.caught_up.is_set() and message.offset + 1 >= end:
                self.caught_up.set()  # one partition: the replay of what existed at start is done

    async def _end_offsets(self, consumer: AIOKafkaConsumer) -> dict[TopicPartition, int]:
        for _ in range(50):
            parts = consumer.assignment()
            if parts:
                return dict(await consumer.end_offsets(list(parts)))
            await asyncio.sleep(0.05)
        return {}


def install(app: CopyTraderApp) -> None:
    """Every fan-out worker follows the switches (wired in ``app.factory._install``)."""
    runtime = app.runtime
    feed = ControlsFeed(runtime.settings.bootstrap_servers, runtime.settings.topic_prefix, runtime.planner.controls)
    runtime.extras["controls_feed"] = feed

    @app.task
    async def follow_controls() -> None:
        await feed.run()


__all__ = ["ALL_ACCOUNTS", "TOPIC", "ControlCommand", "ControlsFeed", "RuleCommand", "decode_command", "install"]

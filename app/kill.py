"""``copytrader kill``: the kill switch from a shell, for when the dashboard is not reachable.

A Faust app command: it uses the app's own producer and topics (the same ``copy.controls`` and
``orders.requests`` the web's button writes to), so it needs Kafka and the config, not a web
worker. See ``agents.shared.kill_switch`` for what it does and in which order.
"""

from __future__ import annotations

import getpass
import json
from typing import Any

import click
import faust

from ..agents.shared import kill_switch
from ..core.control_records import TOPIC as CONTROLS_TOPIC
from ..core.topics import topic_name


def install(app: Any) -> None:
    runtime = app.runtime

    async def kill(self: Any, by: str | None, yes: bool) -> None:
        """Kill switch: pause all copying, cancel every follower's working orders, close every follower position."""
        followers = runtime.config.follower_accounts()
        if not yes and not click.confirm(
            f"Pause all copying and flatten {len(followers)} follower account(s) on every platform?"
        ):
            raise click.Abort()
        controls: faust.TopicT = app.topic(
            topic_name(runtime.settings.topic_prefix, CONTROLS_TOPIC),
            key_serializer="raw",
            value_serializer="raw",
        )
        await app.maybe_start_producer()

        async def send_control(key: bytes, value: bytes) -> None:
            await controls.send(key=key, value=value)

        switch = await kill_switch.engage(runtime.config, by or getpass.getuser(), send_control, runtime.outbox.intents)
        await app.producer.flush()
        self.say(json.dumps(switch.report()))

    # Faust's ``app.command`` is untyped; registered by call, not as a decorator, for mypy.
    app.command(
        click.option("--by", default=None, help="Who engaged it (for the audit trail) [default: this user]."),
        click.option("--yes", is_flag=True, help="Do not ask for confirmation."),
        name="kill",
    )(kill)

"""FIX session settings (``brokers/options.py`` says why a schema): names as the config file and
the dashboard give them, bounds with their reason."""

from __future__ import annotations

from typing import Annotated

import msgspec

from ..options import PlatformOptions, Text, Timeout

#: HeartBtInt (108): 0 would switch heartbeats off; over an hour hides a dead session.
Heartbeat = Annotated[int, msgspec.Meta(ge=1, le=3600)]
#: QuickFIX's ReconnectInterval, in whole seconds: 0 would redial in a loop; over an hour is a
#: session nobody waits for.
Reconnect = Annotated[int, msgspec.Meta(ge=1, le=3600)]
#: ``FIX.4.4``, ``4.4`` or ``44`` (``config.py`` spells it out and refuses other versions):
#: YAML reads the last two as numbers, so small numbers are taken too.
Version = (
    Annotated[str, msgspec.Meta(min_length=1, max_length=16)]
    | Annotated[int, msgspec.Meta(ge=0, le=99)]
    | Annotated[float, msgspec.Meta(ge=0.0, le=99.0)]
)
#: A CompID as the broker assigns it (``config.comp_id`` checks its characters); an all-digit
#: one reads from YAML as a number.
CompId = Annotated[str, msgspec.Meta(max_length=64)] | Annotated[int, msgspec.Meta(ge=0, le=10**18)]


class FixOptions(PlatformOptions, frozen=True):
    fix_version: Version | None = None  # FIX.4.2 or FIX.4.4 (the default); wins over begin_string
    begin_string: Version | None = None  # the same, by its tag's name
    heartbeat_s: Heartbeat = 30
    store_dir: Text | None = None  # default: the data directory's fix/<namespace>/<session>
    store_namespace: Text = ""
    sender_comp_id: CompId | None = None  # required: the broker assigns both CompIDs
    target_comp_id: CompId | None = None
    reset_on_logon: bool = False
    persist_messages: bool = False  # keep sent app messages in the store (resends of orders still become gap fills)
    order_status_requests: bool = True  # the counterparty answers OrderStatusRequest (35=H)
    request_timeout_s: Timeout = 10.0
    logon_timeout_s: Timeout = 10.0
    reconnect_s: Reconnect = 1

"""The ``notifications:`` section: where alerts go (issue #17 item 5).

A webhook URL is a secret (anyone holding a Discord or Slack webhook URL can post to that
channel), so the file names the environment variable that holds it, never the URL itself.
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

from ...common import bounds as b
from .types import Id, OptionName

NoticeKind = Literal["reject", "outcome_unknown", "error", "disconnect", "reconnect", "drift", "guard", "kill_switch"]
TargetKind = Literal["discord", "slack", "generic"]
NOTICE_KINDS: tuple[str, ...] = NoticeKind.__args__  # type: ignore[attr-defined]  # Literal's members


class NotificationIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    id: Id
    kind: TargetKind = "generic"
    url_env: OptionName
    events: Annotated[list[NoticeKind], msgspec.Meta(min_length=1, max_length=len(NOTICE_KINDS))] | None = None
    per_minute: Annotated[int, msgspec.Meta(ge=1, le=120)] = 20
    timeout_s: Annotated[float, msgspec.Meta(ge=0.5, le=30)] = 5.0


Notifications = Annotated[list[NotificationIn], msgspec.Meta(max_length=b.MAX_OPTIONS)]

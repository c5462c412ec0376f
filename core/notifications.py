"""Notification targets, validated: the outgoing webhooks alerts are sent to (issue #17 item 5)."""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import urlsplit

from .schemas.notifications import NOTICE_KINDS, NotificationIn


class NotificationConfigError(ValueError):
    """``field``: the config path of the refused value."""

    def __init__(self, field_path: str, reason: str) -> None:
        super().__init__(f"{field_path}: {reason}")
        self.field = field_path
        self.reason = reason


@dataclass(frozen=True, slots=True)
class NotificationTarget:
    """One outgoing webhook: Discord- or Slack-compatible JSON, or our generic record."""

    target_id: str
    kind: str
    url: str = field(repr=False)
    events: frozenset[str] = frozenset(NOTICE_KINDS)
    per_minute: int = 20
    timeout_s: float = 5.0

    def wants(self, notice_kind: str) -> bool:
        return notice_kind in self.events


def parse_targets(items: list[NotificationIn], env: dict[str, str]) -> tuple[NotificationTarget, ...]:
    """Resolve each target's URL from the environment; refuse anything but http(s) URLs."""
    targets: list[NotificationTarget] = []
    seen: set[str] = set()
    for i, item in enumerate(items):
        where = f"notifications[{i}]"
        if item.id in seen:
            raise NotificationConfigError(f"{where}.id", f"duplicate notification id {item.id!r}")
        seen.add(item.id)
        url = env.get(item.url_env)
        if not url:
            raise NotificationConfigError(f"{where}.url_env", f"environment variable {item.url_env} is not set")
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise NotificationConfigError(f"{where}.url_env", f"{item.url_env} must hold an http(s) URL")
        targets.append(
            NotificationTarget(
                target_id=item.id,
                kind=item.kind,
                url=url,
                events=frozenset(item.events or NOTICE_KINDS),
                per_minute=item.per_minute,
                timeout_s=item.timeout_s,
            )
        )
    return tuple(targets)

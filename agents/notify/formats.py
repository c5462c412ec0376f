"""One notice as each kind of target expects it.

Discord: ``{"content", "username", "embeds"}`` (content at most 2,000 characters, an embed's
description at most 4,096; https://discord.com/developers/docs/resources/webhook#execute-webhook).
Slack incoming webhooks: ``{"text", "blocks"}`` (https://api.slack.com/messaging/webhooks).
Generic: our own flat record, for anything else (a pager bridge, a log collector).
"""

from __future__ import annotations

from typing import Any

from .notices import Notice

DISCORD_CONTENT = 2000
DISCORD_DESCRIPTION = 4096
SLACK_TEXT = 3000
COLOURS = {"critical": 0xD32F2F, "warning": 0xF9A825, "info": 0x2E7D32}
ICONS = {"critical": "🔴", "warning": "🟠", "info": "🟢"}


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def payload(kind: str, notice: Notice) -> dict[str, Any]:
    line = f"{ICONS.get(notice.severity, '')} {notice.title}".strip()
    if kind == "discord":
        return {
            "username": "CopyTrader",
            "content": _cut(line, DISCORD_CONTENT),
            "embeds": [
                {
                    "title": _cut(notice.title, 256),
                    "description": _cut(notice.text, DISCORD_DESCRIPTION),
                    "color": COLOURS.get(notice.severity, 0),
                    "timestamp": notice.at.isoformat(),
                    "fields": [{"name": k, "value": _cut(v, 1024), "inline": True} for k, v in notice.fields.items()][
                        :25
                    ],
                }
            ],
            "allowed_mentions": {"parse": []},  # never ping @everyone from a broker's error text
        }
    if kind == "slack":
        details = "".join(f"\n• {k}: {v}" for k, v in notice.fields.items())
        return {"text": _cut(f"{line}\n{notice.text}{details}", SLACK_TEXT)}
    return {
        "event": notice.kind,
        "severity": notice.severity,
        "title": notice.title,
        "text": notice.text,
        "account_id": notice.account_id,
        "at": notice.at.isoformat(),
        "fields": notice.fields,
    }


def summary(skipped: list[Notice]) -> Notice:
    """What was held back by a target's rate, as one notice: counts per kind and account."""
    kinds: dict[str, int] = {}
    for notice in skipped:
        kinds[notice.kind] = kinds.get(notice.kind, 0) + 1
    accounts = sorted({n.account_id for n in skipped if n.account_id})
    worst = "critical" if any(n.severity == "critical" for n in skipped) else "warning"
    text = ", ".join(f"{count} {kind}" for kind, count in sorted(kinds.items()))
    shown = ", ".join(accounts[:20]) + (f" and {len(accounts) - 20} more" if len(accounts) > 20 else "")
    return Notice(
        "error",
        worst,
        f"{len(skipped)} more alerts (rate limit)",
        f"{text}" + (f" on {shown}" if shown else ""),
        fields={"held_back": str(len(skipped))},
    )

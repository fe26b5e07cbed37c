"""`slack`: a Slack incoming webhook (https://api.slack.com/messaging/webhooks).

The message: `text` is the notification title (what push notifications and
clients without blocks show); one attachment carries the colour bar of the
worst firing severity (or resolved) and the blocks: a header, the rendered body,
and a section per alert with its fields. Slack's limits (50 blocks, 150
characters in a header, 3000 in a section, 10 fields of 2000) are kept by
truncating; the alerts past MAX_ALERTS are counted, not listed.

Slack answers 200 `ok`; errors are 4xx with a short code in the body
(`invalid_payload`, `channel_not_found`), 429 with Retry-After, or 5xx.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Self

from engine.channels import preview as wire
from engine.channels.formatting import COLOURS, headline, summary, tone, truncate, value_text
from engine.common.secret import Secret
from engine.config.model import Channel as ChannelConfig
from engine.config.secrets import reveal
from engine.httpclient.client import HttpChannel, HttpOptions, Settings
from engine.notify.base import AlertView, Notification

MAX_ALERTS = 20  # with header, body and the "more" line: well under 50 blocks


@dataclass(frozen=True, slots=True)
class SlackSettings:
    url: str | Secret
    channel: str | None
    username: str | None
    icon_emoji: str | None
    http: HttpOptions


def escape(text: str) -> str:
    """Slack mrkdwn: &, < and > are control characters (links, mentions)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def alert_fields(a: AlertView) -> list[dict[str, str]]:
    """Up to 10 `*Name*\\nvalue` fields: status, severity, value, then labels."""
    pairs = [("Status", a.status), ("Severity", a.severity)]
    value = value_text(a.value)
    if value:
        pairs.append(("Value", value))
    if a.acknowledged:
        pairs.append(("Acknowledged by", str(a.acknowledged.get("by", ""))))
    pairs += [(k, v) for k, v in a.labels.items() if k not in ("rule", "severity")]
    return [
        {"type": "mrkdwn", "text": truncate(f"*{escape(k)}*\n{escape(v)}", 2000)}
        for k, v in pairs[:10]
    ]


def payload(n: Notification, st: SlackSettings | None = None) -> dict[str, Any]:
    title = headline(n)
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": truncate(title, 150)}}
    ]
    if n.body.strip():
        blocks.append(
            {"type": "section", "text": {"type": "mrkdwn", "text": truncate(escape(n.body), 3000)}}
        )
    for a in n.alerts[:MAX_ALERTS]:
        head = f"*{escape(summary(a))}*"
        description = a.annotations.get("description")
        if description:
            head += "\n" + escape(description)
        blocks.append(
            {
                "type": "section",
                "text": {"type": "mrkdwn", "text": truncate(head, 3000)},
                "fields": alert_fields(a),
            }
        )
    if len(n.alerts) > MAX_ALERTS:
        more = f"… and {len(n.alerts) - MAX_ALERTS} more alerts"
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": more}]})
    out: dict[str, Any] = {
        "text": title,
        "attachments": [{"color": COLOURS[tone(n)], "fallback": title, "blocks": blocks}],
    }
    if st is not None:
        for key in ("channel", "username", "icon_emoji"):
            v = getattr(st, key)
            if v is not None:
                out[key] = v
    return out


class SlackChannel(HttpChannel):
    type_name: ClassVar[str] = "slack"

    def __init__(self, name: str, settings: SlackSettings) -> None:
        super().__init__(name, settings.http, (settings.url,))
        self.settings = settings

    @classmethod
    def from_config(cls, config: ChannelConfig) -> Self:
        s = Settings(config)
        icon = s.optional("icon_emoji")
        if icon is not None and not (len(icon) > 2 and icon[0] == icon[-1] == ":"):
            raise ValueError(
                f"icon_emoji: expected an emoji name like :rotating_light:, got {icon!r}"
            )
        settings = SlackSettings(
            url=s.url("url"),
            channel=s.optional("channel"),
            username=s.optional("username"),
            icon_emoji=icon,
            http=HttpOptions.read(s),
        )
        s.done()
        return cls(config.name, settings)

    def preview(self, n: Notification) -> list[wire.Wire]:
        return [wire.http(self.http, "POST", self.settings.url, payload=payload(n, self.settings))]

    async def send(self, n: Notification) -> None:
        await self.http.request(
            "POST", reveal(self.settings.url), payload=payload(n, self.settings)
        )

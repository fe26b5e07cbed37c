"""`teams`: Microsoft Teams through a Workflows (Power Automate) webhook or a
legacy incoming webhook, both of which take an Adaptive Card message
(https://learn.microsoft.com/microsoftteams/platform/task-modules-and-cards/cards/cards-reference).

The card: a coloured header container with the title, the rendered body, then
per alert a container with its summary and a FactSet (status, severity, value,
labels). Cards are kept well under Teams' 28 KB by listing at most MAX_ALERTS.

Workflows answer 202; legacy webhooks answer 200 `1`, and report their own
upstream failures as 200 with "Webhook message delivery failed ..." in the body,
which is an error here (retryable when the upstream said 429 or 5xx).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, ClassVar, Self

from engine.channels import preview as wire
from engine.channels.formatting import (
    Tone,
    alert_tone,
    headline,
    summary,
    tone,
    truncate,
    value_text,
)
from engine.common.secret import Secret
from engine.config.model import Channel as ChannelConfig
from engine.config.secrets import reveal
from engine.httpclient.client import HttpChannel, HttpOptions, Settings
from engine.httpclient.redaction import redact_url
from engine.notify.base import AlertView, Notification, iso

MAX_ALERTS = 20
# Adaptive Card container styles and text colours per tone
STYLES: dict[Tone, str] = {
    "info": "accent",
    "warning": "warning",
    "critical": "attention",
    "emergency": "attention",
    "resolved": "good",
}
TEXT_COLOURS: dict[Tone, str] = {
    "info": "Accent",
    "warning": "Warning",
    "critical": "Attention",
    "emergency": "Attention",
    "resolved": "Good",
}
_UPSTREAM = re.compile(r"HTTP error (\d{3})")


@dataclass(frozen=True, slots=True)
class TeamsSettings:
    url: str | Secret
    http: HttpOptions


def facts(a: AlertView) -> list[dict[str, str]]:
    out = [{"title": "Status", "value": a.status}, {"title": "Severity", "value": a.severity}]
    value = value_text(a.value)
    if value:
        out.append({"title": "Value", "value": value})
    out.append({"title": "Since", "value": iso(a.starts_at) or ""})
    out += [{"title": k, "value": v} for k, v in a.labels.items() if k not in ("rule", "severity")]
    return out


def alert_block(a: AlertView) -> dict[str, Any]:
    items: list[dict[str, Any]] = [
        {
            "type": "TextBlock",
            "text": truncate(summary(a), 500),
            "weight": "Bolder",
            "wrap": True,
            "color": TEXT_COLOURS[alert_tone(a)],
        }
    ]
    description = a.annotations.get("description")
    if description:
        items.append({"type": "TextBlock", "text": truncate(description, 2000), "wrap": True})
    items.append({"type": "FactSet", "facts": facts(a)})
    return {"type": "Container", "separator": True, "items": items}


def card(n: Notification) -> dict[str, Any]:
    body: list[dict[str, Any]] = [
        {
            "type": "Container",
            "style": STYLES[tone(n)],
            "bleed": True,
            "items": [
                {
                    "type": "TextBlock",
                    "text": truncate(headline(n), 500),
                    "weight": "Bolder",
                    "size": "Large",
                    "wrap": True,
                }
            ],
        }
    ]
    if n.body.strip():
        body.append({"type": "TextBlock", "text": truncate(n.body, 4000), "wrap": True})
    body += [alert_block(a) for a in n.alerts[:MAX_ALERTS]]
    if len(n.alerts) > MAX_ALERTS:
        more = f"… and {len(n.alerts) - MAX_ALERTS} more alerts"
        body.append({"type": "TextBlock", "text": more, "isSubtle": True, "wrap": True})
    return {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "msteams": {"width": "Full"},
        "body": body,
    }


def payload(n: Notification) -> dict[str, Any]:
    return {
        "type": "message",
        "attachments": [
            {
                "contentType": "application/vnd.microsoft.card.adaptive",
                "contentUrl": None,
                "content": card(n),
            }
        ],
    }


class TeamsChannel(HttpChannel):
    type_name: ClassVar[str] = "teams"

    def __init__(self, name: str, settings: TeamsSettings) -> None:
        super().__init__(name, settings.http, (settings.url,))
        self.settings = settings

    @classmethod
    def from_config(cls, config: ChannelConfig) -> Self:
        s = Settings(config)
        settings = TeamsSettings(url=s.url("url"), http=HttpOptions.read(s))
        s.done()
        return cls(config.name, settings)

    def preview(self, n: Notification) -> list[wire.Wire]:
        return [wire.http(self.http, "POST", self.settings.url, payload=payload(n))]

    async def send(self, n: Notification) -> None:
        url = reveal(self.settings.url)
        reply = await self.http.request("POST", url, payload=payload(n))
        text = reply.text()
        if "delivery failed" in text:
            m = _UPSTREAM.search(text)
            upstream = int(m.group(1)) if m else 0
            raise self.http.error(
                f"POST {redact_url(url)}: HTTP {reply.status} but Teams says: {truncate(text, 200)}",
                retryable=upstream == 429 or upstream >= 500,
            )

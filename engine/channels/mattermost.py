"""`mattermost`: a Mattermost incoming webhook
(https://developers.mattermost.com/integrate/webhooks/incoming/).

Slack-compatible message attachments: `text` has the title in bold and the
rendered body; each alert is an attachment with its own colour bar (severity,
or green when resolved), summary, description and short fields. Mattermost
answers 200 `ok`; a message over its 16383 characters is refused, so at most
MAX_ALERTS alerts are listed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Self

from engine.channels import preview as wire
from engine.channels.formatting import COLOURS, alert_tone, headline, summary, truncate, value_text
from engine.common.secret import Secret
from engine.config.model import Channel as ChannelConfig
from engine.config.secrets import reveal
from engine.httpclient.client import HttpChannel, HttpOptions, Settings
from engine.notify.base import AlertView, Notification

MAX_ALERTS = 20


@dataclass(frozen=True, slots=True)
class MattermostSettings:
    url: str | Secret
    channel: str | None
    username: str | None
    http: HttpOptions


def attachment(a: AlertView) -> dict[str, Any]:
    fields = [
        {"short": True, "title": "Status", "value": a.status},
        {"short": True, "title": "Severity", "value": a.severity},
    ]
    value = value_text(a.value)
    if value:
        fields.append({"short": True, "title": "Value", "value": value})
    fields += [
        {"short": True, "title": k, "value": v}
        for k, v in a.labels.items()
        if k not in ("rule", "severity")
    ]
    return {
        "fallback": truncate(summary(a), 300),
        "color": COLOURS[alert_tone(a)],
        "title": truncate(summary(a), 300),
        "text": truncate(a.annotations.get("description", ""), 1000),
        "fields": fields,
    }


def payload(n: Notification, st: MattermostSettings | None = None) -> dict[str, Any]:
    text = f"**{headline(n)}**"
    if n.body.strip():
        text += "\n" + truncate(n.body.strip(), 4000)
    attachments = [attachment(a) for a in n.alerts[:MAX_ALERTS]]
    if len(n.alerts) > MAX_ALERTS:
        attachments.append({"text": f"… and {len(n.alerts) - MAX_ALERTS} more alerts"})
    out: dict[str, Any] = {"text": text, "attachments": attachments}
    if st is not None:
        if st.channel is not None:
            out["channel"] = st.channel
        if st.username is not None:
            out["username"] = st.username
    return out


class MattermostChannel(HttpChannel):
    type_name: ClassVar[str] = "mattermost"

    def __init__(self, name: str, settings: MattermostSettings) -> None:
        super().__init__(name, settings.http, (settings.url,))
        self.settings = settings

    @classmethod
    def from_config(cls, config: ChannelConfig) -> Self:
        s = Settings(config)
        settings = MattermostSettings(
            url=s.url("url"),
            channel=s.optional("channel"),
            username=s.optional("username"),
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

"""`discord`: a Discord webhook (https://discord.com/developers/docs/resources/webhook).

`content` holds the title and rendered body; each alert is an embed coloured by
its severity (green when resolved) with its labels and value as fields. Discord's
limits: content 2000 characters, 10 embeds, 6000 characters across them, 25
fields of 256 / 1024. `allowed_mentions` is empty so a label value such as
`@everyone` cannot ping anybody.

Discord answers 204 (or 200 with `?wait=true`); 429 carries Retry-After.
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
from engine.notify.base import AlertView, Notification, iso

MAX_EMBEDS = 10
EMBED_BUDGET = 5500  # of Discord's 6000, leaving room for the "more" footer


@dataclass(frozen=True, slots=True)
class DiscordSettings:
    url: str | Secret
    username: str | None
    http: HttpOptions


def colour(a: AlertView) -> int:
    return int(COLOURS[alert_tone(a)].lstrip("#"), 16)


def embed(a: AlertView) -> dict[str, Any]:
    fields = [
        {"name": "Status", "value": a.status, "inline": True},
        {"name": "Severity", "value": a.severity, "inline": True},
    ]
    value = value_text(a.value)
    if value:
        fields.append({"name": "Value", "value": truncate(value, 1024), "inline": True})
    fields += [
        {"name": truncate(k, 256), "value": truncate(v, 1024) or "-", "inline": True}
        for k, v in a.labels.items()
        if k not in ("rule", "severity")
    ]
    out: dict[str, Any] = {
        "title": truncate(summary(a), 256),
        "color": colour(a),
        "fields": fields[:25],
        "timestamp": iso(a.starts_at),
    }
    description = a.annotations.get("description")
    if description:
        out["description"] = truncate(description, 1024)
    return out


def _size(e: dict[str, Any]) -> int:
    return (
        len(e["title"])
        + len(e.get("description", ""))
        + sum(len(f["name"]) + len(f["value"]) for f in e["fields"])
    )


def payload(n: Notification, st: DiscordSettings | None = None) -> dict[str, Any]:
    content = f"**{headline(n)}**"
    if n.body.strip():
        content += "\n" + n.body.strip()
    embeds: list[dict[str, Any]] = []
    used = 0
    for a in n.alerts[:MAX_EMBEDS]:
        e = embed(a)
        if used + _size(e) > EMBED_BUDGET:
            break
        embeds.append(e)
        used += _size(e)
    if embeds and len(embeds) < len(n.alerts):
        embeds[-1]["footer"] = {"text": f"… and {len(n.alerts) - len(embeds)} more alerts"}
    out: dict[str, Any] = {
        "content": truncate(content, 2000),
        "embeds": embeds,
        "allowed_mentions": {"parse": []},
    }
    if st is not None and st.username is not None:
        out["username"] = st.username
    return out


class DiscordChannel(HttpChannel):
    type_name: ClassVar[str] = "discord"

    def __init__(self, name: str, settings: DiscordSettings) -> None:
        super().__init__(name, settings.http, (settings.url,))
        self.settings = settings

    @classmethod
    def from_config(cls, config: ChannelConfig) -> Self:
        s = Settings(config)
        settings = DiscordSettings(
            url=s.url("url"), username=s.optional("username"), http=HttpOptions.read(s)
        )
        s.done()
        return cls(config.name, settings)

    def preview(self, n: Notification) -> list[wire.Wire]:
        return [wire.http(self.http, "POST", self.settings.url, payload=payload(n, self.settings))]

    async def send(self, n: Notification) -> None:
        await self.http.request(
            "POST", reveal(self.settings.url), payload=payload(n, self.settings)
        )

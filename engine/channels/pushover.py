"""`pushover`: the Pushover message API (https://pushover.net/api).

One form-encoded POST {base_url}/1/messages.json: token, user, title (250
characters), message (1024), timestamp and priority. The priority is that of
the worst firing severity through `priorities` (info -1, warning 0, critical 1,
emergency 2); a notification with nothing firing goes out at the info priority,
so a recovery never rings like an emergency. Priority 2 (repeat until
acknowledged) requires `retry` and `expire`: 60 s and 1 h.

Pushover answers 200 `{"status": 1}`; invalid input is 4xx with `"status": 0`
and `errors`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar, Self

from engine.channels import preview as wire
from engine.channels.formatting import headline, summary, tone, truncate
from engine.common.secret import Secret
from engine.config.model import Channel as ChannelConfig
from engine.config.secrets import reveal
from engine.httpclient.client import HttpChannel, HttpOptions, Settings, join
from engine.httpclient.redaction import redact_url
from engine.notify.base import Notification

DEFAULT_PRIORITIES = {"info": -1, "warning": 0, "critical": 1, "emergency": 2}
EMERGENCY_RETRY = 60  # seconds between repeats of a priority 2 message (at least 30)
EMERGENCY_EXPIRE = 3600  # repeats stop after this (at most 10800)


@dataclass(frozen=True, slots=True)
class PushoverSettings:
    token: str | Secret
    user: str | Secret
    base_url: str | Secret
    priorities: Mapping[str, int]
    http: HttpOptions


def priority(n: Notification, priorities: Mapping[str, int]) -> int:
    t = tone(n)
    return priorities["info" if t == "resolved" else t]


def form(n: Notification, st: PushoverSettings) -> dict[str, str]:
    message = n.body.strip() or "\n".join(f"[{a.status}] {summary(a)}" for a in n.alerts)
    prio = priority(n, st.priorities)
    out = {
        "token": reveal(st.token),
        "user": reveal(st.user),
        "title": truncate(headline(n), 250),
        "message": truncate(message or headline(n), 1024),
        "priority": str(prio),
    }
    if n.alerts:
        out["timestamp"] = str(int(max(a.ends_at or a.starts_at for a in n.alerts)))
    if prio == 2:
        out["retry"] = str(EMERGENCY_RETRY)
        out["expire"] = str(EMERGENCY_EXPIRE)
    return out


class PushoverChannel(HttpChannel):
    type_name: ClassVar[str] = "pushover"

    def __init__(self, name: str, settings: PushoverSettings) -> None:
        super().__init__(name, settings.http, (settings.token, settings.user, settings.base_url))
        self.settings = settings

    @classmethod
    def from_config(cls, config: ChannelConfig) -> Self:
        s = Settings(config)
        raw = s.get("priorities", {})
        if not isinstance(raw, Mapping) or set(raw) - set(DEFAULT_PRIORITIES):
            raise ValueError("priorities: expected a mapping of info/warning/critical/emergency")
        priorities = dict(DEFAULT_PRIORITIES)
        for k, v in raw.items():
            if isinstance(v, bool) or not isinstance(v, int) or not -2 <= v <= 2:
                raise ValueError(f"priorities.{k}: expected an integer from -2 to 2")
            priorities[k] = v
        settings = PushoverSettings(
            token=s.text("token"),
            user=s.text("user"),
            base_url=s.url("base_url", "https://api.pushover.net"),
            priorities=priorities,
            http=HttpOptions.read(s),
        )
        s.done()
        return cls(config.name, settings)

    def preview(self, n: Notification) -> list[wire.Wire]:
        url = join(self.settings.base_url, "/1/messages.json")
        return [wire.http(self.http, "POST", url, form=form(n, self.settings))]

    async def send(self, n: Notification) -> None:
        url = join(self.settings.base_url, "/1/messages.json")
        reply = await self.http.request("POST", url, form=form(n, self.settings))
        data = reply.json()
        if not isinstance(data, dict) or data.get("status") != 1:
            errors = data.get("errors") if isinstance(data, dict) else None
            raise self.http.error(
                f"POST {redact_url(url)}: HTTP {reply.status} without status 1: {errors or reply.text()[:200]}",
                retryable=False,
            )

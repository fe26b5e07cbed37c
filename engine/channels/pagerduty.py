"""`pagerduty`: PagerDuty Events API v2 (https://developer.pagerduty.com/docs/events-api-v2/).

One event per alert, POST {base_url}/v2/enqueue: `trigger` for a firing alert,
`acknowledge` for a firing one somebody acknowledged, `resolve` for a resolved
one. `dedup_key` is the alert fingerprint, stable across restarts, so PagerDuty
keeps one incident per alert and a re-sent trigger only adds a log entry: a
retry of the whole notification is safe.

Severity: info → info, warning → warning, critical and emergency → critical.
PagerDuty answers 202; 400 is an invalid event, 429 a throttled integration.
Events are sent in order and the first failure stops the notification (its
retry re-sends all of them, which PagerDuty deduplicates).
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, Self

from engine.channels import preview as wire
from engine.channels.formatting import summary, truncate
from engine.common.secret import Secret
from engine.config.model import Channel as ChannelConfig
from engine.config.secrets import reveal
from engine.httpclient.client import HttpChannel, HttpOptions, Settings, join
from engine.notify.base import AlertView, Notification, iso

Action = Literal["trigger", "acknowledge", "resolve"]
SEVERITIES = {"info": "info", "warning": "warning", "critical": "critical", "emergency": "critical"}


@dataclass(frozen=True, slots=True)
class PagerDutySettings:
    routing_key: str | Secret
    base_url: str | Secret
    source: str | None
    client: str
    client_url: str | Secret | None
    http: HttpOptions


def action(a: AlertView) -> Action:
    if a.status == "resolved":
        return "resolve"
    return "acknowledge" if a.acknowledged else "trigger"


def event(a: AlertView, st: PagerDutySettings, routing_key: str) -> dict[str, Any]:
    """The Events API v2 body for one alert (`routing_key` revealed by the caller)."""
    act = action(a)
    out: dict[str, Any] = {
        "routing_key": routing_key,
        "event_action": act,
        "dedup_key": a.fingerprint,
    }
    if act != "trigger":
        return out  # acknowledge and resolve need only the key
    source = st.source or a.labels.get("host") or a.labels.get("instance") or socket.gethostname()
    out["payload"] = {
        "summary": truncate(summary(a), 1024),
        "source": source,
        "severity": SEVERITIES.get(a.severity, "warning"),
        "timestamp": iso(a.starts_at),
        "class": a.rule,
        "custom_details": {
            "labels": dict(a.labels),
            "annotations": dict(a.annotations),
            "value": a.value,
            "fingerprint": a.fingerprint,
            "rule": a.rule,
        },
    }
    out["client"] = st.client
    if st.client_url is not None:
        out["client_url"] = reveal(st.client_url)
    links = [
        {"href": v, "text": k}
        for k, v in a.annotations.items()
        if k in ("runbook", "runbook_url", "dashboard", "dashboard_url")
        and v.startswith(("http://", "https://"))
    ]
    if links:
        out["links"] = links
    return out


class PagerDutyChannel(HttpChannel):
    type_name: ClassVar[str] = "pagerduty"
    closes_incidents: ClassVar[bool] = True

    def __init__(self, name: str, settings: PagerDutySettings) -> None:
        super().__init__(
            name, settings.http, (settings.routing_key, settings.base_url, settings.client_url)
        )
        self.settings = settings

    @classmethod
    def from_config(cls, config: ChannelConfig) -> Self:
        s = Settings(config)
        settings = PagerDutySettings(
            routing_key=s.text("routing_key"),
            base_url=s.url("base_url", "https://events.pagerduty.com"),
            source=s.optional("source"),
            client=s.string("client", "vigil"),
            client_url=s.url("client_url") if s.has("client_url") else None,
            http=HttpOptions.read(s),
        )
        s.done()
        return cls(config.name, settings)

    def events(self, n: Notification) -> tuple[str, list[dict[str, Any]]]:
        """The Events API URL and the event of each alert of `n`."""
        st = self.settings
        key = reveal(st.routing_key)
        return join(st.base_url, "/v2/enqueue"), [event(a, st, key) for a in n.alerts]

    def preview(self, n: Notification) -> list[wire.Wire]:
        url, events = self.events(n)
        return [wire.http(self.http, "POST", url, payload=e) for e in events]

    async def send(self, n: Notification) -> None:
        url, events = self.events(n)
        for e in events:
            await self.http.request("POST", url, payload=e)

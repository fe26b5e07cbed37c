"""`opsgenie`: the Opsgenie Alert API (https://docs.opsgenie.com/docs/alert-api).

Per alert, with `alias` = the alert fingerprint (stable across restarts):
  firing        POST {base_url}/v2/alerts                                  create
  acknowledged  POST {base_url}/v2/alerts/{alias}/acknowledge?identifierType=alias
  resolved      POST {base_url}/v2/alerts/{alias}/close?identifierType=alias
Opsgenie deduplicates creates by alias while the alert is open, so re-sending a
notification is safe. Authorization: `GenieKey <api_key>`. Opsgenie processes
requests asynchronously and answers 202.

Priority: emergency P1, critical P2, warning P3, info P5. Limits kept: message
130 characters, description 15000, 20 tags of 50, details as strings.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Self
from urllib.parse import quote

from engine.channels import preview as wire
from engine.channels.formatting import summary, truncate
from engine.common.secret import Secret
from engine.config.model import Channel as ChannelConfig
from engine.config.secrets import reveal
from engine.httpclient.client import HttpChannel, HttpOptions, Settings, join
from engine.notify.base import AlertView, Notification

PRIORITIES = {"emergency": "P1", "critical": "P2", "warning": "P3", "info": "P5"}
RESPONDER_TYPES = ("team", "user", "escalation", "schedule")


@dataclass(frozen=True, slots=True)
class OpsgenieSettings:
    api_key: str | Secret
    base_url: str | Secret
    responders: tuple[tuple[str, str], ...]  # (type, name)
    tags: tuple[str, ...]
    http: HttpOptions


def responder(kind: str, name: str) -> dict[str, str]:
    # users are addressed by username, the other kinds by name
    return {"type": kind, "username" if kind == "user" else "name": name}


def create_body(a: AlertView, st: OpsgenieSettings) -> dict[str, Any]:
    details = {k: truncate(v, 500) for k, v in a.labels.items()}
    if a.value is not None:
        details["value"] = truncate(
            a.value if isinstance(a.value, str) else json.dumps(a.value, default=str), 500
        )
    details["rule"] = a.rule
    description = a.annotations.get("description") or summary(a)
    tags = [*st.tags, a.severity, a.rule]
    out: dict[str, Any] = {
        "message": truncate(summary(a), 130),
        "alias": a.fingerprint,
        "description": truncate(description, 15000),
        "priority": PRIORITIES.get(a.severity, "P3"),
        "tags": list(dict.fromkeys(truncate(t, 50) for t in tags))[:20],
        "details": details,
        "source": "vigil",
    }
    if "host" in a.labels:
        out["entity"] = truncate(a.labels["host"], 512)
    if st.responders:
        out["responders"] = [responder(k, name) for k, name in st.responders]
    return out


def action_request(a: AlertView) -> tuple[str, dict[str, Any]] | None:
    """(path, body) for acknowledge or close; None for a firing, unacknowledged alert."""
    alias = quote(a.fingerprint, safe="")
    if a.status == "resolved":
        return f"/v2/alerts/{alias}/close?identifierType=alias", {
            "source": "vigil",
            "note": "resolved",
        }
    if a.acknowledged:
        body = {"source": "vigil", "user": str(a.acknowledged.get("by") or "vigil")}
        note = a.acknowledged.get("note")
        if note:
            body["note"] = truncate(str(note), 25000)
        return f"/v2/alerts/{alias}/acknowledge?identifierType=alias", body
    return None


class OpsgenieChannel(HttpChannel):
    type_name: ClassVar[str] = "opsgenie"
    closes_incidents: ClassVar[bool] = True

    def __init__(self, name: str, settings: OpsgenieSettings) -> None:
        super().__init__(name, settings.http, (settings.api_key, settings.base_url))
        self.settings = settings

    @classmethod
    def from_config(cls, config: ChannelConfig) -> Self:
        s = Settings(config)
        responders: list[tuple[str, str]] = []
        for i, r in enumerate(s.get("responders", ())):
            kind, name = (r.get("type"), r.get("name")) if isinstance(r, Mapping) else (None, None)
            if kind not in RESPONDER_TYPES or not isinstance(name, str) or not name:
                raise ValueError(
                    f"responders[{i}]: expected {{type: team|user|escalation|schedule, name: ...}}"
                )
            responders.append((kind, name))
        tags = tuple(reveal(t) for t in s.texts("tags", ()))
        settings = OpsgenieSettings(
            api_key=s.text("api_key"),
            base_url=s.url("base_url", "https://api.opsgenie.com"),
            responders=tuple(responders),
            tags=tags,
            http=HttpOptions.read(s),
        )
        s.done()
        return cls(config.name, settings)

    def requests(self, n: Notification) -> list[tuple[str, dict[str, Any], dict[str, str]]]:
        """(URL, body, headers) of each request `n` makes: one per alert."""
        st = self.settings
        headers = {"Authorization": f"GenieKey {reveal(st.api_key)}"}
        out = []
        for a in n.alerts:
            act = action_request(a)
            path, body = ("/v2/alerts", create_body(a, st)) if act is None else act
            out.append((join(st.base_url, path), body, headers))
        return out

    def preview(self, n: Notification) -> list[wire.Wire]:
        return [
            wire.http(self.http, "POST", url, payload=body, headers=headers)
            for url, body, headers in self.requests(n)
        ]

    async def send(self, n: Notification) -> None:
        for url, body, headers in self.requests(n):
            await self.http.request("POST", url, payload=body, headers=headers)

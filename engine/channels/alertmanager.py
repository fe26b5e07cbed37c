"""`alertmanager`: Prometheus Alertmanager's API v2 (POST {url}/api/v2/alerts).

The body is a JSON list, one entry per alert, as Prometheus sends them:
`labels` (the alert's labels plus `alertname` = the rule and `severity`),
`annotations`, `startsAt`, `endsAt`. For a firing alert `endsAt` is now +
`resolve_timeout` (5m), and the pipeline re-sends every firing alert every
`resend_delay` (default min(1m, resolve_timeout / 4)) as Prometheus does (see
am_timing.py): Alertmanager keeps an alert active while vigil says it fires, and
resolves it by itself only if vigil stops sending. For a resolved alert
`endsAt` is the resolve time, which resolves it at once.

With `urls` (the members of an Alertmanager cluster) every member gets the
alerts, as Prometheus does; the send succeeds when one member took them, since
the cluster gossips and deduplicates notifications. Alertmanager answers 200.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Self

from engine.channels import preview as wire
from engine.channels.formatting import value_text
from engine.common.secret import Secret
from engine.config.model import Channel as ChannelConfig
from engine.config.secrets import reveal
from engine.errors import DeliveryError
from engine.httpclient.client import HttpChannel, HttpOptions, Settings, join
from engine.notify import am_timing
from engine.notify.base import AlertView, Notification, iso

_NOT_LABEL = re.compile(r"[^a-zA-Z0-9_]")


@dataclass(frozen=True, slots=True)
class AlertmanagerSettings:
    urls: tuple[str | Secret, ...]
    headers: Mapping[str, str | Secret]
    resolve_timeout: float
    resend_delay: float
    http: HttpOptions


def label_name(name: str) -> str:
    """A Prometheus label name: [a-zA-Z_][a-zA-Z0-9_]* (others are refused)."""
    out = _NOT_LABEL.sub("_", name)
    return "_" + out if not out or out[0].isdigit() else out


def alert(a: AlertView, now: float, resolve_timeout: float) -> dict[str, Any]:
    labels = {label_name(k): v for k, v in a.labels.items() if v != ""}  # empty = absent
    labels["alertname"] = a.rule
    labels["severity"] = a.severity
    annotations = {label_name(k): v for k, v in a.annotations.items()}
    value = value_text(a.value)
    if value:
        annotations.setdefault("value", value)
    if a.status == "resolved":
        ends = max(a.ends_at if a.ends_at is not None else now, a.starts_at)
    else:
        ends = now + resolve_timeout
    return {
        "labels": labels,
        "annotations": annotations,
        "startsAt": iso(a.starts_at),
        "endsAt": iso(ends),
    }


def payload(n: Notification, now: float, resolve_timeout: float) -> list[dict[str, Any]]:
    return [alert(a, now, resolve_timeout) for a in n.alerts]


class AlertmanagerChannel(HttpChannel):
    type_name: ClassVar[str] = "alertmanager"
    # a resolved alert must reach Alertmanager even when silenced or acknowledged
    # here, or it stays active there until endsAt
    closes_incidents: ClassVar[bool] = True

    def __init__(self, name: str, settings: AlertmanagerSettings) -> None:
        super().__init__(name, settings.http, (*settings.urls, *settings.headers.values()))
        self.settings = settings

    @classmethod
    def from_config(cls, config: ChannelConfig) -> Self:
        s = Settings(config)
        if s.has("url") == s.has("urls"):
            raise ValueError("set exactly one of url (one Alertmanager) and urls (a cluster)")
        urls = (s.url("url"),) if s.has("url") else s.urls("urls")
        s.duration("resolve_timeout", am_timing.RESOLVE_TIMEOUT)  # their format, first
        s.duration("resend_delay", am_timing.RESEND_DELAY)
        resend_delay, resolve_timeout = am_timing.timing(config.settings)
        settings = AlertmanagerSettings(
            urls=urls,
            headers=s.headers(),
            resolve_timeout=resolve_timeout,
            resend_delay=resend_delay,
            http=HttpOptions.read(s),
        )
        s.done()
        return cls(config.name, settings)

    def requests(self, n: Notification) -> list[tuple[str, list[dict[str, Any]], dict[str, str]]]:
        """(URL, body, headers) for each Alertmanager of the cluster: the same body."""
        st = self.settings
        body = payload(n, time.time(), st.resolve_timeout)
        headers = {k: reveal(v) for k, v in st.headers.items()}
        return [(join(u, "/api/v2/alerts"), body, headers) for u in st.urls]

    def preview(self, n: Notification) -> list[wire.Wire]:
        return [
            wire.http(self.http, "POST", url, payload=body, headers=headers)
            for url, body, headers in self.requests(n)
        ]

    async def send(self, n: Notification) -> None:
        results = await asyncio.gather(
            *(
                self.http.request("POST", url, payload=body, headers=headers)
                for url, body, headers in self.requests(n)
            ),
            return_exceptions=True,
        )
        errors = [r for r in results if isinstance(r, BaseException)]
        if len(errors) < len(results):
            return  # one member has them; the cluster shares them
        for e in errors:
            if not isinstance(e, DeliveryError):
                raise e  # a bug or a cancellation, not a delivery failure
        failures = [e for e in errors if isinstance(e, DeliveryError)]
        if len(failures) == 1:
            raise failures[0]
        retry_afters = [e.retry_after for e in failures if e.retry_after is not None]
        raise DeliveryError(
            "every Alertmanager failed: " + "; ".join(str(e) for e in failures),
            retryable=any(e.retryable for e in failures),
            retry_after=min(retry_afters) if retry_afters else None,
        )

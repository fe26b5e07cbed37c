"""The Channel protocol and the Notification a channel receives.

A channel only formats and sends, and says whether a failure is worth
retrying. Routing, silences, inhibition, grouping, rate limits, retries, the
circuit breaker and journaling all live once, in the pipeline, not in channels.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar, Literal, Protocol, Self

from engine.config.model import EMPTY
from engine.config.model import Channel as ChannelConfig
from engine.errors import DeliveryError

__all__ = ["AlertView", "Channel", "ChannelConfig", "DeliveryError", "Notification", "iso"]

Status = Literal["firing", "resolved"]


@functools.lru_cache(maxsize=16384)  # an alert's start: once per channel and notification
def iso(ts: float | None) -> str | None:
    """UTC ISO-8601 with milliseconds and Z, the one time format on the wire."""
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True, slots=True)
class AlertView:
    """An alert as notifications show it (wall-clock times, rendered annotations)."""

    fingerprint: str
    rule: str
    status: Status
    severity: str
    labels: Mapping[str, str]
    annotations: Mapping[str, str]
    value: Any
    starts_at: float
    ends_at: float | None = None
    acknowledged: Mapping[str, Any] | None = None  # {"by", "note", "until"}
    silenced: bool = False
    stale: bool = False  # a collector its rule reads is down: the last known state

    def as_dict(self) -> dict[str, Any]:
        """The alert object of SPEC.md's webhook body."""
        return {
            "fingerprint": self.fingerprint,
            "rule": self.rule,
            "status": self.status,
            "severity": self.severity,
            "labels": dict(self.labels),
            "annotations": dict(self.annotations),
            "value": self.value,
            "starts_at": iso(self.starts_at),
            "ends_at": iso(self.ends_at),
            "acknowledged": dict(self.acknowledged) if self.acknowledged else None,
            "silenced": self.silenced,
            "stale": self.stale,
        }


@dataclass(frozen=True, slots=True)
class Notification:
    """One message to one channel: a group of alerts, firing and resolved.

    `key` is the idempotency key: stable for the same alerts in the same states, so
    a re-send after a crash carries the same key (webhook `Idempotency-Key`,
    PagerDuty `dedup_key` is per alert: the fingerprint). `title`/`body`/`html`
    are rendered by the pipeline from the channel's templates (or its defaults).
    """

    channel: str
    group_key: str
    status: Status
    alerts: tuple[AlertView, ...]
    key: str
    title: str
    body: str
    html: str | None = None
    kind: Literal["alerts", "digest", "test", "escalation"] = "alerts"
    escalation_level: int = 0
    extra: Mapping[str, Any] = field(default_factory=lambda: EMPTY)

    @property
    def firing(self) -> tuple[AlertView, ...]:
        return tuple(a for a in self.alerts if a.status == "firing")

    @property
    def resolved(self) -> tuple[AlertView, ...]:
        return tuple(a for a in self.alerts if a.status == "resolved")

    def as_dict(self) -> dict[str, Any]:
        """The generic webhook body of SPEC.md."""
        out: dict[str, Any] = {
            "version": 1,
            "channel": self.channel,
            "group_key": self.group_key,
            "status": self.status,
            "alerts": [a.as_dict() for a in self.alerts],
        }
        if self.kind != "alerts":
            out["kind"] = self.kind
        if self.escalation_level:
            out["escalation_level"] = self.escalation_level
        if self.kind in ("digest", "test"):
            out["title"] = self.title
            out["body"] = self.body
        return out


class Channel(Protocol):
    """A notification channel type.

    `from_config` parses the channel's settings (already schema-checked; secrets are
    `Secret`s: call `reveal()` only where the value goes on the wire) into typed,
    frozen settings, raising ValueError for what the schema cannot express.

    `send` delivers one Notification or raises DeliveryError: `retryable=True` for
    failures a retry may fix (timeouts, connection errors, HTTP 5xx and 429 with
    `retry_after` from Retry-After), `retryable=False` for the rest (HTTP 4xx, bad
    payload). It never retries itself, never sleeps for backoff, and never puts a
    secret into the error message. The channel owns its clients (an HttpClient,
    an SMTP connection) and releases them in `aclose`.

    Optional class attributes the dispatcher reads: `concurrency` (how many
    notifications it sends at once, default 1: a channel keeping one connection,
    such as SMTP, must not be entered twice), `uses_text` (False: title/body are
    not rendered for it), `closes_incidents` (it also gets resolves of silenced
    or acknowledged alerts).
    """

    type_name: ClassVar[str]
    name: str

    @classmethod
    def from_config(cls, config: ChannelConfig) -> Self: ...

    async def send(self, n: Notification) -> None: ...

    async def aclose(self) -> None: ...

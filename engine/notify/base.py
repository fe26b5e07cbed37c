"""The Notification a channel receives (the Channel protocol: engine/channels/base.py).

A channel only formats and sends, and says whether a failure is worth
retrying. Routing, silences, inhibition, grouping, rate limits, retries, the
circuit breaker and journaling all live once, in the pipeline, not in channels.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from engine.common.timefmt import iso
from engine.config.model import EMPTY

__all__ = ["AlertView", "Notification", "iso"]

Status = Literal["firing", "resolved"]


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
    kind: Literal["alerts", "digest", "test", "escalation", "report"] = "alerts"
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
        if self.kind in ("digest", "test", "report"):
            out["title"] = self.title
            out["body"] = self.body
        return out

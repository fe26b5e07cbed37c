"""The formatting helpers the chat channels share: an alert's tone (severity or
resolved) and its colour, one-line summaries, headlines, truncation and values.

Separate from engine/httpclient/client.py because it is about how a notification
reads in a chat message, not about sending HTTP; only channels use it.
"""

from __future__ import annotations

from typing import Any, Literal

from engine.notify.base import AlertView, Notification

__all__ = [
    "COLOURS",
    "SEVERITY_RANK",
    "Tone",
    "alert_tone",
    "headline",
    "summary",
    "tone",
    "truncate",
    "value_text",
]

SEVERITY_RANK = {"info": 0, "warning": 1, "critical": 2, "emergency": 3}
COLOURS = {
    "info": "#439FE0",
    "warning": "#FFA500",
    "critical": "#E01E5A",
    "emergency": "#8B0000",
    "resolved": "#2EB67D",
}
Tone = Literal["info", "warning", "critical", "emergency", "resolved"]
_TONES: dict[str, Tone] = {
    "info": "info",
    "warning": "warning",
    "critical": "critical",
    "emergency": "emergency",
}


def alert_tone(a: AlertView) -> Tone:
    """`resolved`, or the alert's severity (an unknown one counts as warning)."""
    return "resolved" if a.status == "resolved" else _TONES.get(a.severity, "warning")


def tone(n: Notification) -> Tone:
    """`resolved` when nothing fires, else the highest firing severity."""
    firing = n.firing
    if not firing:
        return "resolved"
    return alert_tone(max(firing, key=lambda a: SEVERITY_RANK.get(a.severity, 1)))


def summary(a: AlertView) -> str:
    """The alert's one-line headline: its summary annotation, else rule and labels."""
    s = a.annotations.get("summary")
    if s:
        return s
    labels = ", ".join(f"{k}={v}" for k, v in a.labels.items() if k not in ("rule", "severity"))
    return f"{a.rule} ({labels})" if labels else a.rule


def truncate(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: max(0, limit - 1)] + "…"


def value_text(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return "" if v is None else str(v)


def headline(n: Notification) -> str:
    """The notification's title; a plain one when the template rendered nothing
    (services refuse an empty title)."""
    if n.title.strip():
        return n.title.strip()
    rules = sorted({a.rule for a in n.alerts})
    what = ", ".join(rules[:3]) + (" …" if len(rules) > 3 else "")
    return f"[{n.status.upper()}] {what}" if what else f"vigil {n.kind}"

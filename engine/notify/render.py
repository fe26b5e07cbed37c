"""Notifications as channels get them: each alert's view (built once, shared
by every group and channel it goes to) and the notification rendered from
views with the channel's templates. Separate because groups and escalation
both make notifications, the same way.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal

from engine.config.model import Route
from engine.notify.alert_state import AlertState, Status
from engine.notify.base import AlertView, Notification, iso
from engine.notify.keys import idempotency_key, key_item

if TYPE_CHECKING:
    from engine.notify.host import Renders

__all__ = ["note", "view"]


def view(p: Renders, a: AlertState, status: Status, acked: bool, now: float) -> AlertView:
    """The alert as notifications show it; built once and shared by the groups
    of all its channels (a 1,000-alert group to three channels builds 1,000
    views, not 3,000) until something it shows changes."""
    p.refresh_marks(a, now)
    key = (a.rev, status, acked, a.silenced)
    if a.view is None or a.view_key != key:
        v = _make_view(a, status, acked)
        a.view, a.view_key, a.key_item = v, key, key_item(v)
    return a.view


def note(
    p: Renders,
    channel: str,
    route: Route | None,
    gkey: str,
    glabels: Mapping[str, str],
    views: tuple[AlertView, ...],
    *,
    kind: Literal["alerts", "escalation"] = "alerts",
    level: int = 0,
    key: str | None = None,
) -> Notification:
    """A notification of `views` to `channel`, its text rendered (a template that
    fails is journaled as `template_failed`); `key` defaults to idempotency_key()."""
    status: Status = "resolved"
    for v in views:
        if v.status == "firing":
            status = "firing"
            break
    title = body = ""
    html: str | None = None
    if channel not in p.textless:  # textless channels never read the text
        r = p.renderer.render(
            channel=channel,
            route=route,
            status=status,
            alerts=views,
            group_key=gkey,
            group_labels=glabels,
            kind=kind,
            escalation_level=level,
        )
        if r.error is not None:
            p.emit(
                {
                    "event": "template_failed",
                    "channel": channel,
                    "group_key": gkey,
                    "error": r.error,
                }
            )
        title, body, html = r.title, r.body, r.html
    return Notification(
        channel=channel,
        group_key=gkey,
        status=status,
        alerts=views,
        key=key if key is not None else idempotency_key(channel, gkey, views),
        title=title,
        body=body,
        html=html,
        kind=kind,
        escalation_level=level,
    )


def _make_view(a: AlertState, status: Status, acked: bool) -> AlertView:
    return AlertView(
        fingerprint=a.fp,
        rule=a.rule,
        status=status,
        severity=a.severity,
        labels=a.labels,
        annotations=a.annotations,
        value=a.value,
        starts_at=a.starts_at,
        ends_at=a.ends_at if status == "resolved" else None,
        acknowledged=_ack_view(a.ack) if acked and a.ack is not None else None,
        silenced=a.silenced,  # view() brought the marks up to date
        stale=a.stale,
    )


def _ack_view(ack: Mapping[str, Any]) -> dict[str, Any]:
    """An acknowledgement as notifications show it: `until` in RFC 3339, as every
    time vigil shows (None: until the alert resolves)."""
    until = ack.get("until")
    return {
        "by": ack.get("by"),
        "note": ack.get("note"),
        "until": iso(until) if isinstance(until, int | float) else None,
    }

"""The notification a preview shows, and a channel's preview of it.

`vigil notify-test CHANNEL --preview` and `POST /api/v1/channels/{name}/preview`
both come here. The alert is one of:

    the test alert     what `vigil notify-test CHANNEL` sends (marked_test_notification;
                       the dispatcher's send_test sends this very notification)
    a stored alert     an active alert of the journal's state or of the API's
                       answer (stored_view: epoch or RFC 3339 times alike)
    a rule's alert     synthesized from a rule of the config with given labels and
                       value, its annotations rendered from the rule's templates

Apart from the test alert, the title, body and HTML are rendered from the
channel's templates as the pipeline renders them (engine/notify/render.py): the
first route that takes the alert to this channel picks the route templates and
the group labels. Then the channel, built from the config as the sender builds
it, encodes what it would send (its `preview`, engine/channels/preview.py).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from engine.channels.preview import Wire
from engine.config.model import EMPTY, Config, Route
from engine.errors import DeliveryError, VigilError
from engine.notify import router
from engine.notify.base import AlertView, Notification, iso
from engine.notify.keys import group_key, idempotency_key
from engine.plugins import registry
from engine.rules.state import fingerprint
from engine.templates import renderer as templates

__all__ = ["Choice", "PreviewError", "marked_test_notification", "preview", "preview_live"]

TEST_RULE = "vigil_test"
_RESERVED = ("rule", "severity")  # the rule's own, never an alert label


class PreviewError(VigilError, ValueError):
    """A choice that names nothing (an unknown channel, rule or alert): one line."""


@dataclass(frozen=True, slots=True)
class Choice:
    """Which alert to preview: `stored` (an alert record, with its `fingerprint`),
    or `alert` (the fingerprint of an active alert of the state preview_live
    reads), else `rule` with `labels` and `value`, else the test alert;
    `resolved`: its resolve rather than its firing."""

    stored: Mapping[str, Any] | None = None
    alert: str | None = None
    rule: str | None = None
    labels: Mapping[str, str] = field(default_factory=lambda: EMPTY)
    value: Any = None
    resolved: bool = False


def marked_test_notification(channel: str, now: float) -> Notification:
    """The clearly marked test notification of `vigil notify-test CHANNEL`."""
    view = AlertView(
        fingerprint="test",
        rule=TEST_RULE,
        status="firing",
        severity="info",
        labels={"channel": channel},
        annotations={"summary": f"Test notification from vigil for channel {channel}"},
        value=None,
        starts_at=now,
    )
    return Notification(
        channel=channel,
        group_key=f"test|{channel}",
        status="firing",
        alerts=(view,),
        key=hashlib.sha256(f"test|{channel}|{now!r}".encode()).hexdigest(),
        title=f"[TEST] vigil test notification for {channel}",
        body=(
            f"This is a test notification sent by `vigil notify-test {channel}`.\n"
            "No alert is firing. If you can read this, the channel works.\n"
        ),
        kind="test",
    )


def _epoch(v: Any) -> float | None:
    if isinstance(v, int | float) and not isinstance(v, bool):
        return float(v)
    if isinstance(v, str) and v:
        try:
            return datetime.fromisoformat(v.replace("Z", "+00:00")).timestamp()
        except ValueError:
            return None
    return None


def stored_view(stored: Mapping[str, Any], *, resolved: bool, now: float) -> AlertView:
    """An alert of engine/journal/store.py's state (plus its "fingerprint") or of
    the API's alert JSON, as its notification shows it."""
    starts = next(
        (
            t
            for t in (_epoch(stored.get(k)) for k in ("starts_at", "firing_since", "pending_since"))
            if t is not None
        ),
        now,
    )
    ack = stored.get("ack") or stored.get("acknowledged")
    shown_ack = None
    if isinstance(ack, Mapping):
        until = _epoch(ack.get("until"))
        shown_ack = {"by": ack.get("by"), "note": ack.get("note"), "until": iso(until)}
    return AlertView(
        fingerprint=str(stored.get("fingerprint") or ""),
        rule=str(stored.get("rule") or ""),
        status="resolved" if resolved else "firing",
        severity=str(stored.get("severity") or "warning"),
        labels={str(k): str(v) for k, v in (stored.get("labels") or {}).items()},
        annotations={str(k): str(v) for k, v in (stored.get("annotations") or {}).items()},
        value=stored.get("value"),
        starts_at=starts,
        ends_at=now if resolved else None,
        acknowledged=shown_ack,
        silenced=bool(stored.get("silenced")),
        stale=bool(stored.get("stale")),
    )


def rule_view(
    config: Config,
    rule_id: str,
    labels: Mapping[str, str],
    value: Any,
    *,
    resolved: bool,
    now: float,
) -> AlertView:
    """The alert `rule_id` would raise with `labels` (the rule's own win, as the
    evaluator merges them) and `value`, annotations rendered from its templates."""
    rule = next((r for r in config.rules() if r.id == rule_id), None)
    if rule is None:
        known = ", ".join(sorted(r.id for r in config.rules())[:20]) or "none"
        raise PreviewError(f"unknown rule {rule_id!r} (rules: {known})")
    merged = {k: v for k, v in labels.items() if k not in _RESERVED}
    merged.update(rule.labels)
    annotations = templates.render_annotations(
        rule.annotations, merged, value, rule=rule.id, severity=rule.severity
    )
    return AlertView(
        fingerprint=fingerprint(rule.id, merged),
        rule=rule.id,
        status="resolved" if resolved else "firing",
        severity=rule.severity,
        labels=merged,
        annotations=annotations,
        value=value,
        starts_at=now,
        ends_at=now if resolved else None,
    )


def _route(config: Config, channel: str, v: AlertView) -> tuple[int, Route | None]:
    """The first route taking `v` to `channel` (its index), else none."""
    rule = next((r for r in config.rules() if r.id == v.rule), None)
    match = router.match_labels(v.labels, v.rule, v.severity)
    for idx, r in router.targets(config, match, rule):
        if channel in r.channels:
            return idx, r
    return -1, None


def notification(config: Config, channel: str, v: AlertView, *, text: bool) -> Notification:
    """`v`'s notification to `channel`, rendered with the channel's templates
    (`text`: the channel reads them; the pipeline skips rendering otherwise)."""
    idx, route = _route(config, channel, v)
    match = router.match_labels(v.labels, v.rule, v.severity)
    by = route.group_by if route is not None else ("rule",)
    glabels = dict(match) if "..." in by else {k: match.get(k, "") for k in by}
    gkey = group_key(channel, idx, glabels)
    n = Notification(
        channel=channel,
        group_key=gkey,
        status=v.status,
        alerts=(v,),
        key=idempotency_key(channel, gkey, (v,)),
        title="",
        body="",
    )
    if not text:
        return n
    types = {c.name: c.type for c in config.channels}
    r = templates.Renderer(config, types).render(
        channel=channel,
        route=route,
        status=v.status,
        alerts=(v,),
        group_key=gkey,
        group_labels=glabels,
    )
    return replace(n, title=r.title, body=r.body, html=r.html)


def choose(config: Config, channel: str, c: Choice, now: float, *, text: bool) -> Notification:
    """The notification `c` names, to `channel`."""
    if c.stored is not None:
        v = stored_view(c.stored, resolved=c.resolved, now=now)
        return notification(config, channel, v, text=text)
    if c.rule is not None:
        v = rule_view(config, c.rule, c.labels, c.value, resolved=c.resolved, now=now)
        return notification(config, channel, v, text=text)
    n = marked_test_notification(channel, now)
    if not c.resolved:
        return n
    gone = tuple(replace(a, status="resolved", ends_at=now) for a in n.alerts)
    return replace(n, status="resolved", alerts=gone)


async def preview(config: Config, channel: str, c: Choice, now: float) -> dict[str, Any]:
    """{"channel", "type", "notification": {title, body, html, ...}, "wire": [Wire]}
    for `c` sent to `channel`. PreviewError for an unknown channel or rule, or a
    channel type without `preview`."""
    cfg = config.channel(channel)
    if cfg is None:
        known = ", ".join(sorted(ch.name for ch in config.channels)) or "none"
        raise PreviewError(f"unknown channel {channel!r} (channels: {known})")
    cls = registry.load("vigil.channels", cfg.type)
    if not hasattr(cls, "preview"):
        raise PreviewError(f"channel type {cfg.type} (a plugin) cannot preview")
    n = choose(config, channel, c, now, text=getattr(cls, "uses_text", True))
    ch = cls.from_config(cfg)  # as the sender builds it: no connection until a send
    try:
        wires: list[Wire] = ch.preview(n)
    except DeliveryError as e:  # e.g. an exec argv template that fails for this alert
        raise PreviewError(f"{channel}: the send would fail: {e}") from None
    finally:
        await ch.aclose()
    return {
        "channel": channel,
        "type": cfg.type,
        "notification": {
            "kind": n.kind,
            "status": n.status,
            "group_key": n.group_key,
            "key": n.key,
            "title": n.title,
            "body": n.body,
            "html": n.html,
            "alerts": [a.as_dict() for a in n.alerts],
        },
        "wire": [w.as_dict() for w in wires],
    }


async def preview_live(
    config: Config, state: Mapping[str, Any], channel: str, c: Choice, now: float
) -> dict[str, Any]:
    """preview() with `c.alert` taken from the daemon's folded state
    (engine/journal/store.py); KeyError for an unknown channel or alert."""
    if config.channel(channel) is None:
        raise KeyError(channel)
    if c.alert is not None and c.stored is None:
        record = state["alerts"].get(c.alert)
        if record is None:
            raise KeyError(c.alert)
        c = replace(c, stored={**record, "fingerprint": c.alert})
    return await preview(config, channel, c, now)

"""Escalation: a route's `escalate` levels, each telling more channels once an
alert has fired unacknowledged for its `after`. Per alert and route, the level
reached (`AlertState.esc_done`, journaled as `escalated`); channels told only by
escalation hear of the alert's end the same way (`esc_channels`). An alert that
is acknowledged, flapping, silenced or inhibited does not escalate; the end of
that reschedules it.

Separate from the Pipeline (which coordinates) and from groups because it is a
policy of its own, timed per alert from its start, not per group; the functions
take the pipeline for the alerts' routes, marks and views.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from engine.config.model import Route
from engine.notify import render
from engine.notify.alert_state import AlertState
from engine.notify.base import Notification
from engine.notify.groups import MUTE_RECHECK
from engine.notify.timeintervals import muted

if TYPE_CHECKING:
    from engine.notify.pipeline import Pipeline

__all__ = ["escalate", "note", "schedule", "schedule_all"]


def schedule_all(p: Pipeline, now: float) -> None:
    for a in p.alerts.values():
        if a.status == "firing":
            schedule(p, a, now)


def schedule(p: Pipeline, a: AlertState, now: float, recheck: float | None = None) -> None:
    """Set when `a` is looked at next for escalation: the next level's deadline
    of each of its routes, or `recheck`; none while it cannot escalate
    (acknowledged, flapping, silenced, inhibited: their end reschedules)."""
    nxt: float | None = recheck
    if (
        p._escalating
        and a.status == "firing"
        and not (a.acked(now) or a.fp in p.flapping or p._muted(a, now))
    ):
        for idx, r in p._targets(a):
            done = a.esc_done.get(idx, 0)
            if done < len(r.escalate):
                at = max(now, a.starts_at + r.escalate[done].after)
                nxt = at if nxt is None else min(nxt, at)
    if nxt != a.esc_next:
        a.esc_next = nxt
        if nxt is not None:
            p._push(nxt, "esc", a.fp)


def escalate(p: Pipeline, a: AlertState, now: float, out: list[Notification]) -> None:
    """`a`'s escalation time came: tell the channels of every level now due."""
    a.esc_next = None
    recheck: float | None = None
    if not (a.acked(now) or a.fp in p.flapping or p._muted(a, now)):
        for idx, r in p._targets(a):
            if a.esc_done.get(idx, 0) >= len(r.escalate):
                continue
            if muted(r, p.intervals, now):
                recheck = now + MUTE_RECHECK
                continue
            _escalate_route(p, a, idx, r, now, out)
    schedule(p, a, now, recheck)


def _escalate_route(
    p: Pipeline, a: AlertState, idx: int, r: Route, now: float, out: list[Notification]
) -> None:
    while a.esc_done.get(idx, 0) < len(r.escalate):
        level = a.esc_done.get(idx, 0) + 1
        step = r.escalate[level - 1]
        if a.starts_at + step.after > now:
            return
        a.esc_done[idx] = level
        chans = [c for c in step.channels if c in p.channel_types]
        for ch in chans:
            if ch not in r.channels:  # route channels hear of the end from their group
                a.esc_channels[ch] = level
            p.rate.offer(note(p, a, ch, level, now, r), now, out)
        p._events.append(
            {
                "event": "escalated",
                "alert": a.fp,
                "rule": a.rule,
                "level": level,
                "channels": chans,
            }
        )


def note(
    p: Pipeline, a: AlertState, channel: str, level: int, now: float, route: Route | None = None
) -> Notification:
    """The escalation notification of `a` at `level` to `channel` (its end too)."""
    view = render.view(p, a, a.status, a.acked(now), now)
    gkey = f"{channel}|escalation{level}|{a.fp}"
    return render.note(p, channel, route, gkey, {}, (view,), kind="escalation", level=level)

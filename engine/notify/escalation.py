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

from collections.abc import Sequence
from typing import TYPE_CHECKING

from engine.config.model import Route
from engine.notify import render
from engine.notify.alert_state import AlertState
from engine.notify.base import Notification
from engine.notify.groups import MUTE_RECHECK
from engine.notify.hold import FREE, Hold
from engine.notify.timeintervals import muted

if TYPE_CHECKING:
    from engine.notify.host import Escalates

__all__ = ["blocked", "escalate", "note", "plan", "schedule", "schedule_all", "why_not"]


def schedule_all(p: Escalates, now: float) -> None:
    for a in p.alerts.values():
        if a.status == "firing":
            schedule(p, a, now)


def plan(a: AlertState, routes: Sequence[tuple[int, Route]]) -> list[tuple[int, int, float]]:
    """The levels `a` has still to reach, per route: (route index, level, when it
    is due: the alert's start + the level's `after`). Pure."""
    out: list[tuple[int, int, float]] = []
    for idx, r in routes:
        for level in range(a.esc_done.get(idx, 0) + 1, len(r.escalate) + 1):
            out.append((idx, level, a.starts_at + r.escalate[level - 1].after))
    return out


def blocked(p: Escalates, a: AlertState, now: float) -> str:
    """What keeps `a` from escalating now ("" if nothing): it is acknowledged,
    flapping, silenced or inhibited; their end reschedules it."""
    if a.acked(now):
        return "acknowledged"
    if a.fp in p.flapping:
        return "flapping"
    return "muted" if p.muted(a, now) else ""


def why_not(p: Escalates, a: AlertState, now: float) -> Hold:
    """Escalation's "why not now" for `a`: held ("escalation_blocked", detail
    {"by": blocked()}, no time: its end decides) or the next level due
    ("escalation_due" at next_at, held until then; detail {"levels": plan()});
    FREE when it has no level left (or does not fire)."""
    if not p.escalating or a.status != "firing":
        return FREE
    why = blocked(p, a, now)  # first: it brings the marks up to date, as it always did
    levels = plan(a, p.targets(a))
    if not levels:
        return FREE
    if why:
        return Hold(True, "escalation_blocked", None, {"by": why, "levels": levels})
    # the earliest of each route's next level (the first of its in the plan)
    firsts: dict[int, float] = {}
    for idx, _, at in levels:
        firsts.setdefault(idx, at)
    nxt = min(firsts.values())
    return Hold(nxt > now, "escalation_due", nxt, {"levels": levels})


def schedule(p: Escalates, a: AlertState, now: float, recheck: float | None = None) -> None:
    """Set when `a` is looked at next for escalation: why_not()'s next level, or
    `recheck`; none while it cannot escalate (its end reschedules)."""
    nxt: float | None = recheck
    h = why_not(p, a, now)
    if h.next_at is not None:
        at = max(now, h.next_at)
        nxt = at if nxt is None else min(nxt, at)
    if nxt != a.esc_next:
        a.esc_next = nxt
        if nxt is not None:
            p.push(nxt, "esc", a.fp)


def escalate(p: Escalates, a: AlertState, now: float, out: list[Notification]) -> None:
    """`a`'s escalation time came: tell the channels of every level now due."""
    a.esc_next = None
    recheck: float | None = None
    if not blocked(p, a, now):
        for idx, r in p.targets(a):
            if a.esc_done.get(idx, 0) >= len(r.escalate):
                continue
            if muted(r, p.intervals, now):
                recheck = now + MUTE_RECHECK
                continue
            _escalate_route(p, a, idx, r, now, out)
    schedule(p, a, now, recheck)


def _escalate_route(
    p: Escalates, a: AlertState, idx: int, r: Route, now: float, out: list[Notification]
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
        p.emit(
            {
                "event": "escalated",
                "alert": a.fp,
                "rule": a.rule,
                "level": level,
                "channels": chans,
            }
        )


def note(
    p: Escalates, a: AlertState, channel: str, level: int, now: float, route: Route | None = None
) -> Notification:
    """The escalation notification of `a` at `level` to `channel` (its end too)."""
    view = render.view(p, a, a.status, a.acked(now), now)
    gkey = f"{channel}|escalation{level}|{a.fp}"
    return render.note(p, channel, route, gkey, {}, (view,), kind="escalation", level=level)

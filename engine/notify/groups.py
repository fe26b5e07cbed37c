"""Groups: which alerts a channel hears of together, and when.

Key = channel + route index + the values of the route's `group_by` labels
("..." = all). A new group waits `group_wait`, then flushes; from that first
flush on it ticks every `group_interval` (Alertmanager's timing, ticks.py): a
change goes out on the next tick, and an unchanged group with unacknowledged
firing alerts is re-sent on the first tick after `repeat_interval`. A group's
content is the set of (fingerprint, status, acknowledged) this channel should
see; it counts as sent only once delivered. What counts as a change is
Alertmanager's dedup stage (dedup.py): something the channel was not told.
Resolved alerts stay in the group until sent (or until it is clear this channel
never needs to hear of them). Each delivered notification's key chains the next
one's (one key per occasion, keys.py).

Separate from the Pipeline (which coordinates) because a group's state and its
flush, refresh and delivery outcome are one policy; the functions take the
pipeline for the alerts, marks and views the groups are made of.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from engine.config.model import Route
from engine.notify import render, router, ticks
from engine.notify.alert_state import AlertState, view_order
from engine.notify.base import AlertView, Notification
from engine.notify.dedup import Entry, news, repeats
from engine.notify.keys import group_key, group_key_from_json, hash_key, key_prefix, labels_json
from engine.notify.timeintervals import muted

if TYPE_CHECKING:
    from engine.notify.pipeline import Pipeline

__all__ = [
    "MUTE_RECHECK",
    "GroupState",
    "assign",
    "carry_over",
    "delivered",
    "flush",
    "group_route",
    "leave",
    "refresh",
    "set_flush",
    "shift",
    "tick",
]

# A group or escalation muted by active_time/mute_time is looked at again this often.
MUTE_RECHECK = 60.0


@dataclass(slots=True, eq=False)
class GroupState:
    key: str
    channel: str
    route_index: int
    labels: dict[str, str]
    created: float  # when its first alert started: group_wait counts from here
    members: dict[str, None] = field(default_factory=dict)  # fingerprints, ordered
    sent: dict[str, Entry] | None = None  # content of the last delivered notification
    sent_at: float | None = None
    flushed_at: float | None = None  # when due() last produced a notification
    origin: float | None = None  # its first flush: it ticks every group_interval from here
    last_tick: float | None = None  # the tick it last flushed on
    told_firing: set[str] = field(default_factory=set)  # told of these firing
    next_flush: float | None = None
    inflight: tuple[str, dict[str, Entry]] | None = None  # (key, content)
    key_prefix: str | None = None  # idempotency_key's JSON up to the alerts
    last_key: str | None = None  # key of the last delivered notification: the next chains on


# -- membership ----------------------------------------------------------------------


def assign(p: Pipeline, a: AlertState) -> None:
    """Put `a` into the groups of every route and channel it goes to."""
    for idx, r in p._targets(a):
        if r.group_by == ("...",) or "..." in r.group_by:
            glabels = dict(a.match)
        else:
            glabels = {k: a.match.get(k, "") for k in r.group_by}
        lj = labels_json(glabels)  # group_key's, once for all channels
        for ch in r.channels:
            if ch not in p.channel_types:
                continue
            key = group_key_from_json(ch, idx, lj)
            g = p.groups.get(key)
            if g is None:
                g = p.groups[key] = GroupState(key, ch, idx, glabels, created=a.starts_at)
            g.members[a.fp] = None
            a.groups[key] = None


def leave(p: Pipeline, g: GroupState, fp: str) -> None:
    g.members.pop(fp, None)
    g.told_firing.discard(fp)
    a = p.alerts.get(fp)
    if a is not None:
        a.groups.pop(g.key, None)
        p._forget_if_done(a)


def group_route(p: Pipeline, g: GroupState) -> Route:
    if g.route_index == router.BYPASS_INDEX:
        for fp in g.members:
            a = p.alerts.get(fp)
            rule = p.rules.get(a.rule) if a is not None else None
            return router.bypass_route(rule) if rule is not None else Route((), ())
        return Route((), ())
    return p.config.routes[g.route_index]


def carry_over(p: Pipeline, old_routes: Sequence[Route]) -> dict[int, int]:
    """After a config swap: keep the groups of routes that are unchanged (same
    matchers and group_by; they may have moved), emptied for the alerts to be
    assigned again; drop the rest. Returns old route index -> new."""
    remap: dict[int, int] = {router.BYPASS_INDEX: router.BYPASS_INDEX}
    new_sigs = [_route_sig(r) for r in p.config.routes]
    for i, r in enumerate(old_routes):
        sig = _route_sig(r)
        if new_sigs.count(sig) == 1:
            remap[i] = new_sigs.index(sig)
    old_groups = p.groups
    p.groups = {}
    for g in old_groups.values():
        j = remap.get(g.route_index)
        if j is None or g.channel not in p.channel_types:
            continue
        g.route_index = j
        new = group_key(g.channel, j, g.labels)
        if new != g.key:
            p._alias[g.key] = new
            g.key, g.key_prefix = new, None
            g.next_flush = None  # its heap entry has the old key: schedule anew
        g.members.clear()
        p.groups[new] = g
    return remap


def _route_sig(r: Route) -> tuple[Any, ...]:
    """What a route's groups depend on: its matchers and group_by."""
    ms = tuple(
        (m.label, m.op, tuple(sorted(m.values)), m.regex.pattern if m.regex else None)
        for m in r.matchers
    )
    return (ms, r.group_by)


# -- what a channel should see, and when -----------------------------------------------


def content(p: Pipeline, g: GroupState, now: float) -> tuple[dict[str, Entry], list[str]]:
    """(what the channel should now see, members it will never need to see)."""
    closing = g.channel in p.closing
    out: dict[str, Entry] = {}
    drop: list[str] = []
    sent = g.sent or {}
    for fp in g.members:
        a = p.alerts.get(fp)
        if a is None:
            drop.append(fp)
            continue
        if a.status == "firing":
            p._marks(a, now)  # journals a change of its marks, held or not
        if fp in p.flapping:  # held: frozen at what was last sent
            if fp in sent:
                out[fp] = sent[fp]
            continue
        acked = a.acked(now)
        if a.status == "firing":
            if acked and not closing:
                # acknowledged: this channel is to hear of it again once the
                # acknowledgement ends, as news (a silence's end is not news)
                if fp in sent and sent[fp][0] == "firing":
                    del sent[fp]
                continue
            if p._muted(a, now):
                continue
            out[fp] = ("firing", acked)
        elif fp in g.told_firing or (closing and (acked or p._muted(a, now))):
            out[fp] = ("resolved", acked)
        else:
            drop.append(fp)
    return out, drop


def refresh(p: Pipeline, g: GroupState, now: float) -> None:
    """Recompute when the group has to flush next (or drop it when empty)."""
    if g.inflight is not None:
        return  # decided when the outcome arrives
    now_content, drop = content(p, g, now)
    for fp in drop:
        leave(p, g, fp)
    if not g.members:
        del p.groups[g.key]
        return
    route = group_route(p, g)
    nxt: float | None
    if g.origin is None:
        # the first flush, after group_wait, even if nothing is to be sent yet
        # (all silenced): Alertmanager's group ticks from then on regardless
        nxt = g.created + route.group_wait
    elif news(g.sent, now_content):
        nxt = tick(g, route, now)
    elif repeats(now_content) and g.sent_at is not None:
        nxt = ticks.repeat_tick(
            g.origin, route.group_interval, g.sent_at, route.repeat_interval, g.last_tick
        )
    else:
        nxt = None
    resend = p._resend.get(g.channel)
    if (
        resend is not None
        and g.sent_at is not None
        and now_content
        and (now_content != g.sent or _any_firing(now_content))  # changes too: no long waits
    ):
        nxt = min(nxt, g.sent_at + resend) if nxt is not None else g.sent_at + resend
    set_flush(p, g, nxt)


def tick(g: GroupState, route: Route, at: float) -> float:
    """The group's first tick at or after `at` it has not flushed on yet. Not
    flushed since a restart (resume.py): `at`, but not before group_interval
    since its last notification (Alertmanager's groups would be new, and
    flush at once); the ticks then count from that flush."""
    if g.origin is None:
        return at
    if g.last_tick is None:
        return max(at, g.origin + route.group_interval)
    return ticks.next_tick(g.origin, route.group_interval, at, g.last_tick)


def set_flush(p: Pipeline, g: GroupState, at: float | None) -> None:
    if at != g.next_flush:
        g.next_flush = at
        if at is not None:
            p._push(at, "group", g.key)


def shift(groups: Mapping[str, GroupState], step: float) -> None:
    """The wall clock stepped: the groups' own times keep their distance from now."""
    for g in groups.values():
        g.created += step
        if g.sent_at is not None:
            g.sent_at += step
        if g.flushed_at is not None:
            g.flushed_at += step
        if g.origin is not None:
            g.origin += step
        if g.last_tick is not None:
            g.last_tick += step
        if g.next_flush is not None:
            g.next_flush += step


# -- flush and outcome -----------------------------------------------------------------


def flush(p: Pipeline, g: GroupState, now: float, out: list[Notification]) -> None:
    """The group's tick: send what is news, or a reminder, or nothing."""
    if g.origin is None or g.last_tick is None or g.next_flush is None:
        # the first flush (since a restart): the ticks count from it
        g.origin = g.last_tick = now
    else:
        g.last_tick = g.next_flush  # on the grid, though `now` may be a little late
    g.next_flush = None
    now_content, drop = content(p, g, now)
    for fp in drop:
        leave(p, g, fp)
    route = group_route(p, g)
    if not now_content or (
        not news(g.sent, now_content) and not _repeat_due(p, g, route, now_content, now)
    ):
        if g.key in p.groups:
            refresh(p, g, now)
        return
    if muted(route, p.intervals, now):
        set_flush(p, g, tick(g, route, now) if route.group_interval else now + MUTE_RECHECK)
        return
    if len(now_content) == 1:
        [(fp, (st, ack))] = now_content.items()
        views: tuple[AlertView, ...] = (render.view(p, p.alerts[fp], st, ack, now),)
    else:
        views = tuple(
            sorted(
                (
                    render.view(p, p.alerts[fp], st, ack, now)
                    for fp, (st, ack) in now_content.items()
                ),
                key=view_order,
            )
        )
    # idempotency_key(views), from the pieces kept for it
    if g.key_prefix is None:
        g.key_prefix = key_prefix(g.channel, g.key)
    key = hash_key(g.key_prefix, (p.alerts[fp].key_item for fp in sorted(now_content)), g.last_key)
    n = render.note(p, g.channel, route, g.key, g.labels, views, key=key)
    g.inflight = (n.key, now_content)
    g.flushed_at = now
    p.rate.offer(n, now, out)


def _repeat_due(
    p: Pipeline, g: GroupState, route: Route, now_content: Mapping[str, Entry], now: float
) -> bool:
    resend = p._resend.get(g.channel)
    if resend is not None and g.sent_at is not None and now >= g.sent_at + resend:
        return _any_firing(now_content)  # acknowledged ones too: they still fire
    if not repeats(now_content):
        return False
    # on a tick (ticks.py); the slack: a tick's time is a sum of intervals
    return g.sent_at is None or now >= g.sent_at + route.repeat_interval - 1e-6


def delivered(p: Pipeline, n: Notification, ok: bool, now: float) -> None:
    """The outcome of a group's notification (after all retries)."""
    key = p._alias.pop(n.group_key, n.group_key)
    g = p.groups.get(key)
    if g is None or g.inflight is None or g.inflight[0] != n.key:
        return
    sent = g.inflight[1]
    g.inflight = None
    if ok:
        g.sent, g.sent_at, g.last_key = sent, now, n.key
        for fp, (st, _) in sent.items():
            if st == "firing":
                g.told_firing.add(fp)
            else:
                leave(p, g, fp)
        if not g.members:
            del p.groups[g.key]
            return
    else:
        # try again on the next tick (the breaker may be open), or after
        # resend_delay for an alertmanager channel, before its endsAt passes
        retry = tick(g, group_route(p, g), now)
        resend = p._resend.get(g.channel)
        set_flush(p, g, retry if resend is None else min(retry, now + resend))
        return
    refresh(p, g, now)


def _any_firing(entries: Mapping[str, Entry]) -> bool:
    return any(st == "firing" for st, _ in entries.values())

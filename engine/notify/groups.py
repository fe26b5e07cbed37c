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
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from engine.config.model import Route
from engine.notify import render, router, ticks
from engine.notify.alert_state import AlertState, view_order
from engine.notify.base import AlertView, Notification
from engine.notify.dedup import Entry, news, repeats
from engine.notify.hold import Hold
from engine.notify.keys import group_key, group_key_from_json, hash_key, key_prefix, labels_json
from engine.notify.timeintervals import muted

if TYPE_CHECKING:
    from engine.notify.host import Groups

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
    "timing",
    "why_not",
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


def assign(p: Groups, a: AlertState) -> None:
    """Put `a` into the groups of every route and channel it goes to."""
    for idx, r in p.targets(a):
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


def leave(p: Groups, g: GroupState, fp: str) -> None:
    g.members.pop(fp, None)
    g.told_firing.discard(fp)
    a = p.alerts.get(fp)
    if a is not None:
        a.groups.pop(g.key, None)
        p.forget_if_done(a)


def group_route(p: Groups, g: GroupState) -> Route:
    if g.route_index == router.BYPASS_INDEX:
        for fp in g.members:
            a = p.alerts.get(fp)
            rule = p.rules.get(a.rule) if a is not None else None
            return router.bypass_route(rule) if rule is not None else Route((), ())
        return Route((), ())
    return p.config.routes[g.route_index]


def carry_over(p: Groups, old_routes: Sequence[Route]) -> dict[int, int]:
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
            p.alias[g.key] = new
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


def content(p: Groups, g: GroupState, now: float) -> tuple[dict[str, Entry], list[str], list[str]]:
    """(what the channel should now see, members it will never need to see,
    members to forget it was told of firing). Changes nothing but the alerts'
    marks (computed once per epoch, and their change journaled)."""
    closing = g.channel in p.closing
    out: dict[str, Entry] = {}
    drop: list[str] = []
    forget: list[str] = []
    sent = g.sent or {}
    for fp in g.members:
        a = p.alerts.get(fp)
        if a is None:
            drop.append(fp)
            continue
        if a.status == "firing":
            p.refresh_marks(a, now)  # journals a change of its marks, held or not
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
                    forget.append(fp)
                continue
            if p.muted(a, now):
                continue
            out[fp] = ("firing", acked)
        elif fp in g.told_firing or (closing and (acked or p.muted(a, now))):
            out[fp] = ("resolved", acked)
        else:
            drop.append(fp)
    return out, drop, forget


def _settle_content(p: Groups, g: GroupState, now: float) -> dict[str, Entry]:
    """content(), and what it found applied: members dropped, acknowledged ones
    forgotten (so their channel hears of them again once the acknowledgement ends)."""
    now_content, drop, forget = content(p, g, now)
    if forget and g.sent is not None:
        for fp in forget:
            del g.sent[fp]
    for fp in drop:
        leave(p, g, fp)
    return now_content


def timing(
    g: GroupState,
    route: Route,
    now_content: Mapping[str, Entry],
    resend: float | None,
    now: float,
) -> Hold:
    """Groups' "why not now": when the group flushes next with this content, and
    why then. "group_wait" (its first flush), "group_interval" (news waits for
    the next tick), "repeat_interval" (a reminder's tick), "resend_delay" (an
    alertmanager channel's re-send), or "" with no next_at: nothing to send.
    Held while next_at is later than `now`. Pure."""
    nxt, code = _next_flush(g, route, now_content, resend, now)
    return Hold(False, code) if nxt is None else Hold(nxt > now, code, nxt)


def _next_flush(
    g: GroupState,
    route: Route,
    now_content: Mapping[str, Entry],
    resend: float | None,
    now: float,
) -> tuple[float | None, str]:
    """timing()'s (next_at, code), without the Hold: refresh() runs it per group."""
    nxt: float | None
    code = ""
    if g.origin is None:
        # the first flush, after group_wait, even if nothing is to be sent yet
        # (all silenced): Alertmanager's group ticks from then on regardless
        nxt, code = g.created + route.group_wait, "group_wait"
    elif news(g.sent, now_content):
        nxt, code = tick(g, route, now), "group_interval"
    elif repeats(now_content) and g.sent_at is not None:
        nxt = ticks.repeat_tick(
            g.origin, route.group_interval, g.sent_at, route.repeat_interval, g.last_tick
        )
        code = "repeat_interval"
    else:
        nxt = None
    if (
        resend is not None
        and g.sent_at is not None
        and now_content
        and (now_content != g.sent or _any_firing(now_content))  # changes too: no long waits
    ) and (nxt is None or g.sent_at + resend < nxt):
        nxt, code = g.sent_at + resend, "resend_delay"
    return nxt, code


def why_not(p: Groups, g: GroupState, now: float, *, on_grid: bool = False) -> Hold:
    """The group's timing() as it stands (held, "inflight", while a notification
    of it is out for delivery: its outcome decides). Changes nothing but marks.
    `on_grid`: for a group rebuilt from the state (resume.py), as the running
    pipeline times it: on the ticks that go on from its last notification (a
    restarted one flushes news at once instead)."""
    if g.inflight is not None:
        return Hold(True, "inflight")
    now_content, _, forget = content(p, g, now)
    if forget and g.sent is not None:
        g = replace(g, sent={k: v for k, v in g.sent.items() if k not in forget})
    if on_grid and g.last_tick is None and g.origin is not None:
        g = replace(g, last_tick=g.origin)
    return timing(g, group_route(p, g), now_content, p.resend.get(g.channel), now)


def refresh(p: Groups, g: GroupState, now: float) -> None:
    """Recompute when the group has to flush next (or drop it when empty)."""
    if g.inflight is not None:
        return  # decided when the outcome arrives
    now_content = _settle_content(p, g, now)
    if not g.members:
        del p.groups[g.key]
        return
    nxt, _ = _next_flush(g, group_route(p, g), now_content, p.resend.get(g.channel), now)
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


def set_flush(p: Groups, g: GroupState, at: float | None) -> None:
    if at != g.next_flush:
        g.next_flush = at
        if at is not None:
            p.push(at, "group", g.key)


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


def flush(p: Groups, g: GroupState, now: float, out: list[Notification]) -> None:
    """The group's tick: send what is news, or a reminder, or nothing."""
    if g.origin is None or g.last_tick is None or g.next_flush is None:
        # the first flush (since a restart): the ticks count from it
        g.origin = g.last_tick = now
    else:
        g.last_tick = g.next_flush  # on the grid, though `now` may be a little late
    g.next_flush = None
    now_content = _settle_content(p, g, now)
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
    p: Groups, g: GroupState, route: Route, now_content: Mapping[str, Entry], now: float
) -> bool:
    resend = p.resend.get(g.channel)
    if resend is not None and g.sent_at is not None and now >= g.sent_at + resend:
        return _any_firing(now_content)  # acknowledged ones too: they still fire
    if not repeats(now_content):
        return False
    # on a tick (ticks.py); the slack: a tick's time is a sum of intervals
    return g.sent_at is None or now >= g.sent_at + route.repeat_interval - 1e-6


def delivered(p: Groups, n: Notification, ok: bool, now: float) -> None:
    """The outcome of a group's notification (after all retries)."""
    key = p.alias.pop(n.group_key, n.group_key)
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
        resend = p.resend.get(g.channel)
        set_flush(p, g, retry if resend is None else min(retry, now + resend))
        return
    refresh(p, g, now)


def _any_firing(entries: Mapping[str, Entry]) -> bool:
    return any(st == "firing" for st, _ in entries.values())

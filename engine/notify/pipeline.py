"""The notification decisions, pure and driven by an explicit clock.

    ingest(event, now)  journaled alert events: firing, resolved, acknowledged, flapping, silences
    due(now)            -> Notifications to hand to channels now
    delivered(n, ok)    the outcome, so dedup counts only what really went out
    next_deadline()     when `due` has something to do next (None: nothing scheduled)

Per alert and channel, in Alertmanager's order: route → silence → inhibit →
time interval → group → dedup/repeat → flapping hold → rate limit. No I/O, no
clock reads, no tasks: the Dispatcher drives it on the wall clock, `vigil test`
on a simulated one.

Groups. Key = channel + route index + the values of the route's `group_by` labels
("..." = all). A new group waits `group_wait`, then flushes; from that first
flush on it ticks every `group_interval` (Alertmanager's timing, ticks.py): a
change goes out on the next tick, and an unchanged group with unacknowledged
firing alerts is re-sent on the first tick after `repeat_interval`. A group's content is the set of
(fingerprint, status, acknowledged) this channel should see; it counts as sent
only once delivered. What counts as a change is Alertmanager's dedup stage
(dedup.py): something the channel was not told. Resolved alerts stay in the
group until sent (or until it is clear this channel never needs to hear of
them). Each delivered notification's key chains the next one's (one key per
occasion); a restart rebuilds all of this from the journal (resume.py).

Who hears of what. Firing alerts that are silenced, inhibited, muted by time,
or acknowledged are not sent, except that channels which close incidents
(PagerDuty, Opsgenie: `closes_incidents`) do get acknowledged alerts (to
acknowledge the incident). Resolved alerts go to channels that were told of
them firing, and to incident-closing channels also when they were silenced,
inhibited or acknowledged. A flapping alert's content is frozen at what was last
sent until it stops flapping.
"""

from __future__ import annotations

import hashlib
import heapq
import itertools
import json
from collections import deque
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from engine.common.json_text import compact_json, compact_json_ascii
from engine.common.json_text import quote_ascii as _quote
from engine.common.timefmt import to_epoch
from engine.config.model import Config, Route, Rule, Silence, TimeInterval
from engine.notify import am_timing, marks, resume, router, ticks
from engine.notify.base import AlertView, Notification, iso
from engine.notify.dedup import Entry, news, repeats
from engine.notify.marks import ack_record
from engine.notify.timeintervals import muted
from engine.templates import renderer as templates

__all__ = [
    "CLOSING_TYPES",
    "MUTE_RECHECK",
    "Pipeline",
    "group_key",
    "idempotency_key",
    "make_digest",
]

Status = Literal["firing", "resolved"]

# Types whose channels close incidents when the classes are not at hand (offline).
CLOSING_TYPES = frozenset({"pagerduty", "opsgenie", "alertmanager"})  # as their classes say
# A group or escalation muted by active_time/mute_time is looked at again this often.
MUTE_RECHECK = 60.0
DIGEST_LIST_MAX = 100  # alerts a digest's body lists by name
SETTLE_WEIGHT = 64  # members of a group that count as one group in settle(limit)


def group_key(channel: str, route_index: int, labels: Mapping[str, str]) -> str:
    """`<channel>|<route index>|{"label":"value",...}` with labels sorted."""
    return _group_key(channel, route_index, _labels_json(labels))


def _group_key(channel: str, route_index: int, labels_json: str) -> str:
    return f"{channel}|{route_index}|{labels_json}"


def _labels_json(labels: Mapping[str, str]) -> str:
    return compact_json(dict(sorted(labels.items())))


def idempotency_key(
    channel: str, gkey: str, alerts: Iterable[AlertView], previous: str | None = None
) -> str:
    """SHA-256 of the ASCII JSON `[channel, group key, items]`, items being each
    alert's [fingerprint, status, starts_at] sorted (by fingerprint: unique in a
    notification); an acknowledged alert adds "ack" (so an acknowledgement is a
    new message to receivers that deduplicate). After the group's first delivered
    notification, `previous` (that group's last delivered key) is appended:
    `[channel, group key, items, previous]`, so every occasion (a change, a
    reminder with the same alerts, a resolve) has a key of its own, while a retry
    of the same occasion, also after a crash, carries the same key."""
    items = (_key_item(a) for a in sorted(alerts, key=lambda a: a.fingerprint))
    return _hash_key(_key_prefix(channel, gkey), items, previous)


def _key_item(a: AlertView) -> str:
    """One alert's item of idempotency_key(), as JSON."""
    item = [a.fingerprint, a.status, iso(a.starts_at), *(["ack"] if a.acknowledged else [])]
    return compact_json_ascii(item)


def _key_prefix(channel: str, gkey: str) -> str:
    """idempotency_key()'s JSON up to its items (json's own string quoting)."""
    return f"[{_quote(channel)},{_quote(gkey)},["


def _hash_key(prefix: str, items: Iterable[str], previous: str | None = None) -> str:
    tail = "]]" if previous is None else f"],{_quote(previous)}]"
    return hashlib.sha256(f"{prefix}{','.join(items)}{tail}".encode()).hexdigest()


def make_digest(channel: str, held: Sequence[Notification], reason: str) -> Notification:
    """One notification standing for `held` ones (rate limit or queue overflow):
    how many and which alerts, each with its latest status."""
    count = sum(int(n.extra.get("held", 1)) if n.kind == "digest" else 1 for n in held)
    latest: dict[str, AlertView] = {}
    for n in held:
        for a in n.alerts:
            latest[a.fingerprint] = a
    alerts = tuple(sorted(latest.values(), key=_order))
    status: Status = "firing" if any(a.status == "firing" for a in alerts) else "resolved"
    title = f"[DIGEST] {count} notifications held by {reason} on {channel}"
    lines = [f"{count} notifications were held by {reason}; their alerts now:"]
    for a in alerts[:DIGEST_LIST_MAX]:
        labels = ", ".join(f"{k}={v}" for k, v in _order(a)[2])
        lines.append(f"- {a.status.upper()} {a.rule} [{a.severity}] {labels}"[:1000])
    if len(alerts) > DIGEST_LIST_MAX:
        lines.append(f"... and {len(alerts) - DIGEST_LIST_MAX} more (all are in the alert list)")
    key = hashlib.sha256(
        json.dumps(["digest", channel, sorted(n.key for n in held)]).encode()
    ).hexdigest()
    return Notification(
        channel=channel,
        group_key=f"digest|{channel}",
        status=status,
        alerts=alerts,
        key=key,
        title=title,
        body="\n".join(lines) + "\n",
        kind="digest",
        extra={"held": count, "reason": reason, "titles": [n.title for n in held][:50]},
    )


Order = tuple[int, str, list[tuple[str, str]]]
# Views are shared by every channel's groups and digests, and a digest folded into
# the next one sorts its alerts again: each view's key is computed once. A view
# is kept as long as its entry, so its id() cannot be reused meanwhile.
_ORDER_KEYS: dict[int, tuple[AlertView, Order]] = {}
_ORDER_KEYS_MAX = 4_096  # views kept alive at most: a few MB


def _order(a: AlertView) -> Order:
    """Firing first, then by rule and labels: how a notification lists its alerts."""
    hit = _ORDER_KEYS.get(id(a))
    if hit is not None and hit[0] is a:
        return hit[1]
    key = (0 if a.status == "firing" else 1, a.rule, sorted(a.labels.items()))
    if len(_ORDER_KEYS) >= _ORDER_KEYS_MAX:
        _ORDER_KEYS.clear()
    _ORDER_KEYS[id(a)] = (a, key)
    return key


def _ack_view(ack: Mapping[str, Any]) -> dict[str, Any]:
    """An acknowledgement as notifications show it: `until` in RFC 3339, as every
    time vigil shows (None: until the alert resolves)."""
    until = ack.get("until")
    return {
        "by": ack.get("by"),
        "note": ack.get("note"),
        "until": iso(until) if isinstance(until, int | float) else None,
    }


@dataclass(slots=True, eq=False)
class _Alert:
    fp: str
    rule: str
    labels: dict[str, str]
    severity: str
    match: dict[str, str]
    value: Any
    annotations: dict[str, str]
    starts_at: float
    status: Status = "firing"
    ends_at: float | None = None
    ack: dict[str, Any] | None = None
    groups: dict[str, None] = field(default_factory=dict)  # keys; ordered: deterministic
    esc_done: dict[int, int] = field(default_factory=dict)  # route index -> level reached
    esc_channels: dict[str, int] = field(default_factory=dict)  # channel -> level told
    esc_next: float | None = None  # when escalation is looked at next
    targets: list[tuple[int, Route]] | None = None  # routes, for the current config
    # silenced / muted (silenced or inhibited) as of mute epoch `marks_epoch`
    marks_epoch: int = -1
    silenced: bool = False
    muted: bool = False
    stale: bool = False  # a collector its rule reads is down (journal `stale`)
    rev: int = 0  # +1 whenever what a view shows changes (value, status, ack, ...)
    view: AlertView | None = None  # the last view built, for `view_key`
    view_key: tuple[int, Status, bool, bool] | None = None
    key_item: str = ""  # the view's entry in idempotency_key's JSON
    # the marks as the journal was last told of them (engine/notify/marks.py)
    told_silenced: bool = False
    told_inhibited: bool = False

    def acked(self, now: float) -> bool:
        if self.ack is None:
            return False
        until = self.ack.get("until")
        return not (isinstance(until, int | float) and now >= until)


@dataclass(slots=True, eq=False)
class _Group:
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


class Pipeline:
    """Notification decisions for one Config; see the module docstring."""

    def __init__(
        self,
        config: Config,
        channel_types: Mapping[str, str],
        *,
        closing: Collection[str] | None = None,
        textless: Collection[str] = (),
    ) -> None:
        self.alerts: dict[str, _Alert] = {}
        self.groups: dict[str, _Group] = {}
        self.api_silences: dict[str, Silence] = {}
        # channel-file silences whose end by time was journaled (silence_expired)
        self.config_expired: set[str] = set()
        self.flapping: set[str] = set()  # kept across resolve: the state machine does
        self._heap: list[tuple[float, int, str, Any]] = []
        self._seq = itertools.count()
        self._events: list[dict[str, Any]] = []
        self._alias: dict[str, str] = {}  # old group key -> new, across reconfigure
        self._rl_sent: dict[str, deque[float]] = {}
        self._rl_held: dict[str, list[Notification]] = {}
        self._digests: dict[str, list[Notification]] = {}
        self._immediate: list[Notification] = []
        # Work deferred to one pass before due()/next_deadline(), so that a burst of
        # events into one large group costs one recomputation, not one per event.
        self._dirty: dict[str, None] = {}  # group keys to refresh, in order
        self._inhibit_changes: set[tuple[int, tuple[str, ...]]] = set()
        self._escalations_all = False
        # marks (silenced, inhibited) to look at for their journal events: groups
        # look at their members' anyway; these are for alerts that no route takes
        self._marks_all = False
        self._marks_due: dict[str, None] = {}
        self._now = float("-inf")  # latest time seen
        # Whether an alert is silenced or inhibited changes only when a silence is
        # added, removed, starts or ends, or an inhibiting alert fires or resolves.
        # Each such change starts a new epoch; an alert's marks are computed once
        # per epoch, not for every group and channel it is in. The epoch is also
        # new whenever `now` leaves [_mute_from, _mute_until), the span between
        # two silence boundaries it was computed in.
        self._mute_epoch = 0
        self._mute_from = self._mute_until = 0.0
        self._configure(config, channel_types, closing, textless)
        self._touch_boundaries(float("-inf"))  # config silences' starts/ends

    # -- configuration -------------------------------------------------------------

    def _configure(
        self,
        config: Config,
        channel_types: Mapping[str, str],
        closing: Collection[str] | None,
        textless: Collection[str],
    ) -> None:
        self.config = config
        # channels that never read a notification's title/body/html (webhook sends
        # the alerts as JSON): rendering their templates would be wasted work
        self.textless = frozenset(textless)
        self.channel_types = dict(channel_types)
        self.closing = (
            frozenset(closing)
            if closing is not None
            else frozenset(n for n, t in channel_types.items() if t in CLOSING_TYPES)
        )
        self.rules: dict[str, Rule] = {r.id: r for r in config.rules()}
        self.intervals: dict[str, TimeInterval] = {t.name: t for t in config.time_intervals}
        self.inhibitor = router.Inhibitor(config.inhibits)
        self.renderer = templates.Renderer(config, channel_types)
        self._rate = {c.name: c.rate_limit for c in config.channels if c.rate_limit}
        self._escalating = any(r.escalate for r in config.routes)
        # alertmanager channels: firing alerts re-sent this often (am_timing.py)
        self._resend = am_timing.resend_delays(config.channels)
        self._new_mute_epoch()

    def reconfigure(
        self,
        config: Config,
        channel_types: Mapping[str, str],
        now: float,
        *,
        closing: Collection[str] | None = None,
        textless: Collection[str] = (),
    ) -> None:
        """Swap the config. Groups of routes that are unchanged (same matchers and
        group_by; they may have moved) keep their state; the rest start afresh."""
        old_routes = self.config.routes
        self._configure(config, channel_types, closing, textless)
        remap: dict[int, int] = {router.BYPASS_INDEX: router.BYPASS_INDEX}
        new_sigs = [_route_sig(r) for r in config.routes]
        for i, r in enumerate(old_routes):
            sig = _route_sig(r)
            if new_sigs.count(sig) == 1:
                remap[i] = new_sigs.index(sig)
        old_groups = self.groups
        self.groups = {}
        for g in old_groups.values():
            j = remap.get(g.route_index)
            if j is None or g.channel not in self.channel_types:
                continue
            g.route_index = j
            new = group_key(g.channel, j, g.labels)
            if new != g.key:
                self._alias[g.key] = new
                g.key, g.key_prefix = new, None
                g.next_flush = None  # its heap entry has the old key: schedule anew
            g.members.clear()
            self.groups[new] = g
        for a in self.alerts.values():
            a.groups.clear()
            a.targets = None
            a.esc_done = {remap[i]: v for i, v in a.esc_done.items() if i in remap}
            if a.status == "firing":
                self.inhibitor.set_firing(a.fp, a.match, True)
        for a in list(self.alerts.values()):
            self._assign(a, now)
        for key in list(self.groups):
            self._refresh(self.groups[key], now)
        self._schedule_escalations_all(now)
        self._touch_boundaries(now)
        if any(s.until <= now and s.id not in self.config_expired for s in config.silences):
            self._push(now, "touch", None)  # added already ended: journaled once

    # -- input -----------------------------------------------------------------------

    def load_state(self, state: Mapping[str, Any], now: float) -> None:
        """Resume from the durable state (the replayed journal): engine/notify/resume.py."""
        resume.load_state(self, state, now)

    def ingest(self, event: Mapping[str, Any], now: float) -> None:
        """Take one journaled event; unknown kinds are ignored."""
        kind = event.get("event")
        fp = event.get("alert")
        if kind == "firing" and isinstance(fp, str):
            self._on_firing(fp, event, now)
        elif kind == "resolved" and isinstance(fp, str):
            self._on_resolved(fp, event, now)
        elif kind in ("acknowledged", "unacknowledged") and isinstance(fp, str):
            a = self.alerts.get(fp)
            if a is None:
                return
            a.rev += 1
            if kind == "acknowledged":
                a.ack = ack_record(event, to_epoch(event.get("ts")) or now)
                until = a.ack["until"]
                if until is not None and until > now:
                    self._push(until, "touch", None)
            else:
                a.ack = None
                self._schedule_escalations(a, now)
            self._refresh_alert(a, now)
        elif kind in ("flapping", "flapping_end") and isinstance(fp, str):
            if kind == "flapping":
                self.flapping.add(fp)
            else:
                self.flapping.discard(fp)
            a = self.alerts.get(fp)
            if a is not None:
                self._refresh_alert(a, now)
                if kind == "flapping_end":
                    self._schedule_escalations(a, now)
        elif kind in ("stale", "stale_end") and isinstance(fp, str):
            # shown in what is sent next (a reminder); never a reason to send
            a = self.alerts.get(fp)
            if a is not None:
                a.stale = kind == "stale"
                a.rev += 1
        elif kind in ("silence_created", "silenced") and fp is None and event.get("id"):
            s = router.silence_from_state(str(event["id"]), event)
            if s is not None:
                self.api_silences[s.id] = s
                self._touch_all(now)
                self._touch_boundaries(now)
        elif (
            kind in ("silence_expired", "unsilenced")
            and fp is None
            and self.api_silences.pop(str(event.get("id")), None) is not None
        ):
            self._touch_all(now)

    def _new_alert(
        self,
        fp: str,
        rule: str,
        labels: Mapping[str, Any],
        severity: str,
        value: Any,
        annotations: Mapping[str, Any] | None,
        starts: float,
    ) -> _Alert:
        lab = {str(k): str(v) for k, v in labels.items()}
        if annotations is None:
            r = self.rules.get(rule)
            ann = (
                templates.render_annotations(
                    r.annotations, lab, value, rule=rule, severity=severity
                )
                if r is not None
                else {}
            )
        else:
            ann = {str(k): str(v) for k, v in annotations.items()}
        return _Alert(
            fp, rule, lab, severity, router.match_labels(lab, rule, severity), value, ann, starts
        )

    def _on_firing(self, fp: str, ev: Mapping[str, Any], now: float) -> None:
        starts = to_epoch(ev.get("starts_at", ev.get("firing_since"))) or to_epoch(ev.get("ts"))
        a = self.alerts.get(fp)
        if a is not None and a.status == "firing":
            # the same episode again (a replayed or repeated event): news only
            a.rev += 1
            a.value = ev.get("value", a.value)
            if isinstance(ev.get("annotations"), Mapping):
                a.annotations = {str(k): str(v) for k, v in ev["annotations"].items()}
            return
        new = self._new_alert(
            fp,
            str(ev.get("rule") or ""),
            ev.get("labels") or {},
            str(ev.get("severity") or ""),
            ev.get("value"),
            ev.get("annotations") if isinstance(ev.get("annotations"), Mapping) else None,
            starts if starts is not None else now,
        )
        if a is not None:  # a new episode of an alert still in some group as resolved
            new.groups = a.groups
        self.alerts[fp] = new
        self._assign(new, now)
        if not new.groups:
            self._marks_due[fp] = None
        self._refresh_alert(new, now)
        self._schedule_escalations(new, now)
        self._inhibit_changed(self.inhibitor.set_firing(fp, new.match, True), now)

    def _on_resolved(self, fp: str, ev: Mapping[str, Any], now: float) -> None:
        a = self.alerts.get(fp)
        if a is None or a.status == "resolved":
            return
        a.rev += 1
        a.status = "resolved"
        a.ends_at = to_epoch(ev.get("ts")) or now
        a.value = ev.get("value", a.value)
        # Escalation channels outside the route were told of the alert on their
        # own; they hear of its end the same way (the group tells the rest).
        for ch, level in a.esc_channels.items():
            self._immediate.append(self._escalation_note(a, ch, level, now))
        if a.esc_channels:
            self._push(now, "now", None)
        a.esc_next = None
        self._refresh_alert(a, now)
        self._inhibit_changed(self.inhibitor.set_firing(fp, a.match, False), now)
        self._forget_if_done(a)

    def _inhibit_changed(self, changes: list[tuple[int, tuple[str, ...]]], now: float) -> None:
        if changes:
            self._inhibit_changes.update(changes)
            self._new_mute_epoch()
            self._marks_all = True
        self._now = max(self._now, now)

    def settle(self, limit: int | None = None) -> bool:
        """Do the deferred work now; with `limit`, refresh about that many groups,
        a big one counting once per SETTLE_WEIGHT members (so a driver can
        interleave a burst's work with other work). True when
        nothing is left; due() and next_deadline() settle whatever is."""
        self._settle(limit)
        return not self._dirty

    def _settle(self, limit: int | None = None) -> None:
        """Do the deferred work: alerts whose inhibition may have changed, groups
        whose content may have changed (up to `limit` of them), escalations to
        reschedule."""
        now = self._now
        if self._inhibit_changes:
            changes, self._inhibit_changes = self._inhibit_changes, set()
            for a in list(self.alerts.values()):
                if self.inhibitor.affects(changes, a.match):
                    self._dirty.update(a.groups)
                    self._schedule_escalations(a, now)
        if self._escalations_all:
            self._escalations_all = False
            self._schedule_escalations_all(now)
        if self._marks_all or self._marks_due:
            fps = self.alerts if self._marks_all else self._marks_due
            self._marks_all, due, self._marks_due = False, fps, {}
            for fp in due:
                m = self.alerts.get(fp)
                if m is not None and m.status == "firing" and not m.groups:
                    self._marks(m, now)
        left = len(self._dirty) if limit is None else limit
        while self._dirty and left > 0:
            key = next(iter(self._dirty))
            del self._dirty[key]
            g = self.groups.get(key)
            # a group counts once per SETTLE_WEIGHT members: refreshing one looks at each
            left -= 1 if g is None else 1 + len(g.members) // SETTLE_WEIGHT
            if g is not None:
                self._refresh(g, now)

    # -- routing into groups ------------------------------------------------------------

    def _targets(self, a: _Alert) -> list[tuple[int, Route]]:
        if a.targets is None:
            a.targets = router.targets(self.config, a.match, self.rules.get(a.rule))
        return a.targets

    def _route(self, index: int, a: _Alert | None = None) -> Route:
        if index == router.BYPASS_INDEX:
            rule = self.rules.get(a.rule) if a is not None else None
            return router.bypass_route(rule) if rule is not None else Route((), ())
        return self.config.routes[index]

    def _assign(self, a: _Alert, now: float) -> None:
        for idx, r in self._targets(a):
            if r.group_by == ("...",) or "..." in r.group_by:
                glabels = dict(a.match)
            else:
                glabels = {k: a.match.get(k, "") for k in r.group_by}
            labels_json = _labels_json(glabels)  # group_key's, once for all channels
            for ch in r.channels:
                if ch not in self.channel_types:
                    continue
                key = _group_key(ch, idx, labels_json)
                g = self.groups.get(key)
                if g is None:
                    g = self.groups[key] = _Group(key, ch, idx, glabels, created=a.starts_at)
                g.members[a.fp] = None
                a.groups[key] = None

    def _group_route(self, g: _Group) -> Route:
        if g.route_index == router.BYPASS_INDEX:
            for fp in g.members:
                return self._route(g.route_index, self.alerts.get(fp))
            return Route((), ())
        return self.config.routes[g.route_index]

    # -- what a channel should see ------------------------------------------------------

    def _muted(self, a: _Alert, now: float) -> bool:
        self._marks(a, now)
        return a.muted

    def _marks(self, a: _Alert, now: float) -> None:
        """Bring `a.silenced` and `a.muted` up to date for `now`."""
        if not self._mute_from <= now < self._mute_until:
            self._new_mute_epoch(now)
        elif a.marks_epoch == self._mute_epoch:
            return
        a.marks_epoch = self._mute_epoch
        silence = router.silenced_by(self.config.silences, a.match, now) or router.silenced_by(
            self.api_silences.values(), a.match, now
        )
        inhibited = self.inhibitor.inhibited(a.fp, a.match)
        a.silenced = silence is not None
        a.muted = a.silenced or inhibited
        if a.status == "firing" and (
            a.silenced != a.told_silenced or inhibited != a.told_inhibited
        ):
            self._events.extend(marks.mark_events(a, silence, inhibited))

    def _new_mute_epoch(self, now: float | None = None) -> None:
        """Every alert's marks are to be computed again (at `now`: also the span of
        time, between silence boundaries, the new marks hold for)."""
        self._mute_epoch += 1
        if now is None:
            self._mute_from = self._mute_until = 0.0  # empty: the next _marks sets it
            return
        lo, hi = float("-inf"), float("inf")
        for s in (*self.config.silences, *self.api_silences.values()):
            for t in (s.starts, s.until):
                if t is None:
                    continue
                if t <= now:
                    lo = max(lo, t)
                else:
                    hi = min(hi, t)
        self._mute_from, self._mute_until = lo, hi

    def _content(self, g: _Group, now: float) -> tuple[dict[str, Entry], list[str]]:
        """(what the channel should now see, members it will never need to see)."""
        closing = g.channel in self.closing
        out: dict[str, Entry] = {}
        drop: list[str] = []
        sent = g.sent or {}
        for fp in g.members:
            a = self.alerts.get(fp)
            if a is None:
                drop.append(fp)
                continue
            if a.status == "firing":
                self._marks(a, now)  # journals a change of its marks, held or not
            if fp in self.flapping:  # held: frozen at what was last sent
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
                if self._muted(a, now):
                    continue
                out[fp] = ("firing", acked)
            elif fp in g.told_firing or (closing and (acked or self._muted(a, now))):
                out[fp] = ("resolved", acked)
            else:
                drop.append(fp)
        return out, drop

    def _refresh(self, g: _Group, now: float) -> None:
        """Recompute when the group has to flush next (or drop it when empty)."""
        if g.inflight is not None:
            return  # decided when the outcome arrives
        content, drop = self._content(g, now)
        for fp in drop:
            self._leave(g, fp)
        if not g.members:
            del self.groups[g.key]
            return
        route = self._group_route(g)
        nxt: float | None
        if g.origin is None:
            # the first flush, after group_wait, even if nothing is to be sent yet
            # (all silenced): Alertmanager's group ticks from then on regardless
            nxt = g.created + route.group_wait
        elif news(g.sent, content):
            nxt = self._tick(g, route, now)
        elif repeats(content) and g.sent_at is not None:
            nxt = ticks.repeat_tick(
                g.origin, route.group_interval, g.sent_at, route.repeat_interval, g.last_tick
            )
        else:
            nxt = None
        resend = self._resend.get(g.channel)
        if (
            resend is not None
            and g.sent_at is not None
            and content
            and (content != g.sent or _any_firing(content))  # changes too: no long waits
        ):
            nxt = min(nxt, g.sent_at + resend) if nxt is not None else g.sent_at + resend
        self._set_flush(g, nxt)

    def _tick(self, g: _Group, route: Route, at: float) -> float:
        """The group's first tick at or after `at` it has not flushed on yet. Not
        flushed since a restart (resume.py): `at`, but not before group_interval
        since its last notification (Alertmanager's groups would be new, and
        flush at once); the ticks then count from that flush."""
        if g.origin is None:
            return at
        if g.last_tick is None:
            return max(at, g.origin + route.group_interval)
        return ticks.next_tick(g.origin, route.group_interval, at, g.last_tick)

    def _set_flush(self, g: _Group, at: float | None) -> None:
        if at != g.next_flush:
            g.next_flush = at
            if at is not None:
                self._push(at, "group", g.key)

    def _leave(self, g: _Group, fp: str) -> None:
        g.members.pop(fp, None)
        g.told_firing.discard(fp)
        a = self.alerts.get(fp)
        if a is not None:
            a.groups.pop(g.key, None)
            self._forget_if_done(a)

    def _forget_if_done(self, a: _Alert) -> None:
        if a.status == "resolved" and not a.groups and self.alerts.get(a.fp) is a:
            del self.alerts[a.fp]

    def _refresh_alert(self, a: _Alert, now: float) -> None:
        self._dirty.update(a.groups)
        self._now = max(self._now, now)

    def _touch_all(self, now: float) -> None:
        """Something that can change many alerts' visibility happened (a silence
        began or ended, an acknowledgement expired)."""
        for sid, s in list(self.api_silences.items()):
            if s.until <= now:  # ended by time: journaled, and gone
                del self.api_silences[sid]
                self._events.append(marks.silence_ended(s))
        for s in self.config.silences:
            if s.until <= now and s.id not in self.config_expired:  # once, ever
                self.config_expired.add(s.id)
                self._events.append(marks.config_silence_ended(s))
        for a in self.alerts.values():
            if a.ack is not None and a.status == "firing" and not a.acked(now):
                self._events.append(marks.ack_lapsed(a, a.ack))
                a.ack = None
                a.rev += 1
        self._new_mute_epoch()
        self._dirty.update(dict.fromkeys(self.groups))
        self._escalations_all = True
        self._marks_all = True
        self._now = max(self._now, now)

    def _touch_boundaries(self, now: float) -> None:
        for s in (*self.config.silences, *self.api_silences.values()):
            for t in (s.starts, s.until):
                if t is not None and t > now:
                    self._push(t, "touch", None)

    # -- output ----------------------------------------------------------------------------

    def _push(self, at: float, kind: str, arg: Any) -> None:
        heapq.heappush(self._heap, (at, next(self._seq), kind, arg))

    def _valid(self, kind: str, arg: Any, at: float) -> bool:
        if kind == "group":
            g = self.groups.get(arg)
            return g is not None and g.next_flush == at and g.inflight is None
        if kind == "rate":
            return bool(self._rl_held.get(arg))
        if kind == "esc":
            a = self.alerts.get(arg)
            return a is not None and a.status == "firing" and a.esc_next == at
        return True

    def shift(self, step: float) -> None:
        """The wall clock stepped by `step` seconds (engine/runtime/clock_steps.py): what
        this pipeline timed itself (group waits and intervals, repeats, rate
        limits) keeps its distance from now, so a step back does not hold a
        notification for the hour and a step forward does not make every repeat
        due. The world's times (alert starts, silences, acknowledgement expiry,
        escalations, which count from the alert's start) stay where they are."""
        for g in self.groups.values():
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
        for channel, sent in self._rl_sent.items():
            self._rl_sent[channel] = deque((t + step for t in sent), maxlen=sent.maxlen)
        timed = ("group", "rate")
        self._heap = [(t + step if k in timed else t, n, k, a) for t, n, k, a in self._heap]
        heapq.heapify(self._heap)
        self._now += step

    def next_deadline(self) -> float | None:
        """The earliest time `due` has work (it may be in the past)."""
        self._settle()
        head = self._head()
        return head[0] if head else None

    def next_size(self, now: float) -> int:
        """How many alerts the next notification due by `now` carries at most
        (0: none due): a driver can make room for a big one first."""
        head = self._head()
        if head is None or head[0] > now or head[2] != "group":
            return 0
        return len(self.groups[head[3]].members)

    def _head(self) -> tuple[float, int, str, Any] | None:
        """The earliest entry of the timer heap that still holds, dropping the
        ones that went stale before it."""
        heap = self._heap
        while heap and not self._valid(heap[0][2], heap[0][3], heap[0][0]):
            heapq.heappop(heap)
        return heap[0] if heap else None

    def take_events(self) -> list[dict[str, Any]]:
        """Journal events the pipeline produced (escalated, template_failed)."""
        out, self._events = self._events, []
        return out

    def due(self, now: float, max_alerts: int | None = None) -> list[Notification]:
        """Notifications to send now, in the order they became due. With
        `max_alerts`, stop once they carry that many alerts (one notification,
        or a flush or escalation, may add more): the rest stays due, and
        next_deadline() says so."""
        out: list[Notification] = []
        self._now = max(self._now, now)
        self._settle()
        for n in self._immediate:
            self._offer(n, now, out)
        self._immediate.clear()
        heap = self._heap
        counted = carried = 0  # of `out`: notifications counted, the alerts they carry
        while heap and heap[0][0] <= now:
            if max_alerts is not None:
                for n in out[counted:]:
                    carried += len(n.alerts)
                counted = len(out)
                if carried >= max_alerts:
                    break
            at, _, kind, arg = heapq.heappop(heap)
            if not self._valid(kind, arg, at):
                continue
            if kind == "group":
                self._flush(self.groups[arg], now, out)
            elif kind == "esc":
                self._escalate(self.alerts[arg], now, out)
            elif kind == "touch":
                self._touch_all(now)
            elif kind == "rate":
                self._release(arg, now, out)
            self._settle()
            for n in self._immediate:  # resolved escalations raised on the way
                self._offer(n, now, out)
            self._immediate.clear()
        return out

    def _flush(self, g: _Group, now: float, out: list[Notification]) -> None:
        if g.origin is None or g.last_tick is None or g.next_flush is None:
            # the first flush (since a restart): the ticks count from it
            g.origin = g.last_tick = now
        else:
            g.last_tick = g.next_flush  # on the grid, though `now` may be a little late
        g.next_flush = None
        content, drop = self._content(g, now)
        for fp in drop:
            self._leave(g, fp)
        route = self._group_route(g)
        if not content or (
            not news(g.sent, content) and not self._repeat_due(g, route, content, now)
        ):
            if g.key in self.groups:
                self._refresh(g, now)
            return
        if muted(route, self.intervals, now):
            self._set_flush(
                g, self._tick(g, route, now) if route.group_interval else now + MUTE_RECHECK
            )
            return
        if len(content) == 1:
            [(fp, (st, ack))] = content.items()
            views: tuple[AlertView, ...] = (self._view(self.alerts[fp], st, ack, now),)
        else:
            views = tuple(
                sorted(
                    (
                        self._view(self.alerts[fp], st, ack, now)
                        for fp, (st, ack) in content.items()
                    ),
                    key=_order,
                )
            )
        # idempotency_key(views), from the pieces kept for it
        if g.key_prefix is None:
            g.key_prefix = _key_prefix(g.channel, g.key)
        key = _hash_key(
            g.key_prefix, (self.alerts[fp].key_item for fp in sorted(content)), g.last_key
        )
        n = self._note(g.channel, route, g.key, g.labels, views, key=key)
        g.inflight = (n.key, content)
        g.flushed_at = now
        self._offer(n, now, out)

    def _repeat_due(
        self, g: _Group, route: Route, content: Mapping[str, Entry], now: float
    ) -> bool:
        resend = self._resend.get(g.channel)
        if resend is not None and g.sent_at is not None and now >= g.sent_at + resend:
            return _any_firing(content)  # acknowledged ones too: they still fire
        if not repeats(content):
            return False
        # on a tick (ticks.py); the slack: a tick's time is a sum of intervals
        return g.sent_at is None or now >= g.sent_at + route.repeat_interval - 1e-6

    def _view(self, a: _Alert, status: Status, acked: bool, now: float) -> AlertView:
        """The alert as notifications show it; built once and shared by the groups
        of all its channels (a 1,000-alert group to three channels builds 1,000
        views, not 3,000) until something it shows changes."""
        self._marks(a, now)
        key = (a.rev, status, acked, a.silenced)
        if a.view is None or a.view_key != key:
            view = self._make_view(a, status, acked)
            a.view, a.view_key, a.key_item = view, key, _key_item(view)
        return a.view

    def _make_view(self, a: _Alert, status: Status, acked: bool) -> AlertView:
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
            silenced=a.silenced,  # _view brought the marks up to date
            stale=a.stale,
        )

    def _note(
        self,
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
        status: Status = "resolved"
        for v in views:
            if v.status == "firing":
                status = "firing"
                break
        title = body = ""
        html: str | None = None
        if channel not in self.textless:  # textless channels never read the text
            r = self.renderer.render(
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
                self._events.append(
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

    # -- outcomes --------------------------------------------------------------------------

    def delivered(self, n: Notification, ok: bool, now: float) -> None:
        """The outcome of a notification `due` produced (after all retries)."""
        if n.kind == "digest":
            for held in self._digests.pop(n.key, ()):
                self.delivered(held, ok, now)
            return
        key = self._alias.pop(n.group_key, n.group_key)
        g = self.groups.get(key)
        if g is None or g.inflight is None or g.inflight[0] != n.key:
            return
        content = g.inflight[1]
        g.inflight = None
        if ok:
            g.sent, g.sent_at, g.last_key = content, now, n.key
            for fp, (st, _) in content.items():
                if st == "firing":
                    g.told_firing.add(fp)
                else:
                    self._leave(g, fp)
            if not g.members:
                del self.groups[g.key]
                return
        else:
            # try again on the next tick (the breaker may be open), or after
            # resend_delay for an alertmanager channel, before its endsAt passes
            retry = self._tick(g, self._group_route(g), now)
            resend = self._resend.get(g.channel)
            self._set_flush(g, retry if resend is None else min(retry, now + resend))
            return
        self._refresh(g, now)

    # -- rate limit ------------------------------------------------------------------------

    def _offer(self, n: Notification, now: float, out: list[Notification]) -> None:
        rl = self._rate.get(n.channel)
        if rl is None:
            out.append(n)
            return
        held = self._rl_held.setdefault(n.channel, [])
        if not held and self._admit(n.channel, now):
            out.append(n)
            return
        held.append(n)
        self._release(n.channel, now, out)

    def _admit(self, channel: str, now: float) -> bool:
        rl = self._rate[channel]
        sent = self._rl_sent.setdefault(channel, deque())
        while sent and sent[0] <= now - rl.per:
            sent.popleft()
        if len(sent) < rl.max:
            sent.append(now)
            return True
        self._push(sent[0] + rl.per, "rate", channel)
        return False

    def _release(self, channel: str, now: float, out: list[Notification]) -> None:
        held = self._rl_held.get(channel)
        if not held or channel not in self._rate or not self._admit(channel, now):
            return
        self._rl_held[channel] = []
        if len(held) == 1:
            out.append(held[0])  # one held message is better sent as itself
            return
        d = make_digest(channel, held, "the rate limit")
        self._digests[d.key] = held
        out.append(d)

    # -- escalation ------------------------------------------------------------------------

    def _schedule_escalations_all(self, now: float) -> None:
        for a in self.alerts.values():
            if a.status == "firing":
                self._schedule_escalations(a, now)

    def _schedule_escalations(self, a: _Alert, now: float, recheck: float | None = None) -> None:
        """Set when `a` is looked at next for escalation: the next level's deadline
        of each of its routes, or `recheck`; none while it cannot escalate
        (acknowledged, flapping, silenced, inhibited: their end reschedules)."""
        nxt: float | None = recheck
        if (
            self._escalating
            and a.status == "firing"
            and not (a.acked(now) or a.fp in self.flapping or self._muted(a, now))
        ):
            for idx, r in self._targets(a):
                done = a.esc_done.get(idx, 0)
                if done < len(r.escalate):
                    at = max(now, a.starts_at + r.escalate[done].after)
                    nxt = at if nxt is None else min(nxt, at)
        if nxt != a.esc_next:
            a.esc_next = nxt
            if nxt is not None:
                self._push(nxt, "esc", a.fp)

    def _escalate(self, a: _Alert, now: float, out: list[Notification]) -> None:
        a.esc_next = None
        recheck: float | None = None
        if not (a.acked(now) or a.fp in self.flapping or self._muted(a, now)):
            for idx, r in self._targets(a):
                if a.esc_done.get(idx, 0) >= len(r.escalate):
                    continue
                if muted(r, self.intervals, now):
                    recheck = now + MUTE_RECHECK
                    continue
                self._escalate_route(a, idx, r, now, out)
        self._schedule_escalations(a, now, recheck)

    def _escalate_route(
        self, a: _Alert, idx: int, r: Route, now: float, out: list[Notification]
    ) -> None:
        while a.esc_done.get(idx, 0) < len(r.escalate):
            level = a.esc_done.get(idx, 0) + 1
            step = r.escalate[level - 1]
            if a.starts_at + step.after > now:
                return
            a.esc_done[idx] = level
            chans = [c for c in step.channels if c in self.channel_types]
            for ch in chans:
                if ch not in r.channels:  # route channels hear of the end from their group
                    a.esc_channels[ch] = level
                self._offer(self._escalation_note(a, ch, level, now, r), now, out)
            self._events.append(
                {
                    "event": "escalated",
                    "alert": a.fp,
                    "rule": a.rule,
                    "level": level,
                    "channels": chans,
                }
            )

    def _escalation_note(
        self, a: _Alert, channel: str, level: int, now: float, route: Route | None = None
    ) -> Notification:
        view = self._view(a, a.status, a.acked(now), now)
        gkey = f"{channel}|escalation{level}|{a.fp}"
        return self._note(channel, route, gkey, {}, (view,), kind="escalation", level=level)


def _any_firing(content: Mapping[str, Entry]) -> bool:
    return any(st == "firing" for st, _ in content.values())


def _route_sig(r: Route) -> tuple[Any, ...]:
    """What a route's groups depend on: its matchers and group_by."""
    ms = tuple(
        (m.label, m.op, tuple(sorted(m.values)), m.regex.pattern if m.regex else None)
        for m in r.matchers
    )
    return (ms, r.group_by)

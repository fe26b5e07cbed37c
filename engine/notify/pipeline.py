"""The notification decisions, pure and driven by an explicit clock.

    ingest(event, now)  journaled alert events: firing, resolved, acknowledged, flapping, silences
    due(now)            -> Notifications to hand to channels now
    delivered(n, ok)    the outcome, so dedup counts only what really went out
    next_deadline()     when `due` has something to do next (None: nothing scheduled)

Per alert and channel, in Alertmanager's order: route → silence → inhibit →
time interval → group → dedup/repeat → flapping hold → rate limit. No I/O, no
clock reads, no tasks: the Dispatcher drives it on the wall clock, `vigil test`
on a simulated one.

The Pipeline coordinates; the policies live in modules of their own: groups
(groups.py, on Alertmanager's ticks.py and dedup.py), escalation
(escalation.py), the rate limit and its digests (ratelimit.py, digest.py), the
marks' journal events (marks.py), the notifications' views and text
(render.py), the keys (keys.py); the alert record is alert_state.py. A restart
rebuilds all of this from the journal (resume.py).

Who hears of what. Firing alerts that are silenced, inhibited, muted by time,
or acknowledged are not sent, except that channels which close incidents
(PagerDuty, Opsgenie: `closes_incidents`) do get acknowledged alerts (to
acknowledge the incident). Resolved alerts go to channels that were told of
them firing, and to incident-closing channels also when they were silenced,
inhibited or acknowledged. A flapping alert's content is frozen at what was last
sent until it stops flapping.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Collection, Mapping
from typing import Any

from engine.common.records import JournalEvent
from engine.common.timefmt import to_epoch
from engine.config.model import Config, Route, Rule, Silence, TimeInterval
from engine.notify import am_timing, escalation, groups, marks, resume, router
from engine.notify.alert_state import AlertState, new_alert
from engine.notify.base import Notification
from engine.notify.groups import GroupState
from engine.notify.marks import ack_record
from engine.notify.ratelimit import RateLimiter
from engine.templates import renderer as templates

__all__ = ["CLOSING_TYPES", "Pipeline"]

# Types whose channels close incidents when the classes are not at hand (offline).
CLOSING_TYPES = frozenset({"pagerduty", "opsgenie", "alertmanager"})  # as their classes say
SETTLE_WEIGHT = 64  # members of a group that count as one group in settle(limit)


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
        self.alerts: dict[str, AlertState] = {}
        self.groups: dict[str, GroupState] = {}
        self.api_silences: dict[str, Silence] = {}
        # channel-file silences whose end by time was journaled (silence_expired)
        self.config_expired: set[str] = set()
        self.flapping: set[str] = set()  # kept across resolve: the state machine does
        self._heap: list[tuple[float, int, str, Any]] = []
        self._seq = itertools.count()
        self._events: list[JournalEvent] = []
        self.alias: dict[str, str] = {}  # old group key -> new, across reconfigure
        # the last stage: it wakes the pipeline ("rate") when a held channel has room
        self.rate = RateLimiter(lambda at, channel: self.push(at, "rate", channel))
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
        self.touch_boundaries(float("-inf"))  # config silences' starts/ends

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
        self.rate.configure({c.name: c.rate_limit for c in config.channels if c.rate_limit})
        self.escalating = any(r.escalate for r in config.routes)
        # alertmanager channels: firing alerts re-sent this often (am_timing.py)
        self.resend = am_timing.resend_delays(config.channels)
        self.new_mute_epoch()

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
        remap = groups.carry_over(self, old_routes)
        for a in self.alerts.values():
            a.groups.clear()
            a.targets = None
            a.esc_done = {remap[i]: v for i, v in a.esc_done.items() if i in remap}
            if a.status == "firing":
                self.inhibitor.set_firing(a.fp, a.match, True)
        for a in list(self.alerts.values()):
            groups.assign(self, a)
        for key in list(self.groups):
            groups.refresh(self, self.groups[key], now)
        escalation.schedule_all(self, now)
        self.touch_boundaries(now)
        if any(s.until <= now and s.id not in self.config_expired for s in config.silences):
            self.push(now, "touch", None)  # added already ended: journaled once

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
                    self.push(until, "touch", None)
            else:
                a.ack = None
                escalation.schedule(self, a, now)
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
                    escalation.schedule(self, a, now)
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
                self.touch_boundaries(now)
        elif (
            kind in ("silence_expired", "unsilenced")
            and fp is None
            and self.api_silences.pop(str(event.get("id")), None) is not None
        ):
            self._touch_all(now)

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
        new = new_alert(
            self.rules,
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
        groups.assign(self, new)
        if not new.groups:
            self._marks_due[fp] = None
        self._refresh_alert(new, now)
        escalation.schedule(self, new, now)
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
        self.send_soon(
            [escalation.note(self, a, ch, level, now) for ch, level in a.esc_channels.items()], now
        )
        a.esc_next = None
        self._refresh_alert(a, now)
        self._inhibit_changed(self.inhibitor.set_firing(fp, a.match, False), now)
        self.forget_if_done(a)

    def _inhibit_changed(self, changes: list[tuple[int, tuple[str, ...]]], now: float) -> None:
        if changes:
            self._inhibit_changes.update(changes)
            self.new_mute_epoch()
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
                    escalation.schedule(self, a, now)
        if self._escalations_all:
            self._escalations_all = False
            escalation.schedule_all(self, now)
        if self._marks_all or self._marks_due:
            fps = self.alerts if self._marks_all else self._marks_due
            self._marks_all, due, self._marks_due = False, fps, {}
            for fp in due:
                m = self.alerts.get(fp)
                if m is not None and m.status == "firing" and not m.groups:
                    self.refresh_marks(m, now)
        left = len(self._dirty) if limit is None else limit
        while self._dirty and left > 0:
            key = next(iter(self._dirty))
            del self._dirty[key]
            g = self.groups.get(key)
            # a group counts once per SETTLE_WEIGHT members: refreshing one looks at each
            left -= 1 if g is None else 1 + len(g.members) // SETTLE_WEIGHT
            if g is not None:
                groups.refresh(self, g, now)

    # -- routing into groups ------------------------------------------------------------

    def targets(self, a: AlertState) -> list[tuple[int, Route]]:
        if a.targets is None:
            a.targets = router.targets(self.config, a.match, self.rules.get(a.rule))
        return a.targets

    # -- what a channel should see ------------------------------------------------------

    def muted(self, a: AlertState, now: float) -> bool:
        self.refresh_marks(a, now)
        return a.muted

    def refresh_marks(self, a: AlertState, now: float) -> None:
        """Bring `a.silenced` and `a.muted` up to date for `now`."""
        if not self._mute_from <= now < self._mute_until:
            self.new_mute_epoch(now)
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

    def new_mute_epoch(self, now: float | None = None) -> None:
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

    def forget_if_done(self, a: AlertState) -> None:
        if a.status == "resolved" and not a.groups and self.alerts.get(a.fp) is a:
            del self.alerts[a.fp]

    def _refresh_alert(self, a: AlertState, now: float) -> None:
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
        self.new_mute_epoch()
        self._dirty.update(dict.fromkeys(self.groups))
        self._escalations_all = True
        self._marks_all = True
        self._now = max(self._now, now)

    def touch_boundaries(self, now: float) -> None:
        for s in (*self.config.silences, *self.api_silences.values()):
            for t in (s.starts, s.until):
                if t is not None and t > now:
                    self.push(t, "touch", None)

    # -- output ----------------------------------------------------------------------------

    def push(self, at: float, kind: str, arg: Any) -> None:
        heapq.heappush(self._heap, (at, next(self._seq), kind, arg))

    def _valid(self, kind: str, arg: Any, at: float) -> bool:
        if kind == "group":
            g = self.groups.get(arg)
            return g is not None and g.next_flush == at and g.inflight is None
        if kind == "rate":
            return self.rate.holds(arg)
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
        groups.shift(self.groups, step)
        self.rate.shift(step)
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

    def emit(self, event: JournalEvent) -> None:
        """A journal event for take_events()."""
        self._events.append(event)

    def send_soon(self, notes: list[Notification], now: float) -> None:
        """Notifications made outside the timers (an escalation channel told of a
        resolve): due() hands them out at `now`, through the rate limit."""
        if notes:
            self._immediate.extend(notes)
            self.push(now, "now", None)

    def take_events(self) -> list[JournalEvent]:
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
            self.rate.offer(n, now, out)
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
                groups.flush(self, self.groups[arg], now, out)
            elif kind == "esc":
                escalation.escalate(self, self.alerts[arg], now, out)
            elif kind == "touch":
                self._touch_all(now)
            elif kind == "rate":
                self.rate.release(arg, now, out)
            self._settle()
            for n in self._immediate:  # resolved escalations raised on the way
                self.rate.offer(n, now, out)
            self._immediate.clear()
        return out

    # -- outcomes --------------------------------------------------------------------------

    def delivered(self, n: Notification, ok: bool, now: float) -> None:
        """The outcome of a notification `due` produced (after all retries)."""
        if n.kind == "digest":
            for held in self.rate.digested(n.key):
                self.delivered(held, ok, now)
            return
        groups.delivered(self, n, ok, now)

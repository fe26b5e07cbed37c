"""The alert state machine: one pure function from (rule, previous alert, result, now)
to (next alert, events).

    inactive ──match──► pending ──for / consecutive──► firing ──clear──► resolved
       ▲  ▲                │                              │                 │
       │  └────no match────┘ (event `inactive`)           │ keep_firing_for │
       │                                                  │ + resolve_expr  │
       └───────────────no match (silently)────────────────┼─────────────────┘
                                        match: a new episode (pending or firing)

With neither `for` nor `consecutive` (> 1) an alert goes from inactive to firing
at once (one `firing` event, no `pending`); with both, both must hold. A firing
alert resolves when the condition is false, `keep_firing_for` has passed since
the first evaluation where it no longer held (`false_since`), and, if the rule has a
`resolve_expr`, that holds (hysteresis). `resolved` lasts one step: then a new
episode or, silently, inactive.

Results that say nothing about the condition (no_data: keep, on_error: error or
keep) freeze the alert: no transition, no timer or streak change, even if `for`
has passed meanwhile; the next value is judged against the unchanged timers.
no_data: ok counts as "condition false and resolve condition true"; no_data: alert
and on_error: alert count as "condition true". The `no_data` and `error` marks get
one event when they start (not for on_error: keep, which is silent) and are
cleared, without an event, by the next "value" result. `flapping` counts the
firing and resolved transitions within the rule's window and never changes the
state; the notification pipeline holds notifications back while it is set.

`step` is pure: no clock reads (every duration is measured on the monotonic `now`
the caller passes), no I/O, no globals, no mutation. Alerts and events are frozen;
`step` returns the very same `prev` object when nothing changed, so a caller can
skip work with an identity check (`alert is prev`).

The evaluator drives it like this:

    fp = fingerprint(rule.id, labels)           # cache per instance: hashing costs µs
    prev = alerts.get(fp)
    alert, events = step(rule, prev, result, now, labels=labels)
    if is_idle(alert):
        alerts.pop(fp, None)                    # nothing worth remembering
    elif alert is not prev:
        alerts[fp] = alert
    for e in events: journal(e)

Steps that find nothing (no prev, nothing happening) return the shared `IDLE`
sentinel, which has no fingerprint and must not be stored; `is_idle` is the
cheap test for "nothing to keep". Passing IDLE back as `prev` equals passing None.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

from engine.common.records import AlertEventKind

if TYPE_CHECKING:
    from engine.config.model import Flapping, Rule

__all__ = [
    "IDLE",
    "NO_EVENTS",
    "Alert",
    "AlertState",
    "Event",
    "EventKind",
    "Result",
    "fingerprint",
    "flap_calm",
    "flapping_ends_at",
    "is_idle",
    "step",
]

AlertState = Literal["inactive", "pending", "firing", "resolved"]
EventKind = AlertEventKind  # the kinds of the journal events (engine/common/records.py)
_Transition = Literal["pending", "firing", "resolved", "inactive"]

_NO_LABELS: Mapping[str, str] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class Result:
    """One evaluation of one alert instance.

    kind "value": the expression ran; `matched` is its boolean, `resolve_ok` the
    resolve_expr's boolean (None when the rule has none or it was not evaluated).
    kind "no_data": a metric the expression needs is missing.
    kind "error": the expression raised; `error` says why.
    kind "stale": a collector the rule reads is down, so nothing is known: the
    alert keeps its state and its timers stop (they resume, shifted by the
    outage, with the next other result); only collector_down speaks meanwhile.
    """

    kind: Literal["value", "no_data", "error", "stale"]
    matched: bool = False
    resolve_ok: bool | None = None
    value: Any = None
    error: str | None = None
    # an `each` rule's element, for its annotations (`it`); never stored in the Alert
    element: Any = None
    # a false value that cannot end the alert yet (windows still filling): the
    # state and timers stay, the value is kept for display
    held: bool = False


class Alert(NamedTuple):
    """The live state of one alert instance (rule + identity labels).

    A NamedTuple rather than a frozen dataclass: it is as immutable, and building
    one (every step of a firing alert) costs a fifth of a frozen dataclass's.

    Times are monotonic seconds. `pending_since` is when the expression first held
    in the current episode (Prometheus' ActiveAt): set on entering pending, or on
    firing at once; kept through firing and resolved, cleared on inactive.
    `firing_since` is kept on resolved too, so a resolved event still says when
    the alert started. `value` is the last observed value of a "value" result.
    """

    fingerprint: str
    rule_id: str
    labels: Mapping[str, str]
    state: AlertState
    value: Any = None
    pending_since: float | None = None
    firing_since: float | None = None
    last_true: float | None = None
    streak: int = 0
    changes: tuple[float, ...] = ()
    flapping: bool = False
    no_data: bool = False
    error: str | None = None
    stale_since: float | None = None  # set while a collector it reads is down
    false_since: float | None = None  # first evaluation of a firing alert found false


@dataclass(frozen=True, slots=True)
class Event:
    """What happened on a step; `alert` is the state after the step (all events of
    one step carry the same alert object)."""

    kind: EventKind
    alert: Alert


NO_EVENTS: tuple[Event, ...] = ()

# Returned for "no alert and nothing happened"; never stored, never journaled.
IDLE = Alert(fingerprint="", rule_id="", labels=_NO_LABELS, state="inactive")


def fingerprint(rule_id: str, labels: Mapping[str, str]) -> str:
    """Stable identity of an alert instance: the first 16 hex digits of the SHA-256
    of the canonical JSON `[rule_id, [[name, value], ...sorted by name]]`.

    ASCII-only JSON with fixed separators, so the result is the same in every
    process, platform and Python version; label order does not matter.
    """
    canonical = json.dumps(
        [rule_id, sorted(labels.items())], ensure_ascii=True, separators=(",", ":")
    )
    return hashlib.sha256(canonical.encode("ascii")).hexdigest()[:16]


def flap_calm(fl: Flapping) -> int:
    """A flapping alert stops flapping once fewer than this many of its changes lie
    within the window; max(1, ...) so that max_changes = 1 can still clear once quiet."""
    return max(1, fl.max_changes // 2)


def flapping_ends_at(changes: Iterable[float], fl: Flapping, now: float) -> float:
    """The earliest time a flapping alert with these `changes` (epoch seconds)
    stops flapping, if it changes state no more: when the flap_calm()-th newest
    change leaves the window (`now` if fewer are in it). Pure: `step` clears the
    mark by the same count, and `vigil explain` says when."""
    calm = flap_calm(fl)
    recent = sorted(t for t in changes if t > now - fl.window)
    return recent[len(recent) - calm] + fl.window if len(recent) >= calm else now


def is_idle(alert: Alert) -> bool:
    """True when the alert carries nothing worth keeping: inactive, no recent state
    changes (flapping history), no marks. The caller drops it; the next step with
    `prev=None` rebuilds it when needed."""
    return alert is IDLE or (
        alert.state == "inactive"
        and not alert.changes
        and not alert.flapping
        and not alert.no_data
        and alert.error is None
    )


def step(
    rule: Rule,
    prev: Alert | None,
    result: Result,
    now: float,
    *,
    labels: Mapping[str, str] | None = None,
) -> tuple[Alert, tuple[Event, ...]]:
    """Advance one alert instance by one evaluation.

    `labels` (the identity labels: rule labels + the `each` element's) is only read
    when there is no `prev` (None or IDLE); it defaults to `rule.labels`.
    Returns the next alert (the same object as `prev` when nothing changed, `IDLE`
    when there is still nothing) and the events of this step, oldest cause first:
    `no_data`/`error`, then the transition, then `flapping`/`flapping_end`.
    Raises ValueError for a Result kind it does not know (a caller bug).
    """
    # Hot path: ~all of 10,000 rules per pass are quiet. Allocate nothing.
    if result.kind == "stale":
        return _stale(prev, now)
    if result.kind == "value" and not result.matched:
        if prev is None or prev is IDLE:
            return IDLE, NO_EVENTS
        if (
            prev.state == "inactive"
            and not prev.no_data
            and prev.error is None
            and not prev.flapping
            and (not prev.changes or prev.changes[0] > now - rule.flapping.window)
        ):
            return prev, NO_EVENTS
    # Steady firing: the condition still holds with the same value. `streak` only
    # gates pending and `last_true` only feeds keep_firing_for, so when that is 0
    # there is nothing to record and the alert stays the same object.
    elif (  # noqa: SIM114 - two shortcuts, each with its own reason
        result.kind == "value"
        and prev is not None
        and prev.state == "firing"
        and rule.keep_firing_for == 0
        and prev.stale_since is None
        and not prev.no_data
        and prev.error is None
        and not prev.flapping
        and (not prev.changes or prev.changes[0] > now - rule.flapping.window)
        and _same(result.value, prev.value)
    ):
        return prev, NO_EVENTS
    # Still no data (a metric a test or a collector does not provide): a quiet
    # alert marked no_data stays as it is under `ok` and `keep`.
    elif (
        result.kind == "no_data"
        and prev is not None
        and prev.no_data
        and prev.state == "inactive"
        and rule.no_data != "alert"
        and prev.streak == 0
        and prev.error is None
        and not prev.flapping
        and not prev.changes
    ):
        return prev, NO_EVENTS
    # No alert yet: start from the blank IDLE; _advance builds the identity only
    # if something happens, so a step that changes nothing hashes nothing.
    return _advance(rule, IDLE if prev is None else prev, result, now, labels)


def _stale(prev: Alert | None, now: float) -> tuple[Alert, tuple[Event, ...]]:
    """A collector the rule reads is down: nothing is known about the condition.
    A pending or firing alert is marked stale once (one event) and otherwise kept
    as it is; anything else stays as it is, silently."""
    if prev is None or prev is IDLE:
        return IDLE, NO_EVENTS
    if prev.stale_since is not None or prev.state not in ("pending", "firing"):
        return prev, NO_EVENTS
    alert = prev._replace(stale_since=now)
    return alert, (Event("stale", alert),)


def _advance(
    rule: Rule, prev: Alert, result: Result, now: float, labels: Mapping[str, str] | None
) -> tuple[Alert, tuple[Event, ...]]:
    kinds: list[EventKind] = []
    value = prev.value
    pending_since = prev.pending_since
    last_true = prev.last_true
    false_since = prev.false_since
    if prev.stale_since is not None:
        # Back from a collector outage: the timers were stopped meanwhile, so `for`
        # and keep_firing_for go on from where they were, not from the outage's length.
        kinds.append("stale_end")
        paused = max(0.0, now - prev.stale_since)
        if last_true is not None:
            last_true += paused
        if false_since is not None:
            false_since += paused
        if prev.state == "pending" and pending_since is not None:
            pending_since += paused
    no_data = prev.no_data
    error = prev.error
    # What the result means for the state machine: True/False = the condition
    # holds or not; None = frozen (state and timers untouched this step).
    matched: bool | None
    resolve_ok: bool | None = None

    kind = result.kind
    if kind == "value":
        matched, resolve_ok, value = result.matched, result.resolve_ok, result.value
        no_data, error = False, None
        if result.held:
            matched = None
    elif kind == "no_data":
        if not no_data:
            kinds.append("no_data")
        no_data = True
        policy = rule.no_data
        if policy == "ok":
            # Missing data counts as "all clear", including the resolve condition:
            # otherwise a resolve_expr rule could never resolve without data.
            matched, resolve_ok = False, True
        elif policy == "alert":
            matched = True
        else:  # keep
            matched = None
    elif kind == "error":
        policy_e = rule.on_error
        if policy_e == "keep":
            matched = None  # silent: no mark, no event
        else:
            if policy_e == "error" and error is None:
                kinds.append("error")
            # The mark also explains an alert fired by on_error: alert.
            error = result.error or "expression failed"
            matched = True if policy_e == "alert" else None
    else:
        raise ValueError(f"unknown result kind {kind!r}")

    state: AlertState = prev.state
    firing_since = prev.firing_since
    streak = prev.streak
    transition: _Transition | None = None

    if matched is None:
        pass
    elif matched:
        last_true = now
        false_since = None
        if state == "inactive" or state == "resolved":
            # A new episode.
            streak = 1
            pending_since, firing_since = now, None
            if _ready(rule, now, now, 1):
                state = transition = "firing"
                firing_since = now
            else:
                state = transition = "pending"
        else:
            streak += 1
            if state == "pending" and _ready(rule, now, pending_since, streak):
                state = transition = "firing"
                firing_since = now
    else:
        streak = 0
        if state == "pending":
            state = transition = "inactive"
            pending_since = None
        elif state == "firing":
            # keep_firing_for counts from the first evaluation that found the
            # condition false (SPEC; Prometheus' KeepFiringSince), not from the
            # last one that found it true, which would end it an evaluation early
            if false_since is None:
                false_since = now
            if now - false_since >= rule.keep_firing_for and (
                rule.resolve_expr is None or resolve_ok is True
            ):
                state = transition = "resolved"
                false_since = None
        elif state == "resolved":
            # The episode is over and reported; back to rest without an event.
            state = "inactive"
            pending_since = firing_since = None

    if transition is not None:
        kinds.append(transition)

    # Flapping: count event-bearing transitions within the window.
    changes = prev.changes
    flapping = prev.flapping
    fl = rule.flapping
    if fl.max_changes <= 0 or fl.window <= 0:  # flapping detection off
        changes = ()
        if flapping:
            flapping = False
            kinds.append("flapping_end")
    else:
        horizon = now - fl.window
        if changes and changes[0] <= horizon:
            changes = tuple(t for t in changes if t > horizon)
        if transition in ("firing", "resolved"):
            # Only what a channel hears counts: a pending period (or one that ends
            # without firing) is no flap, else one ordinary `for` episode would be
            # three changes and two episodes make the default "flapping".
            # Capped at max_changes: both thresholds only need counts up to that.
            changes = (*changes, now)[-fl.max_changes :]
        if not flapping and len(changes) >= fl.max_changes:
            flapping = True
            kinds.append("flapping")
        elif flapping and len(changes) < flap_calm(fl):
            flapping = False
            kinds.append("flapping_end")

    if (
        state == prev.state
        and streak == prev.streak
        and last_true == prev.last_true
        and pending_since == prev.pending_since
        and firing_since == prev.firing_since
        and no_data == prev.no_data
        and error == prev.error
        and flapping == prev.flapping
        and changes == prev.changes
        and prev.stale_since is None
        and false_since == prev.false_since
        and _same(value, prev.value)
    ):
        return prev, NO_EVENTS  # nothing changed means nothing to report either

    if prev is IDLE:
        ls = rule.labels if labels is None else labels
        fp, rule_id = fingerprint(rule.id, ls), rule.id
        ls = MappingProxyType(dict(ls))  # a private read-only copy: alerts are frozen
    else:
        fp, rule_id, ls = prev.fingerprint, prev.rule_id, prev.labels
    # Positional: keyword arguments cost ~40% more on this path (field order is
    # the class's, checked by test_alert_field_order).
    alert = Alert(
        fp,
        rule_id,
        ls,
        state,
        value,
        pending_since,
        firing_since,
        last_true,
        streak,
        changes,
        flapping,
        no_data,
        error,
        None,  # stale_since: any result but "stale" ends an outage
        false_since,
    )
    if not kinds:
        return alert, NO_EVENTS
    return alert, tuple([Event(k, alert) for k in kinds])


def _ready(rule: Rule, now: float, pending_since: float | None, streak: int) -> bool:
    """Whether a pending alert may fire. With both `for` and `consecutive`
    configured, both must hold: neither may fire the alert early."""
    if rule.for_ > 0 and (pending_since is None or now - pending_since < rule.for_):
        return False
    return rule.consecutive <= 1 or streak >= rule.consecutive


def _same(a: Any, b: Any) -> bool:
    """Equal values, without calling `==` on arbitrary objects (which may raise or
    return non-bools); a fresh but equal number must not cost a new Alert."""
    return a is b or (type(a) is type(b) and type(a) in _SCALARS and a == b)


_SCALARS = frozenset({int, float, str, bool})

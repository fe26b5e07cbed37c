"""Rebuild a Pipeline's delivery state from the durable state (the replayed
journal), so that a restart, clean or not, neither loses nor repeats a
notification:

- API silences, acknowledgements, flapping marks, escalation levels;
- every firing alert, and every resolved alert some channel was told fires and
  has not yet been told ended (engine/notify/delivery_log.py, "resolving"): that
  channel gets the resolve, once, when its group's group_interval comes;
- per group, what its channel was last told ("told"): the dedup stage compares
  with it, the next Idempotency-Key chains from its key, and the group's timers
  (group_interval, repeat_interval) count from when it was delivered; and the
  alerts told firing before and left out since (acknowledged, silenced): the
  channel still believes them firing, so it gets their resolve.

A state written before groups were recorded (no "told") falls back to each firing
alert's last outcome per channel.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from engine.common.timefmt import to_epoch
from engine.notify import escalation, groups, router
from engine.notify.alert_state import new_alert
from engine.notify.dedup import Entry
from engine.notify.marks import ack_record

if TYPE_CHECKING:
    from engine.notify.alert_state import AlertState
    from engine.notify.base import Notification
    from engine.notify.groups import GroupState
    from engine.notify.host import Resumes

__all__ = ["load_state"]


def load_state(p: Resumes, state: Mapping[str, Any], now: float) -> None:

    for sid, d in (state.get("silences") or {}).items():
        s = router.silence_from_state(str(sid), d)
        if s is not None:
            p.api_silences[s.id] = s
    p.new_mute_epoch()
    told: dict[str, dict[str, Any]] = {}  # per firing alert: its last outcome per channel
    for fp, d in (state.get("alerts") or {}).items():
        if d.get("state") != "firing":
            continue
        a = _alert(p, str(fp), d, now)
        ack = d.get("ack")
        if isinstance(ack, Mapping):
            a.ack = ack_record(ack, to_epoch(ack.get("at")) or now)
            if a.ack["until"] is not None and a.ack["until"] > now:
                p.push(a.ack["until"], "touch", None)
        level = int(d.get("escalation") or 0)
        if d.get("flapping"):
            p.flapping.add(a.fp)
        a.stale = bool(d.get("stale"))
        a.told_silenced = bool(d.get("mark_silenced"))
        a.told_inhibited = bool(d.get("mark_inhibited"))
        p.alerts[a.fp] = a
        p.inhibitor.set_firing(a.fp, a.match, True)
        if level:
            for ridx, _ in p.targets(a):
                a.esc_done[ridx] = level
        told[a.fp] = dict(d.get("notified") or {})
    owed: dict[str, dict[str, float]] = {}  # resolved alert -> channels owed its end
    for fp, d in (state.get("resolving") or {}).items():
        if fp in p.alerts or not isinstance(d, Mapping):
            continue  # firing again: the new episode took its place
        a = _alert(p, str(fp), d, now)
        a.status = "resolved"
        a.ends_at = to_epoch(d.get("ends_at")) or now
        p.alerts[a.fp] = a
        owed[a.fp] = {str(ch): to_epoch(ts) or now for ch, ts in (d.get("channels") or {}).items()}
    levels = {
        str(fp): d.get("levels") or {}
        for fp, d in (state.get("resolving") or {}).items()
        if isinstance(d, Mapping)
    }
    soon: list[Notification] = []  # escalation channels owed a resolve
    for a in list(p.alerts.values()):
        groups.assign(p, a)
        routed = {p.groups[k].channel for k in a.groups}
        if a.fp in owed:  # only the groups of channels still owed the resolve
            for gkey in list(a.groups):
                g = p.groups[gkey]
                if g.channel not in owed[a.fp]:
                    groups.leave(p, g, a.fp)
            # told outside its groups (by escalation): told of the end the same way
            for ch in owed[a.fp]:
                if ch not in routed and ch in p.channel_types:
                    told_at = levels.get(a.fp, {}).get(ch)
                    level = told_at if isinstance(told_at, int) and told_at > 0 else 1
                    soon.append(escalation.note(p, a, ch, level, now))
        else:
            for ch, rec in told.get(a.fp, {}).items():
                lvl = rec.get("level") if isinstance(rec, Mapping) else None
                if (
                    isinstance(lvl, int)
                    and ch not in routed
                    and ch in p.channel_types
                    and rec.get("ok", True)
                ):
                    a.esc_channels[ch] = lvl
    p.send_soon(soon, now)
    records = state.get("told") or {}
    for g in list(p.groups.values()):
        rec = records.get(g.key)
        if isinstance(rec, Mapping) and rec.get("channel") == g.channel:
            _from_record(g, rec, owed, now)
        else:
            _from_alerts(p, g, told, owed, now)
        groups.refresh(p, g, now)
    escalation.schedule_all(p, now)
    p.touch_boundaries(now)
    # silences and acknowledgements that ended while the daemon was down: journaled
    p.config_expired = set(state.get("config_silences_expired") or ())
    if (
        any(s.until <= now for s in p.api_silences.values())
        or any(s.until <= now and s.id not in p.config_expired for s in p.config.silences)
        or any(a.ack is not None and not a.acked(now) for a in p.alerts.values())
    ):
        p.push(now, "touch", None)


def _alert(p: Resumes, fp: str, d: Mapping[str, Any], now: float) -> AlertState:

    starts = to_epoch(d.get("firing_since", d.get("starts_at")))
    annotations = d.get("annotations")
    return new_alert(
        p.rules,
        fp,
        str(d.get("rule") or ""),
        d.get("labels") or {},
        str(d.get("severity") or ""),
        d.get("value"),
        annotations if isinstance(annotations, Mapping) else None,
        starts if starts is not None else now,
    )


def _from_record(
    g: GroupState, rec: Mapping[str, Any], owed: Mapping[str, Mapping[str, float]], now: float
) -> None:
    """The group's last delivered notification, as the journal recorded it."""
    acked = set(rec.get("acked") or ())
    sent: dict[str, Entry] = {}
    for fp in rec.get("firing") or ():
        sent[str(fp)] = ("firing", fp in acked)
    for fp in rec.get("resolved") or ():
        sent[str(fp)] = ("resolved", fp in acked)
    left_out = set(rec.get("left_out") or ())
    for fp in g.members:
        if sent.get(fp, ("",))[0] == "firing" or g.channel in owed.get(fp, {}):
            g.told_firing.add(fp)
            sent.setdefault(fp, ("firing", False))
        elif fp in left_out:  # told firing before, left out since: owed its end
            g.told_firing.add(fp)
    for fp in rec.get("forgotten") or ():  # acknowledged since: news once that ends
        sent.pop(str(fp), None)
    ts = _ts(rec.get("ts"), now)
    g.sent, g.sent_at, g.flushed_at = sent, ts, ts
    # its ticks go on from its last notification; the first flush after the
    # restart is at once (groups.tick), like a new group of old alerts
    g.origin = ts
    key = rec.get("key")
    g.last_key = key if isinstance(key, str) else None


def _from_alerts(
    p: Resumes,
    g: GroupState,
    told: Mapping[str, Mapping[str, Any]],
    owed: Mapping[str, Mapping[str, float]],
    now: float,
) -> None:
    """No record of the group: what its alerts say they were told on its channel."""

    sent: dict[str, Entry] = {}
    at: float | None = None
    for fp in g.members:
        a = p.alerts[fp]
        if fp in owed:
            ts = owed[fp].get(g.channel)
            if ts is None:
                continue
            sent[fp] = ("firing", False)
        else:
            rec = told.get(fp, {}).get(g.channel)
            if not isinstance(rec, Mapping) or not rec.get("ok", True):
                continue
            if rec.get("status") != "firing":
                continue
            ts = to_epoch(rec.get("ts")) or now
            ack_at = None if a.ack is None else to_epoch(a.ack.get("at"))
            sent[fp] = ("firing", a.ack is not None and ack_at is not None and ts >= ack_at)
        g.told_firing.add(fp)
        at = ts if at is None else max(at, ts)
    if sent:
        g.sent, g.sent_at, g.flushed_at = sent, at, at
        g.origin = at


def _ts(v: Any, now: float) -> float:
    return float(v) if isinstance(v, int | float) else now

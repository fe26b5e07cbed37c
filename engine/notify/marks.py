"""Journal events of what happens to alerts without a transition of their own:
a firing alert becomes silenced or unsilenced, inhibited or no longer inhibited
(SPEC's `silenced`, `unsilenced`, `inhibited`, and `uninhibited` for the end of
an inhibition); an API silence ends by time (`silence_expired` with
`"cause": "time"`); an acknowledgement lapses (`unacknowledged` with
`"cause": "expired"`).

The pipeline computes the marks anyway (to decide who hears of what); these
helpers turn a change of them into the event, once: an alert remembers what
the journal was last told (`told_silenced`, `told_inhibited`, restored from the
state after a restart), so a restart does not journal the same mark again.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from engine.common.records import (
    AckRecord,
    AlertFields,
    MarkEvent,
    MarkKind,
    SilenceExpiredEvent,
    UnackEvent,
)
from engine.common.timefmt import to_epoch
from engine.config.model import Silence
from engine.notify.base import iso
from engine.notify.hold import FREE, Hold

__all__ = ["ack_hold", "ack_lapsed", "ack_record", "mark_events", "silence_ended"]


class Marked(Protocol):
    fp: str
    rule: str
    labels: dict[str, str]
    severity: str
    value: Any
    told_silenced: bool
    told_inhibited: bool


def _alert_fields(a: Marked) -> AlertFields:
    return {
        "alert": a.fp,
        "rule": a.rule,
        "labels": dict(a.labels),
        "severity": a.severity,
        "value": a.value,
    }


def _mark(kind: MarkKind, a: Marked) -> MarkEvent:
    # spelled out: a ** of _alert_fields would leave mypy unsure of `silence`
    return {
        "event": kind,
        "alert": a.fp,
        "rule": a.rule,
        "labels": dict(a.labels),
        "severity": a.severity,
        "value": a.value,
    }


def mark_events(a: Marked, silence: Silence | None, inhibited: bool) -> list[MarkEvent]:
    """The events for a firing alert's marks as just computed (none if the journal
    already says so); updates what the alert remembers."""
    out: list[MarkEvent] = []
    silenced = silence is not None
    if silenced != a.told_silenced:
        a.told_silenced = silenced
        ev = _mark("silenced" if silenced else "unsilenced", a)
        if silence is not None:
            ev["silence"] = silence.id
        out.append(ev)
    if inhibited != a.told_inhibited:
        a.told_inhibited = inhibited
        out.append(_mark("inhibited" if inhibited else "uninhibited", a))
    return out


def silence_ended(s: Silence) -> SilenceExpiredEvent:
    """An API silence whose `until` passed: it leaves the state (and is listed by
    `vigil silences --all` from then on)."""
    return {"event": "silence_expired", "id": s.id, "cause": "time", "until": iso(s.until)}


def config_silence_ended(s: Silence) -> SilenceExpiredEvent:
    """A channel file's silence whose `until` passed (it stays in the config, so
    the event says where it came from: the state remembers it was journaled)."""
    return {**silence_ended(s), "source": "config", "reason": s.reason}


def ack_lapsed(a: Marked, ack: Mapping[str, Any]) -> UnackEvent:
    """An acknowledgement whose `until` passed."""
    return {
        "event": "unacknowledged",
        **_alert_fields(a),
        "cause": "expired",
        "by": ack.get("by"),
        "until": iso(until) if isinstance(until := ack.get("until"), int | float) else until,
    }


def ack_hold(ack: Mapping[str, Any] | None, now: float) -> Hold:
    """Acknowledgement's "why not now": held ("acknowledged") until its `until`
    (next_at; None: until the alert resolves); once that passed, not held
    ("ack_expired", next_at the time it ended). `ack` is an ack_record()."""
    if ack is None:
        return FREE
    until = ack.get("until")
    if isinstance(until, int | float):
        if now >= until:
            return Hold(False, "ack_expired", until, ack)
        return Hold(True, "acknowledged", until, ack)
    return Hold(True, "acknowledged", None, ack)


def ack_record(d: Mapping[str, Any], at: float) -> AckRecord:
    """An acknowledgement record; `until` as epoch seconds (the API may give ISO)."""
    return {"by": d.get("by"), "note": d.get("note"), "until": to_epoch(d.get("until")), "at": at}

"""The view model of `vigil dashboard`: what the screen shows, without a terminal.

Pure functions over the API's answers (GET /api/v1/alerts, /status, /channels):
alerts filtered by label matchers, grouped by a label and sorted; collector and
channel rows; and the recent events, rebuilt from the alerts' own journal times
(pending_since, firing_since, the acknowledgement) plus what changed between two
refreshes (an alert that is gone has resolved). The Textual app
(engine/cli/dashboard_app.py) only lays these out, so tests need no terminal.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from engine.cli.output import value_text
from engine.common import matchers
from engine.config.model import SEVERITIES

SORTS = ("severity", "state", "age")
NO_GROUP = ""
NONE_VALUE = "(none)"
EVENTS_KEPT = 200
_RANK = {s: i for i, s in enumerate(SEVERITIES)}  # higher is worse
_STATE_RANK = {"firing": 1, "pending": 0}


def ts(text: Any) -> float | None:
    """An RFC 3339 time from the API as epoch seconds (None if absent or bad)."""
    if not isinstance(text, str):
        return None
    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        return None


@dataclass(frozen=True)
class Alert:
    fp: str
    rule: str
    state: str
    severity: str
    labels: Mapping[str, str]
    # what matchers see: the labels plus rule and severity (as routes and silences
    # see them, engine.notify.router.match_labels), plus state and alertname
    match: Mapping[str, str]
    value: Any
    since: float | None
    summary: str
    ack: Mapping[str, Any] | None
    marks: str
    raw: Mapping[str, Any] = field(compare=False, repr=False)
    name: str = ""  # rule and labels: the order of alerts otherwise alike (disk d001, d002)


def parse_alerts(data: Iterable[Mapping[str, Any]]) -> list[Alert]:
    out = []
    for a in data:
        labels = {str(k): str(v) for k, v in (a.get("labels") or {}).items()}
        rule, sev, state = str(a.get("rule", "")), str(a.get("severity", "")), str(a.get("state"))
        ann = a.get("annotations") or {}
        ack = a.get("acknowledged") if isinstance(a.get("acknowledged"), dict) else None
        out.append(
            Alert(
                fp=str(a.get("fingerprint", "")),
                rule=rule,
                state=state,
                severity=sev,
                labels=labels,
                match={**labels, "rule": rule, "alertname": rule, "severity": sev, "state": state},
                value=a.get("value"),
                since=ts(a.get("starts_at")),
                summary=str(ann.get("summary") or ann.get("description") or ""),
                ack=ack,
                marks=marks(a),
                raw=a,
                name=f"{rule}\0{labels_text(labels)}",
            )
        )
    return out


def marks(a: Mapping[str, Any]) -> str:
    """Short flags: A acknowledged, S silenced, I inhibited, F flapping, T stale."""
    flags = (
        ("A", a.get("acknowledged")),
        ("S", a.get("silenced")),
        ("I", a.get("inhibited")),
        ("F", a.get("flapping")),
        ("T", a.get("stale")),
    )
    return "".join(c for c, on in flags if on)


# -- filter ------------------------------------------------------------------------------

_SPLIT = re.compile(r'(?:[^\s,"]|"(?:\\.|[^"\\])*")+')


def parse_filter(text: str) -> tuple[matchers.Matcher, ...]:
    """`team=web severity!=info instance=~"db.*"`: Alertmanager matchers separated
    by spaces or commas (quote a value holding either). MatcherError if one is bad."""
    return tuple(matchers.parse(m) for m in _SPLIT.findall(text.strip().strip("{}")))


_PLAIN = re.compile(r'[^\s,"=~{}][^\s,"{}]*')


def filter_text(ms: Sequence[matchers.Matcher]) -> str:
    """What parse_filter reads back; values quoted only when they must be."""
    out = []
    for m in ms:
        plain = matchers.to_text(m, quote=False)
        value = plain[len(m.label) + len(m.op) :]
        out.append(plain if _PLAIN.fullmatch(value) else matchers.to_text(m))
    return " ".join(out)


# -- grouping and sorting ----------------------------------------------------------------


@dataclass(frozen=True)
class Group:
    key: str  # the group-by label's value ("" when not grouping)
    alerts: tuple[Alert, ...]

    @property
    def worst(self) -> str:
        return max((a.severity for a in self.alerts), key=lambda s: _RANK.get(s, -1), default="")

    @property
    def firing(self) -> int:
        return sum(1 for a in self.alerts if a.state == "firing")


def sort_key(sort: str, now: float) -> Any:
    """Worst first: by severity (then firing before pending, then oldest), by
    state (firing first, then severity, oldest), or by age (newest first)."""

    def age(a: Alert) -> float:
        return now - a.since if a.since is not None else 0.0

    if sort == "state":
        return lambda a: (
            -_STATE_RANK.get(a.state, -1),
            -_RANK.get(a.severity, -1),
            -age(a),
            a.name,
            a.fp,
        )
    if sort == "age":
        return lambda a: (age(a), -_RANK.get(a.severity, -1), a.name, a.fp)
    return lambda a: (
        -_RANK.get(a.severity, -1),
        -_STATE_RANK.get(a.state, -1),
        -age(a),
        a.name,
        a.fp,
    )


def build_groups(
    alerts: Iterable[Alert],
    *,
    filters: Sequence[matchers.Matcher] = (),
    group_by: str = "rule",
    sort: str = "severity",
    now: float,
) -> list[Group]:
    """The alerts that match every filter, grouped by the `group_by` label (one
    group with key "" when it is NO_GROUP) and sorted: alerts within a group by
    `sort`, groups by their first alert under the same order, then by key."""
    key = sort_key(sort, now)
    shown = [a for a in alerts if matchers.matches_all(filters, a.match)]
    by: dict[str, list[Alert]] = {}
    for a in shown:
        g = a.match.get(group_by) or NONE_VALUE if group_by else NO_GROUP
        by.setdefault(g, []).append(a)
    groups = [Group(k, tuple(sorted(v, key=key))) for k, v in by.items()]
    groups.sort(key=lambda g: (key(g.alerts[0]), g.key))
    return groups


def group_labels(alerts: Iterable[Alert]) -> list[str]:
    """What `g` cycles through: rule, severity, every label some alert has, then none."""
    names = sorted({k for a in alerts for k in a.labels} - {"rule", "severity", "alertname"})
    return ["rule", "severity", *names, NO_GROUP]


def next_group(current: str, alerts: Iterable[Alert]) -> str:
    order = group_labels(alerts)
    i = order.index(current) if current in order else -1
    return order[(i + 1) % len(order)]


# -- cells -------------------------------------------------------------------------------


def age_text(since: float | None, now: float, step: int = 5) -> str:
    """45s, 12m, 5h12m, 3d4h: in `step` s steps in the first minute, then in minutes, so
    that an age changes at most every 5 s, past a minute once a minute (a change
    redraws the table, and that is most of the dashboard's CPU: bench/dashboard.py)."""
    if since is None:
        return ""
    s = max(0, int(now - since))
    if s < 60:
        return f"{s - s % step}s"
    if s < 3600:
        return f"{s // 60}m"
    big, small, size, sub = ("d", "h", 86400, 3600) if s >= 86400 else ("h", "m", 3600, 60)
    rest = (s % size) // sub
    return f"{s // size}{big}" + (f"{rest}{small}" if rest else "")


def labels_text(labels: Mapping[str, str], skip: str = "") -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items()) if k != skip)


def alert_cells(a: Alert, now: float, group_by: str) -> tuple[str, ...]:
    """One alert's row: severity, state, rule, labels (less the grouped one), value, age, marks."""
    return (
        a.severity[:4],
        a.state[:4],
        a.rule,
        labels_text(a.labels, skip=group_by),
        value_text(a.value),
        age_text(a.since, now),
        a.marks,
    )


def silence_matchers(a: Alert) -> str:
    """The silence an operator most likely means: this alert exactly (its rule and labels)."""
    ms = [matchers.Matcher("rule", frozenset((a.rule,)))]
    ms += [matchers.Matcher(k, frozenset((v,))) for k, v in sorted(a.labels.items())]
    return filter_text(ms)


# -- collectors and channels -------------------------------------------------------------


def collector_rows(status: Mapping[str, Any], now: float) -> list[tuple[str, str, str, str]]:
    """name, up/DOWN, age of the last good read, error."""
    out = []
    for name, c in sorted((status.get("collectors") or {}).items()):
        c = c if isinstance(c, dict) else {}
        last = ts(c.get("last"))
        out.append(
            (
                str(name),
                "up" if c.get("up") else "DOWN",
                f"{age_text(last, now, step=1)} ago" if last is not None else "never",
                " ".join(str(c.get("error") or "").split()),
            )
        )
    return out


def channel_rows(channels: Iterable[Mapping[str, Any]]) -> list[tuple[str, ...]]:
    """name, type, breaker, queued, sent, failed, last error."""
    out: list[tuple[str, ...]] = []
    for c in channels:
        s = c.get("status") or {}
        out.append(
            (
                str(c.get("name")),
                str(c.get("type")),
                str(s.get("breaker", "?")),
                str(s.get("queued", 0)),
                str(s.get("sent", 0)),
                str(s.get("failed", 0)),
                " ".join(str(s.get("error") or "").split()),
            )
        )
    return out


# -- recent events -----------------------------------------------------------------------


@dataclass(frozen=True)
class Event:
    at: float
    what: str  # pending, firing, acknowledged, unacknowledged, silenced, resolved
    alert: str  # rule and labels
    detail: str = ""


class EventLog:
    """The recent events: at the first refresh those the alerts' times tell
    (when each became pending and firing, who acknowledged it), then what
    changes between refreshes; newest first, at most EVENTS_KEPT."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self._seen: dict[str, Alert] | None = None

    def update(self, alerts: Sequence[Alert], now: float) -> None:
        new: list[Event] = []
        before = self._seen
        for a in alerts:
            old = before.get(a.fp) if before is not None else None
            new.extend(_changes(old, a, now, first=before is None))
        if before is not None:
            current = {a.fp for a in alerts}
            new.extend(
                Event(now, "resolved", _name(a)) for fp, a in before.items() if fp not in current
            )
        self._seen = {a.fp: a for a in alerts}
        if new:
            self.events = sorted(new + self.events, key=lambda e: -e.at)[:EVENTS_KEPT]


def _name(a: Alert) -> str:
    lbl = labels_text(a.labels)
    return f"{a.rule} {{{lbl}}}" if lbl else a.rule


def _changes(old: Alert | None, a: Alert, now: float, *, first: bool) -> list[Event]:
    out = []
    name = _name(a)
    raw = a.raw
    if old is None:
        # a new alert (or the first look): its own times say when it started
        pending, firing = ts(raw.get("pending_since")), ts(raw.get("firing_since"))
        if pending is not None and pending != firing:
            out.append(Event(pending, "pending", name))
        if a.state == "firing":
            out.append(Event(firing or now, "firing", name, a.summary))
        elif pending is None:
            out.append(Event(a.since or now, a.state, name, a.summary))
    elif old.state != a.state:
        out.append(Event(ts(raw.get("firing_since")) or now, a.state, name, a.summary))
    if a.ack and (old is None or not old.ack or old.ack != a.ack):
        when = ts(a.ack.get("at")) or now
        out.append(Event(when, "acknowledged", name, f"by {a.ack.get('by')}: {a.ack.get('note')}"))
    elif old is not None and old.ack and not a.ack:
        out.append(Event(now, "unacknowledged", name))
    # silenced since the last look (the first look cannot tell when it was)
    was_silenced = first if old is None else "S" in old.marks
    if "S" in a.marks and not was_silenced:
        out.append(Event(now, "silenced", name))
    return out


def history_lines(history: Iterable[Mapping[str, Any]]) -> list[str]:
    """An alert's journal events (GET /api/v1/alerts/{fp} "history"), one line each."""
    out = []
    for ev in history:
        extra = [
            f"{k}={v}" for k, v in ev.items() if k in _HISTORY_FIELDS and v not in (None, "", [])
        ]
        out.append(" ".join([clock_text(ts(ev.get("ts"))), str(ev.get("event")), *extra]))
    return out


_HISTORY_FIELDS = ("by", "note", "value", "until", "channel", "status", "error", "reason")


def clock_text(t: float | None) -> str:
    """A time as the reader's local wall clock: the day only when it is not today."""
    if t is None:
        return "?"
    dt = datetime.fromtimestamp(t)
    if dt.date() == datetime.now().date():
        return dt.strftime("%H:%M:%S")
    return dt.strftime("%m-%d %H:%M")

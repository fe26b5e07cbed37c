"""Episodes and counts from the journal's events, in one pass.

An episode is one alert (fingerprint) from its first `pending` or `firing` to its
`resolved` (or `inactive`, for one that never fired). An incident is an episode
that fired. What each event adds:

    pending        opens an episode
    firing         opens one (if none is open) and sets when it fired
    resolved       ends it; with no open episode (it fired before the events read),
                   one that fired at its `firing_since`, else at an unknown time
    inactive       ends a pending episode (never an incident)
    acknowledged   the open episode's first acknowledgement
    escalated      counted for the rule, the alert's team and the routes it went through
    flapping       counted for the rule
    notified /     counted once per event for each rule, route and team among the
    notify_failed  event's alerts; `kind: test` events are not about alerts

The route of a notification is the route index in its group key
(`channel|route|labels`, engine/notify/keys.py); an alert's routes are those its
notifications in the period went through. Counts of events are kept for the period
[start, end); incidents and flaps also for the period before it, for the change.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson

from engine.report.scan import Row

__all__ = ["Aggregate", "Episode", "aggregate", "labels_of"]

NONE = "(none)"


@dataclass(slots=True)
class Episode:
    alert: bytes
    rule: str
    team: str
    labels: Any  # the labels as the journal wrote them (JSON bytes) or a dict: labels_of
    opened: float
    firing: float | None = None
    resolved: float | None = None  # None: still open at the end of the period
    acked: float | None = None  # the first acknowledgement while open

    def until(self, end: float) -> float:
        """When it stopped firing, or `end` if it had not."""
        return self.resolved if self.resolved is not None else end


def labels_of(raw: Any) -> dict[str, str]:
    """An Episode's labels as a dict."""
    if isinstance(raw, bytes):
        got = orjson.loads(raw)
        return got if isinstance(got, dict) else {}
    return dict(raw)


@dataclass(slots=True)
class Counts:
    """Per-name counts of the period's events."""

    notifications: dict[str, int] = field(default_factory=dict)
    failures: dict[str, int] = field(default_factory=dict)
    off_hours: dict[str, int] = field(default_factory=dict)
    sleep_hours: dict[str, int] = field(default_factory=dict)
    escalations: dict[str, int] = field(default_factory=dict)


@dataclass(slots=True)
class Aggregate:
    start: float
    end: float
    incidents: list[Episode] = field(default_factory=list)  # fired, any time before end
    flaps: dict[str, int] = field(default_factory=dict)
    previous_flaps: dict[str, int] = field(default_factory=dict)
    # alert -> its route's name, or a set of them when it went through several
    # (a set per alert would be most of the memory of a year's report)
    routes: dict[bytes, str | set[str]] = field(default_factory=dict)
    by_rule: Counts = field(default_factory=Counts)
    by_route: Counts = field(default_factory=Counts)
    by_team: Counts = field(default_factory=Counts)
    notifications: int = 0
    failures: int = 0
    off_hours: int = 0
    sleep_hours: int = 0
    escalations: int = 0
    # notifications sent per bucket of the period (index: whole buckets since start)
    sent_per_bucket: dict[int, int] = field(default_factory=dict)
    # every alert with an event read -> its latest episode
    seen: dict[bytes, Episode] = field(default_factory=dict)

    def routes_of(self, fp: bytes) -> tuple[str, ...]:
        rs = self.routes.get(fp)
        if rs is None:
            return ()
        return (rs,) if isinstance(rs, str) else tuple(sorted(rs))


def _add_route(
    routes: dict[bytes, str | set[str]], fp: bytes, rs: str | set[str], route: str
) -> None:
    if isinstance(rs, set):
        rs.add(route)
    else:
        routes[fp] = {rs, route}


def _spread(
    agg: Aggregate,
    tally: dict[tuple[bytes, str, tuple[tuple[str, ...], tuple[str, ...]], bool, bool], int],
) -> None:
    """The tallied notifications, counted for each rule, route and team they were about."""
    for (kind, route, (rules, teams), off, sleep), n in tally.items():
        ok = kind == b"notified"
        for counts, names in ((agg.by_rule, rules), (agg.by_route, (route,)), (agg.by_team, teams)):
            for name in names:
                if not ok:
                    counts.failures[name] = counts.failures.get(name, 0) + n
                    continue
                counts.notifications[name] = counts.notifications.get(name, 0) + n
                if off:
                    counts.off_hours[name] = counts.off_hours.get(name, 0) + n
                if sleep:
                    counts.sleep_hours[name] = counts.sleep_hours.get(name, 0) + n
        if ok:
            agg.notifications += n
            agg.off_hours += n * off
            agg.sleep_hours += n * sleep
        else:
            agg.failures += n


def _bump(d: dict[str, int], key: str) -> None:
    d[key] = d.get(key, 0) + 1


class _Names:
    """bytes -> str, each decoded once (rule ids, routes and teams recur all year)."""

    def __init__(self, team_label: str) -> None:
        self.rules: dict[bytes | None, str] = {None: NONE}
        self.routes: dict[bytes, str] = {}
        self.teams: dict[bytes, str] = {}
        self.team_label = team_label

    def rule(self, b: bytes | None) -> str:
        r = self.rules.get(b)
        if r is None:
            r = self.rules[b] = b.decode("utf-8", "replace") if b is not None else NONE
        return r

    def route(self, b: bytes) -> str:
        r = self.routes.get(b)
        if r is None:
            r = self.routes[b] = "#" + b.decode("ascii", "replace")
        return r

    def team(self, labels: Any) -> str:
        if isinstance(labels, bytes):
            t = self.teams.get(labels)
            if t is None:
                t = self.teams[labels] = str(labels_of(labels).get(self.team_label, NONE))
            return t
        return str(labels.get(self.team_label, NONE))


def aggregate(
    rows: Iterable[Row],
    *,
    start: float,
    end: float,
    team_label: str = "team",
    off_hours: Any = None,
    sleep_hours: Any = None,
    bucket: float = 86400.0,
) -> Aggregate:
    """One pass over scan's rows in journal order, from the previous period's start
    to end. `off_hours`/`sleep_hours`: callables t -> bool."""
    agg = Aggregate(start, end)
    names = _Names(team_label)
    open_: dict[bytes, Episode] = {}
    known = agg.seen
    by_rule, by_route, by_team = agg.by_rule, agg.by_route, agg.by_team
    routes = agg.routes
    route_names = names.routes
    per_bucket = agg.sent_per_bucket
    # notifications counted by who they were about, spread over the groups at the end
    tally: dict[tuple[bytes, str, tuple[tuple[str, ...], tuple[str, ...]], bool, bool], int] = {}
    for t, kind, a, b, labels, since in rows:
        if kind == b"notified" or kind == b"notify_failed":
            if t < start:
                continue
            route = route_names.get(b) or names.route(b)
            if len(a) == 1:  # the usual case: no sets
                fp = a[0]
                rs = routes.get(fp)
                if rs is None:
                    routes[fp] = route
                elif rs != route:
                    _add_route(routes, fp, rs, route)
                k = known.get(fp)
                who: tuple[tuple[str, ...], tuple[str, ...]] = (
                    ((k.rule,), (k.team,)) if k is not None else ((), ())
                )
            else:
                rules: set[str] = set()
                teams: set[str] = set()
                for fp in a:
                    rs = routes.get(fp)
                    if rs is None:
                        routes[fp] = route
                    elif rs != route:
                        _add_route(routes, fp, rs, route)
                    k = known.get(fp)
                    if k is not None:
                        rules.add(k.rule)
                        teams.add(k.team)
                who = (tuple(sorted(rules)), tuple(sorted(teams)))
            if kind == b"notified":
                off = off_hours is not None and off_hours(t)
                sleep = sleep_hours is not None and sleep_hours(t)
                d = int((t - start) // bucket)
                per_bucket[d] = per_bucket.get(d, 0) + 1
            else:
                off = sleep = False
            key = (kind, route, who, off, sleep)
            tally[key] = tally.get(key, 0) + 1
            continue
        if kind == b"acknowledged":
            ep = open_.get(a)
            if ep is not None and ep.acked is None:
                ep.acked = t
            continue
        rule = names.rule(b)
        if kind == b"escalated":
            if t >= start:
                agg.escalations += 1
                _bump(by_rule.escalations, rule)
                k = known.get(a)
                if k is not None:
                    _bump(by_team.escalations, k.team)
                for r in agg.routes_of(a):
                    _bump(by_route.escalations, r)
            continue
        if kind == b"flapping":
            _bump(agg.flaps if t >= start else agg.previous_flaps, rule)
            continue
        ep = open_.get(a)
        if kind == b"pending":
            if ep is None:
                known[a] = open_[a] = Episode(a, rule, names.team(labels), labels, t)
        elif kind == b"firing":
            if ep is None:
                ep = known[a] = open_[a] = Episode(a, rule, names.team(labels), labels, t)
            if ep.firing is None:
                ep.firing = t
        elif kind == b"resolved":
            if ep is None:
                # it fired before the events read: when its event says, else at an
                # unknown time before them (counted in no period, firing from their start)
                began = since if since is not None and since < t else -math.inf
                ep = known[a] = Episode(a, rule, names.team(labels), labels, began, began)
            elif ep.firing is None:
                ep.firing = ep.opened  # resolved without a firing event: it fired
            ep.resolved = t
            agg.incidents.append(ep)
            open_.pop(a, None)
        elif kind == b"inactive" and ep is not None:
            if ep.firing is not None:
                ep.resolved = t
                agg.incidents.append(ep)
            del open_[a]
    agg.incidents.extend(ep for ep in open_.values() if ep.firing is not None)
    _spread(agg, tally)
    return agg

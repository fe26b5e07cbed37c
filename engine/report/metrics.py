"""The report's figures from an Aggregate: one plain, JSON-ready dict whose shape is
schemas/report.schema.json, rendered by render_*.py.

Exactly what each figure is (the README repeats it for operators):

- incidents: episodes that began firing inside the period; `open`: of those, not
  resolved by its end.
- MTTA: firing → first `acknowledged` while open (0 when acknowledged while still
  pending), over the period's acknowledged incidents. MTTR: firing → resolved,
  over the period's resolved incidents. Each as mean, median (the middle value,
  or the mean of the two middle ones) and p95 (nearest rank), in seconds.
- time firing: the share of the period during which at least one alert of the
  rule (route, team) was firing, whenever it began; a percentage.
- actionable rate: incidents acknowledged (an acknowledgement carries its note)
  before they resolved / incidents.
- availability: 100 × (1 − seconds a check's alert was firing / seconds
  observed), both outside the maintenance interval.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from operator import attrgetter
from typing import Any

from engine.journal.format import format_ts
from engine.report.aggregate import NONE, Aggregate, Counts, Episode, labels_of
from engine.report.spans import Spans, overlap

__all__ = ["Options", "build", "stats", "union_seconds"]

VERSION = 1


@dataclass(frozen=True, slots=True)
class Options:
    since: float
    until: float
    top: int = 10
    team_label: str = "team"
    decimals: int = 3  # availability's
    bucket: float = 86400.0
    off_hours: str | None = None
    sleep_hours: str | None = None
    maintenance: str | None = None
    maintenance_spans: Spans | None = None
    availability_rules: tuple[str, ...] = ()
    availability_source: str = ""


def _r(x: float) -> float:
    return round(x, 3)


def stats(values: Sequence[float]) -> dict[str, float] | None:
    """mean, median and p95 (nearest rank) of `values`; None when there are none."""
    if not values:
        return None
    v = sorted(values)
    n = len(v)
    mid = n // 2
    median = v[mid] if n % 2 else (v[mid - 1] + v[mid]) / 2
    p95 = v[max(0, math.ceil(0.95 * n) - 1)]
    return {"mean": _r(math.fsum(v) / n), "median": _r(median), "p95": _r(p95)}


def union_seconds(intervals: Iterable[tuple[float, float]], start: float, end: float) -> float:
    """Seconds of [start, end) covered by at least one of `intervals`."""
    return _union(sorted((max(a, start), min(b, end)) for a, b in intervals))


def _union(spans: Iterable[Sequence[float | None]]) -> float:
    """Seconds covered by `spans` ((from, to, ...) each), sorted by start."""
    total = 0.0
    reach = -math.inf
    for x in spans:
        a, b = x[0], x[1]
        assert a is not None and b is not None
        if b <= reach:
            continue
        total += b - max(a, reach)
        reach = b
    return total


# One incident as a group's figures need it, computed once for every group it is
# in: (from, to) its firing clamped to the period; then, when it began firing in
# the period, (1, time to acknowledge or None, time to resolve or None), else
# (0, None, None).
_Inc = tuple[float, float, int, float | None, float | None]


def _inc(e: Episode, o: Options) -> _Inc:
    f = e.firing
    assert f is not None
    r = e.resolved
    span = (max(f, o.since), min(r if r is not None else o.until, o.until))
    if not o.since <= f < o.until:
        return (*span, 0, None, None)
    ack = e.acked
    tta = max(0.0, ack - f) if ack is not None and (r is None or ack <= r) else None
    return (*span, 1, tta, r - f if r is not None else None)


def _row(name: str, incs: Sequence[_Inc], counts: Counts, o: Options) -> dict[str, Any]:
    """`incs` sorted by start."""
    n = sum([i[2] for i in incs])
    acked = [i[3] for i in incs if i[3] is not None]
    repaired = [i[4] for i in incs if i[4] is not None]
    firing = _union(incs)
    return {
        "name": name,
        "incidents": n,
        "open": n - len(repaired),
        "acknowledged": len(acked),
        "actionable_rate": round(len(acked) / n, 4) if n else None,
        "mtta": stats(acked),
        "mttr": stats(repaired),
        "time_firing_pct": round(100.0 * firing / (o.until - o.since), 2),
        "escalations": counts.escalations.get(name, 0),
        "notifications": counts.notifications.get(name, 0),
        "notification_failures": counts.failures.get(name, 0),
        "off_hours": counts.off_hours.get(name, 0),
        "sleep_hours": counts.sleep_hours.get(name, 0),
    }


def _rows(groups: Mapping[str, list[_Inc]], counts: Counts, o: Options) -> list[dict[str, Any]]:
    names = set(groups) | set(counts.notifications) | set(counts.failures) | set(counts.escalations)
    return [_row(n, groups.get(n, []), counts, o) for n in sorted(names)]


def _top(
    now: Mapping[str, int], before: Mapping[str, int], key: str, k: int
) -> list[dict[str, Any]]:
    ranked = sorted((n for n in now if now[n] > 0), key=lambda n: (-now[n], n))[:k]
    return [
        {"rule": n, key: now[n], "previous": before.get(n, 0), "change": now[n] - before.get(n, 0)}
        for n in ranked
    ]


def _availability(agg: Aggregate, o: Options) -> dict[str, Any]:
    maint = o.maintenance_spans or []
    length = o.until - o.since
    observed = length - overlap(maint, o.since, o.until)
    per: dict[bytes, list[Episode]] = {}
    wanted = set(o.availability_rules)
    for e in agg.incidents:
        if e.rule in wanted:
            per.setdefault(e.alert, []).append(e)
    targets: list[tuple[tuple[str, list[tuple[str, str]], str], dict[str, Any]]] = []
    for fp, eps in per.items():
        ivs = [(e.firing or 0.0, e.until(o.until)) for e in eps]
        down = union_seconds(ivs, o.since, o.until)
        if maint:
            down -= sum(overlap(maint, a, b) for a, b in _merged(ivs, o.since, o.until))
        if down <= 0 and not any(
            o.since <= e.firing < o.until for e in eps if e.firing is not None
        ):
            continue  # resolved before the period began
        pct = 100.0 * (1 - down / observed) if observed > 0 else None
        labels = sorted(labels_of(eps[0].labels).items())
        alert = fp.decode("utf-8", "replace")
        targets.append(
            (
                (eps[0].rule, labels, alert),
                {
                    "rule": eps[0].rule,
                    "alert": alert,
                    "labels": dict(labels),
                    "down_seconds": _r(down),
                    "observed_seconds": _r(observed),
                    "availability_pct": round(pct, o.decimals) if pct is not None else None,
                },
            )
        )
    targets.sort(key=lambda t: t[0])
    return {
        "rules": sorted(wanted),
        "source": o.availability_source,
        "maintenance": o.maintenance,
        "maintenance_seconds": _r(length - observed),
        "decimals": o.decimals,
        "targets": [t for _, t in targets],
    }


def _merged(
    ivs: Iterable[tuple[float, float]], start: float, end: float
) -> list[tuple[float, float]]:
    out: list[tuple[float, float]] = []
    for a, b in sorted((max(a, start), min(b, end)) for a, b in ivs):
        if b <= a:
            continue
        if out and a <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out


def build(agg: Aggregate, o: Options) -> dict[str, Any]:
    """The report as a dict (schemas/report.schema.json); a pure function of its inputs."""
    by_rule: dict[str, list[_Inc]] = {}
    by_route: dict[str, list[_Inc]] = {}
    by_team: dict[str, list[_Inc]] = {}
    now_count: dict[str, int] = {}
    before_count: dict[str, int] = {}
    every: list[_Inc] = []
    previous = o.since - (o.until - o.since)
    none = (NONE,)
    routes = agg.routes
    since, until = o.since, o.until
    # by start (stable: ties keep the journal's order), as _union needs
    for e in sorted(agg.incidents, key=attrgetter("firing")):
        f = e.firing
        assert f is not None
        rule = e.rule
        if f < since:
            if f >= previous:
                before_count[rule] = before_count.get(rule, 0) + 1
            if e.resolved is not None and e.resolved <= since:
                continue  # over before the period
        x = _inc(e, o)
        every.append(x)
        if x[2]:
            now_count[rule] = now_count.get(rule, 0) + 1
        group = by_rule.get(rule)
        if group is None:
            group = by_rule[rule] = []
        group.append(x)
        group = by_team.get(e.team)
        if group is None:
            group = by_team[e.team] = []
        group.append(x)
        rs = routes.get(e.alert)
        for r in (rs,) if isinstance(rs, str) else (sorted(rs) if rs else none):
            group = by_route.get(r)
            if group is None:
                group = by_route[r] = []
            group.append(x)
    total = _row("all", every, _totals(agg), o)
    del total["name"]
    n_buckets = max(1, math.ceil((o.until - o.since) / o.bucket))
    incidents_per = [0] * n_buckets
    for e in agg.incidents:
        if e.firing is not None and since <= e.firing < until:
            incidents_per[int((e.firing - since) // o.bucket)] += 1
    return {
        "version": VERSION,
        "period": {
            "since": format_ts(o.since),
            "until": format_ts(o.until),
            "seconds": _r(o.until - o.since),
            "previous_since": format_ts(o.since - (o.until - o.since)),
        },
        "team_label": o.team_label,
        "totals": total,
        "rules": _rows(by_rule, agg.by_rule, o),
        "routes": _rows(by_route, agg.by_route, o),
        "teams": _rows(by_team, agg.by_team, o),
        "noisiest": _top(now_count, before_count, "incidents", o.top),
        "flapping": _top(agg.flaps, agg.previous_flaps, "flaps", o.top),
        "interruptions": {
            "notifications": agg.notifications,
            "off_hours": {"interval": o.off_hours, "count": agg.off_hours if o.off_hours else None},
            "sleep_hours": {
                "interval": o.sleep_hours,
                "count": agg.sleep_hours if o.sleep_hours else None,
            },
        },
        "availability": _availability(agg, o),
        "series": {
            "bucket_seconds": float(o.bucket),
            "incidents": incidents_per,
            "notifications": [agg.sent_per_bucket.get(i, 0) for i in range(n_buckets)],
        },
    }


def _totals(agg: Aggregate) -> Counts:
    c = Counts()
    c.notifications["all"] = agg.notifications
    c.failures["all"] = agg.failures
    c.off_hours["all"] = agg.off_hours
    c.sleep_hours["all"] = agg.sleep_hours
    c.escalations["all"] = agg.escalations
    return c

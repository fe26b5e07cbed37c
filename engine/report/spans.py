"""A named time interval as the spans of a period it covers, so that a report asks
"inside?" by bisection instead of calling the tz database per event or per minute.

engine/notify/timeintervals.py's `active` says whether one moment is inside; its
answer can only change at a local midnight or at a boundary of one of its time
ranges. So the period is cut at those moments (each local day's), `active` is
asked once per piece, and the pieces inside are merged.
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from engine.config.model import TimeInterval
from engine.notify.timeintervals import active

__all__ = ["Spans", "spans"]

Spans = list[tuple[float, float]]


def _cuts(interval: TimeInterval, start: float, end: float) -> list[float]:
    zone = ZoneInfo(interval.timezone)
    minutes = sorted(
        {0, *(r.start_minute for r in interval.times), *(r.end_minute for r in interval.times)}
    )
    day = datetime.fromtimestamp(start, zone).date() - timedelta(days=1)
    last = datetime.fromtimestamp(end, zone).date() + timedelta(days=1)
    out = {start, end}
    while day <= last:
        for m in minutes:
            t = _local(day, m, zone)
            if start < t < end:
                out.add(t)
        day += timedelta(days=1)
    return sorted(out)


def _local(day: date, minute: int, zone: ZoneInfo) -> float:
    base = datetime(day.year, day.month, day.day, tzinfo=zone)
    return (base + timedelta(minutes=minute)).timestamp()


def spans(interval: TimeInterval, start: float, end: float) -> Spans:
    """The [a, b) pieces of [start, end) inside `interval`, merged, in order."""
    out: Spans = []
    cuts = _cuts(interval, start, end)
    for a, b in itertools.pairwise(cuts):
        if active(interval, a):
            if out and out[-1][1] == a:
                out[-1] = (out[-1][0], b)
            else:
                out.append((a, b))
    return out


def inside(sp: Spans, starts: Sequence[float], t: float) -> bool:
    """Whether t is inside one of `sp` (`starts`: each span's start, for bisect)."""
    i = bisect.bisect_right(starts, t) - 1
    return i >= 0 and t < sp[i][1]


def overlap(sp: Spans, a: float, b: float) -> float:
    """Seconds of [a, b) inside `sp`."""
    total = 0.0
    for x, y in sp:
        if y <= a:
            continue
        if x >= b:
            break
        total += min(y, b) - max(x, a)
    return total

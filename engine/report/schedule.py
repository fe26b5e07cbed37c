"""When a scheduled report is due (`reports:` of vigil.yaml), on an explicit clock.

A schedule has nominal due times: each day (or each `weekday`) at `at` in its
time zone, or every `period` seconds of the epoch. The report of a due time
covers [due - period, due), so its content depends on the due time only. With
`during`, a due time outside that interval is sent at the interval's next start.

Catch-up: `plan` is given the due time of the last report sent (the journal's
last `report_sent`). A due time passed since then, while the daemon was down,
is sent at once: only the latest one (at most one per schedule). A schedule
never sent before sends nothing at start; it waits for its next due time.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from engine.config.model import ReportSchedule, TimeInterval
from engine.report.spans import spans

__all__ = ["due_after", "due_at_or_before", "plan", "send_time"]

DAY = 86400.0


def _at(s: ReportSchedule, day: datetime) -> float:
    # the local wall time of that day; a time a DST gap skips maps forward
    local = day.replace(hour=s.at // 60, minute=s.at % 60, second=0, microsecond=0)
    return local.timestamp()


def due_at_or_before(s: ReportSchedule, t: float) -> float:
    """The latest nominal due time ≤ t."""
    if not s.calendar:
        return math.floor(t / s.period) * s.period
    zone = ZoneInfo(s.timezone)
    day = datetime.fromtimestamp(t, zone)
    for back in range(9):  # a weekday is at most 7 days back; one more for the time of day
        d = (day - timedelta(days=back)).replace(tzinfo=zone)
        if s.weekday is not None and d.weekday() != s.weekday:
            continue
        due = _at(s, d)
        if due <= t:
            return due
    raise AssertionError("unreachable: a due time lies within 8 days")


def due_after(s: ReportSchedule, t: float) -> float:
    """The earliest nominal due time > t."""
    if not s.calendar:
        return (math.floor(t / s.period) + 1) * s.period
    zone = ZoneInfo(s.timezone)
    day = datetime.fromtimestamp(t, zone)
    for ahead in range(9):
        d = (day + timedelta(days=ahead)).replace(tzinfo=zone)
        if s.weekday is not None and d.weekday() != s.weekday:
            continue
        due = _at(s, d)
        if due > t:
            return due
    raise AssertionError("unreachable: a due time lies within 8 days")


def send_time(s: ReportSchedule, due: float, during: TimeInterval | None) -> float | None:
    """When the report due at `due` goes out: then, or with `during` at the first
    moment inside that interval within a period after; None: never (skipped)."""
    if during is None:
        return due
    sp = spans(during, due, due + max(s.period, DAY))
    return max(sp[0][0], due) if sp else None


def plan(
    s: ReportSchedule, now: float, last: float | None, during: TimeInterval | None = None
) -> tuple[float, float]:
    """(due, when): the next report to send, the due time that names its period and
    when to send it (≤ now: at once, a catch-up). `last`: the due time of the last
    report sent, None if none ever was."""
    due = due_at_or_before(s, now)
    if last is None or due > last:
        when = send_time(s, due, during)
        # pending inside `during`, or missed while down (only if sent before)
        if when is not None and (when > now or last is not None):
            return due, max(when, now)
    t = now
    for _ in range(64):  # a `during` that never meets a due time: give up far ahead
        due = due_after(s, t)
        when = send_time(s, due, during)
        if when is not None:
            return due, when
        t = due
    return due, math.inf

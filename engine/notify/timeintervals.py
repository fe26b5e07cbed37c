"""Named time intervals: is a moment inside one, in the interval's own time zone.

Local wall time comes from `zoneinfo`, so daylight saving is handled by the tz
database: on the spring-forward day a range inside the skipped hour is never
active, on the fall-back day a range inside the repeated hour is active twice.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from functools import cache
from zoneinfo import ZoneInfo

from engine.config.model import Route, TimeInterval

__all__ = ["active", "any_active", "muted"]


@cache
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def active(interval: TimeInterval, epoch: float) -> bool:
    """Whether the moment `epoch` (seconds) falls inside `interval`.

    Every non-empty criterion (months, days of month, weekdays, time ranges) must
    hold; an empty one holds always. Time ranges are [start, end) in minutes of
    the local day.
    """
    local = datetime.fromtimestamp(epoch, _zone(interval.timezone))
    if interval.months and local.month not in interval.months:
        return False
    if interval.days_of_month and local.day not in interval.days_of_month:
        return False
    if interval.weekdays and local.weekday() not in interval.weekdays:
        return False
    if not interval.times:
        return True
    minute = local.hour * 60 + local.minute
    return any(r.start_minute <= minute < r.end_minute for r in interval.times)


def any_active(names: Iterable[str], intervals: Mapping[str, TimeInterval], epoch: float) -> bool:
    """Whether any of the named intervals is active; unknown names never are
    (the config validator refuses them, so this only guards a race on reload)."""
    return any(n in intervals and active(intervals[n], epoch) for n in names)


def muted(route: Route, intervals: Mapping[str, TimeInterval], epoch: float) -> bool:
    """Whether `route` must not notify at `epoch`: outside all of its
    `active_time` intervals (when it has any) or inside one of its `mute_time`."""
    if route.active_time and not any_active(route.active_time, intervals, epoch):
        return True
    return bool(route.mute_time) and any_active(route.mute_time, intervals, epoch)

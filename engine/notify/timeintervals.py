"""Named time intervals: is a moment inside one, in the interval's own time zone.

Local wall time comes from `zoneinfo`, so daylight saving is handled by the tz
database: on the spring-forward day a range inside the skipped hour is never
active, on the fall-back day a range inside the repeated hour is active twice.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from datetime import datetime
from functools import cache
from zoneinfo import ZoneInfo

from engine.config.model import Route, TimeInterval
from engine.notify.hold import FREE, Hold

__all__ = ["active", "any_active", "muted", "why_muted"]

# how far ahead why_muted looks for the end of a mute (a week and a day: a
# weekly interval always changes within it)
HORIZON = 8 * 86400.0
STEP = 60.0  # intervals are in minutes: they change on minute boundaries


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


def why_muted(
    route: Route, intervals: Mapping[str, TimeInterval], now: float, horizon: float = HORIZON
) -> Hold:
    """Time intervals' "why not now" for `route`: held while muted() ("outside_active_time"
    or, when only that, "inside_mute_time"), until the first minute muted() no
    longer holds (next_at; None if not within `horizon`). detail: {"outside":
    active_time names when outside them all, "inside": mute_time names active now}."""
    if not muted(route, intervals, now):
        return FREE
    outside = (
        list(route.active_time)
        if route.active_time and not any_active(route.active_time, intervals, now)
        else []
    )
    inside = [n for n in route.mute_time if any_active((n,), intervals, now)]
    t = (math.floor(now / STEP) + 1) * STEP
    nxt: float | None = None
    while t <= now + horizon:
        if not muted(route, intervals, t):
            nxt = t
            break
        t += STEP
    code = "outside_active_time" if outside else "inside_mute_time"
    return Hold(True, code, nxt, {"outside": outside, "inside": inside})

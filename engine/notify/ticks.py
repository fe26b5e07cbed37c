"""A group's ticks, as Alertmanager's (dispatch.go aggrGroup.run): the group
flushes first after group_wait, then its timer is reset to group_interval after
every flush, whether or not the flush sent anything. A change goes out at the
next tick, never between two; repeat_interval is looked at on the ticks too, so
a reminder goes out on the first tick once repeat_interval has passed since the
last notification was delivered (with a 5s repeat and a 2s interval, every 6s).
Alertmanager asks that the last notification be *older* than repeat_interval;
delivery takes a moment after its tick, so a tick exactly repeat_interval after
it is as good as never on time, both there and here (a reminder waits one more
tick). Pure, shared by the pipeline and `vigil explain`.
"""

from __future__ import annotations

import math

__all__ = ["next_tick", "repeat_tick"]

_EPS = 1e-6  # float slack: a time within this of a tick is on it


def next_tick(origin: float, interval: float, at: float, after: float | None = None) -> float:
    """The first tick (origin + k * interval, k >= 0) at or after `at` and, when
    given, strictly after `after` (the tick last flushed)."""
    if interval <= 0:
        return at if after is None else max(at, after)
    k = max(0, math.ceil((at - origin) / interval - _EPS))
    if after is not None:
        k = max(k, math.floor((after - origin) / interval + _EPS) + 1)
    return origin + k * interval


def repeat_tick(
    origin: float, interval: float, sent_at: float, repeat: float, after: float | None = None
) -> float:
    """The tick a reminder goes out on: the first one at or after
    sent_at + repeat (and after `after`)."""
    return next_tick(origin, interval, sent_at + repeat, after)

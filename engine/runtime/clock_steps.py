"""Steps of the wall clock (NTP stepping, `date -s`, a VM resumed), seen as they happen.

vigil measures durations (`for`, `keep_firing_for`, flapping windows) on the
monotonic clock, but APScheduler plans each run as a wall-clock datetime: after
a step back of an hour it waits that hour out (no evaluation, no collection),
and after a step forward it works through every run it "missed". So the two
clocks are compared every half second; a change of their difference by a
second or more is a step (NTP slews at most 0.5 ms/s), reported to `on_step`,
and `replan` moves each job's next run by the step, so each keeps its place
in its interval.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from apscheduler.schedulers.base import BaseScheduler

THRESHOLD = 1.0  # seconds
EVERY = 0.5


async def watch_steps(
    on_step: Callable[[float], None],
    *,
    wall: Callable[[], float] = time.time,
    mono: Callable[[], float] = time.monotonic,
    every: float = EVERY,
    threshold: float = THRESHOLD,
) -> None:
    """Call `on_step(seconds)` (positive: forward) for each step, until cancelled."""
    offset = wall() - mono()
    while True:
        await asyncio.sleep(every)  # the loop's clock is monotonic: a step does not move it
        now = wall() - mono()
        step, offset = now - offset, now
        if abs(step) >= threshold:
            on_step(step)


def replan(scheduler: BaseScheduler, step: float) -> None:
    """Move every job's next run by `step`, never beyond one interval from now:
    the scheduler may have woken after the step and planned a job afresh
    already (a step forward), and moving that one too would delay it."""
    now = datetime.now(UTC)
    for job in scheduler.get_jobs():
        planned = job.next_run_time
        if planned is None:  # paused
            continue
        interval = getattr(job.trigger, "interval", None)
        latest = now + interval if isinstance(interval, timedelta) else now
        moved = min(max(planned + timedelta(seconds=step), now), latest)
        job.modify(next_run_time=moved)

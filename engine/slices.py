"""Time slices for work done on the event loop.

Evaluation ticks, API requests and notification sends share one event loop, so
a long piece of work (a 10,000-rule group, a 1,000-alert burst to journal and
route) would make every timer behind it late. Such work is done in small steps,
asking `spent()` between them and, once it says so, awaiting `pause()`.

The budget is shared: one window of SLICE seconds for all such work in the
process, not one per task. Each loop iteration runs every task that is ready,
and timers (a group's tick) are looked at only between iterations; if each of
five busy tasks took its own 2 ms, a tick would wait 10 ms. The first task to
resume after the window ran out opens the next one; the others resuming in the
same iteration find it partly used, so an iteration of background work stays
near SLICE in all.
"""

from __future__ import annotations

import asyncio
import time

SLICE = 0.002  # seconds of background work per loop iteration, all tasks together

_window_end = 0.0


def spent() -> bool:
    """Whether this iteration's window is used up: time to await pause()."""
    return time.perf_counter() >= _window_end


def begin() -> None:
    """Start a piece of work: opens a window if none is open (a tick's run)."""
    global _window_end
    now = time.perf_counter()
    if now >= _window_end:
        _window_end = now + SLICE


async def pause() -> None:
    """Let the loop run (timers, I/O, other tasks), then go on in a window."""
    global _window_end
    yielded = time.perf_counter()
    await asyncio.sleep(0)
    if _window_end <= yielded:  # the window we left is over: the first one back opens one
        _window_end = time.perf_counter() + SLICE


async def check() -> None:
    """pause() if the window is used up."""
    if time.perf_counter() >= _window_end:
        await pause()

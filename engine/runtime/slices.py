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

Timers come first: once one of the loop's timers is due (a group's tick, a
retry's backoff, a request's timeout), the window counts as used up, so work
in progress yields at its next step and the timer runs in the next iteration
instead of after the rest of the window.

Some work cannot be cut (building one notification of a thousand alerts takes
tens of milliseconds). Before such a step, `room(cost)` waits until
it fits before the next scheduled tick (the app says when that is:
`watch_ticks`), so the step runs just after a tick rather than in its way.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

SLICE = 0.002  # seconds of background work per loop iteration, all tasks together
MARGIN = 0.002  # seconds kept free before a tick, beyond a step's expected cost
ROOM_WAIT = 0.5  # seconds a big step waits for room at most (ticks packed too close)

_window_end = 0.0
_off = False  # disable()d
_next_tick: Callable[[], float | None] | None = None


def spent() -> bool:
    """Whether this iteration's window is used up, or a timer is due: time to
    await pause()."""
    if _off:
        return False
    return time.perf_counter() >= _window_end or _timer_due()


def disable() -> None:
    """For a process whose loop runs no evaluation ticks (the sender process):
    work runs in as long steps as it likes, spent() is always False."""
    global _off
    _off = True


def _timer_due() -> bool:
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return False
    # asyncio's own loop keeps its timers in a heap, earliest first; other loops
    # (uvloop) do not expose one, and then only the window counts
    heap: list[asyncio.TimerHandle] | None = getattr(loop, "_scheduled", None)
    if not heap:
        return False
    return heap[0].when() <= loop.time()


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
    timer = _timer_due()
    await asyncio.sleep(0)
    if timer:
        # the timer ran in that iteration; what it started (a scheduler's job is a
        # task created there) runs in the next one: let it go first
        await asyncio.sleep(0)
    if _window_end <= yielded:  # the window we left is over: the first one back opens one
        _window_end = time.perf_counter() + SLICE


async def check() -> None:
    """pause() if the window is used up or a timer is due; then, as long as the
    window is used up by tasks that resumed before this one, pause again.
    (Timers are not looked at again: one that is always due must not starve it.)"""
    if spent():
        await pause()
        while time.perf_counter() >= _window_end:
            await pause()


def watch_ticks(next_tick: Callable[[], float | None] | None) -> None:
    """Tell room() when the next scheduled tick is: `next_tick()` gives the
    seconds until it (negative when due, None when nothing is scheduled)."""
    global _next_tick
    _next_tick = next_tick


async def room(cost: float) -> None:
    """Before one piece of work expected to take `cost` seconds that cannot be
    cut: wait until it fits before the next tick (after at most ROOM_WAIT,
    it runs anyway). Small steps (within a slice) go at once."""
    if cost <= SLICE or _next_tick is None:
        return
    give_up = time.monotonic() + ROOM_WAIT
    while (until := _next_tick()) is not None and until <= cost + MARGIN:
        if time.monotonic() >= give_up:
            break
        # sleep past the tick: its job starts in the iteration its timer runs in
        await asyncio.sleep(max(until, 0.0) + MARGIN)

"""A budget of event-loop time for long work on the daemon's loop.

Evaluation ticks, API requests and the dispatcher share one event loop, so a
long piece of work (journaling a 1,000-alert burst, pumping it into the
channels' queues, building 10,000 alert views for a listing, copying the state
for a snapshot) would make every timer behind it late. Such work is done in
small steps, asking `budget.spent()` between them and, once it says so,
awaiting `budget.pause()` (or, in one call, `await budget.yield_if_spent()`).

    budget = Budget(ms=1)          # one per loop: the daemon makes it
    budget.start()                 # a piece of work begins
    for _ in steps():
        await budget.yield_if_spent()

One Budget is shared by all such work on the loop (the App makes it and hands
it to the dispatcher, the API and its snapshot writer), not one per task: each
loop iteration runs every task that is ready, and timers (a group's tick) are
looked at only between iterations; if five busy tasks each took their own 2 ms,
a tick would wait 10 ms. The first task to resume after the window ran out
opens the next one; the others resuming in the same iteration find it partly
used, so an iteration of background work stays near `ms` in all.

Timers come first: once one of the loop's timers is due (a group's tick, a
retry's backoff, a request's timeout), the budget counts as spent, so work in
progress yields at its next step and the timer runs in the next iteration.

Some work cannot be cut (rendering one notification of a thousand alerts takes
tens of milliseconds). Before such a step, `room(cost)` waits until it fits
before the next scheduled tick (`next_tick`, set by the daemon while its
scheduler runs), so the step runs just after a tick rather than in its way.

Its users, each measured to need it: evaluation and journaling of a big tick
(a 1,000-alert tick in one piece holds the loop ~25 ms of its own CPU, against
~8 ms in steps: bench/notify.py (a), "its own work"), the dispatcher's pump,
the API's large listings (building views, writing the body), the alert counts
and the snapshot's copy. Only the daemon's loop has a Budget: the sender
process and the channels run their work in one piece, since no tick shares
their loop.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

__all__ = ["Budget", "timer_due"]

MARGIN = 0.002  # seconds kept free before a tick, beyond a step's expected cost
ROOM_WAIT = 0.5  # seconds a big step waits for room at most (ticks packed too close)


def timer_due() -> bool:
    """Whether one of the running loop's timers is due (False outside a loop)."""
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


class Budget:
    """`ms` milliseconds of work per loop iteration, for all its users together.

    `next_tick()`, when set, gives the seconds until the next scheduled tick
    (negative when due, None when nothing is scheduled): `room` waits for it."""

    # 1 ms, not 2: with a logtail collector ingesting 10,000 lines/s, 2 ms windows
    # left ticks up to 12 ms late (bench/logtail.py --no-throughput --no-latency)
    def __init__(self, ms: float = 1.0) -> None:
        self.window = ms / 1e3
        self.next_tick: Callable[[], float | None] | None = None
        self._end = 0.0  # perf_counter() at which the open window closes

    def start(self) -> None:
        """A piece of work begins: opens a window if none is open."""
        now = time.perf_counter()
        if now >= self._end:
            self._end = now + self.window

    def spent(self) -> bool:
        """Whether the window is used up, or a timer is due: time to pause()."""
        return time.perf_counter() >= self._end or timer_due()

    async def pause(self) -> None:
        """Let the loop run (timers, I/O, other tasks), then go on in a window."""
        yielded = time.perf_counter()
        timer = timer_due()
        await asyncio.sleep(0)
        if timer:
            # the timer runs in the next iteration, but after this task (asyncio runs
            # what was made ready before that iteration's timers); what it starts (a
            # scheduler's job is a task created there) runs in the iteration after,
            # again after this task if it only yielded once more: so twice more
            await asyncio.sleep(0)
            await asyncio.sleep(0)
        if self._end <= yielded:  # the window we left is over: the first one back opens one
            self._end = time.perf_counter() + self.window

    async def yield_if_spent(self) -> None:
        """pause() if spent(); then, as long as the window is used up by tasks that
        resumed before this one, pause again. (Timers are not looked at again: one
        that is always due must not starve the work.)"""
        if self.spent():
            await self.pause()
            while time.perf_counter() >= self._end:
                await self.pause()

    async def room(self, cost: float) -> None:
        """Before one piece of work expected to take `cost` seconds that cannot be
        cut: wait until it fits before the next tick (after at most ROOM_WAIT, it
        runs anyway). Small steps (within a window) go at once."""
        next_tick = self.next_tick
        if cost <= self.window or next_tick is None:
            return
        give_up = time.monotonic() + ROOM_WAIT
        while (until := next_tick()) is not None and until <= cost + MARGIN:
            if time.monotonic() >= give_up:
                break
            # sleep past the tick: its job starts in the iteration its timer runs in
            await asyncio.sleep(max(until, 0.0) + MARGIN)

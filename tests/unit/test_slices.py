"""The loop's shared time slices: timers first, and room for big steps."""

from __future__ import annotations

import asyncio
import time

from engine import slices


def test_a_due_timer_ends_the_window() -> None:
    async def main() -> tuple[bool, bool, bool]:
        loop = asyncio.get_running_loop()
        slices.begin()
        open_window = slices._window_end > time.perf_counter()
        before = slices.spent()
        handle = loop.call_at(loop.time() - 0.001, lambda: None)  # a tick that is due
        during = slices.spent()
        await slices.check()  # yields: the timer runs
        after = handle.when() <= loop.time() and not slices._timer_due()
        return open_window and not before, during, after

    assert asyncio.run(main()) == (True, True, True)


def test_a_timer_not_yet_due_leaves_the_window_alone() -> None:
    async def main() -> bool:
        loop = asyncio.get_running_loop()
        loop.call_later(10, lambda: None)
        slices.begin()
        return slices.spent()

    assert asyncio.run(main()) is False


def test_room_waits_until_a_big_step_fits_before_the_next_tick() -> None:
    async def main() -> tuple[float, float]:
        loop = asyncio.get_running_loop()
        tick = loop.time() + 0.03  # the next tick in 30 ms, then every 200 ms
        slices.watch_ticks(lambda: (tick if loop.time() < tick else tick + 0.2) - loop.time())
        try:
            t0 = loop.time()
            await slices.room(0.001)  # small: no wait
            small = loop.time() - t0
            await slices.room(0.05)  # 50 ms does not fit in 30: after the tick
            return small, loop.time() - tick
        finally:
            slices.watch_ticks(None)

    small, after_tick = asyncio.run(main())
    assert small < 0.005
    assert 0 <= after_tick < 0.1


def test_room_gives_up_when_ticks_never_leave_a_gap() -> None:
    async def main() -> float:
        loop = asyncio.get_running_loop()
        slices.watch_ticks(lambda: 0.001)  # always a tick 1 ms away
        try:
            t0 = loop.time()
            await slices.room(0.05)
            return loop.time() - t0
        finally:
            slices.watch_ticks(None)

    waited = asyncio.run(main())
    assert slices.ROOM_WAIT <= waited < slices.ROOM_WAIT + 0.5

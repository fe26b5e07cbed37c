"""The loop's shared time slices: timers first, and room for big steps."""

from __future__ import annotations

import asyncio
import time

from engine.runtime import slices


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


def test_a_timer_always_due_does_not_starve_check() -> None:
    async def main() -> int:
        loop = asyncio.get_running_loop()
        fired = 0

        def again() -> None:  # re-arms itself already due: "always a timer due"
            nonlocal fired
            fired += 1
            loop.call_at(loop.time() - 0.001, again)

        loop.call_at(loop.time() - 0.001, again)
        await asyncio.wait_for(slices.check(), 1)
        return fired

    assert asyncio.run(main()) >= 1


def test_tasks_resumed_together_share_one_window() -> None:
    """Ten tasks each wanting 1 ms of work after a pause: about two run per
    iteration (SLICE = 2 ms), not all ten back to back."""

    async def main() -> list[int]:
        iteration = 0
        ran: list[int] = []

        async def count_iterations() -> None:
            nonlocal iteration
            while True:
                await asyncio.sleep(0)
                iteration += 1

        async def worker() -> None:
            await slices.pause()
            await slices.check()
            t = time.perf_counter()
            while time.perf_counter() - t < 0.001:
                pass
            ran.append(iteration)

        counter = asyncio.create_task(count_iterations())
        slices.begin()
        while not slices.spent():
            pass  # use up the window: all workers start with a pause
        await asyncio.gather(*(worker() for _ in range(10)))
        counter.cancel()
        return ran

    ran = asyncio.run(main())
    per_iteration = max(ran.count(i) for i in set(ran))
    assert len(ran) == 10 and per_iteration <= 3

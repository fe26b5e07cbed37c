"""The loop's time budget: windows, timers first, shared by its users, room for big steps."""

from __future__ import annotations

import asyncio
import time

from engine.runtime.budget import ROOM_WAIT, Budget, timer_due


def test_a_window_is_ms_long_and_reopens_after_a_pause() -> None:
    async def main() -> tuple[bool, bool, bool, float]:
        budget = Budget(ms=20)
        t0 = time.perf_counter()
        budget.start()
        fresh = budget.spent()
        while not budget.spent():
            pass
        took = time.perf_counter() - t0
        used_up = budget.spent()
        await budget.pause()  # the window we left is over: a new one opens
        return fresh, used_up, budget.spent(), took

    fresh, used_up, after_pause, took = asyncio.run(main())
    assert not fresh and used_up and not after_pause
    assert 0.02 <= took < 0.5  # the window's length (generous: a shared machine)


def test_yield_if_spent_lets_the_loop_run_only_once_spent() -> None:
    async def main() -> tuple[int, int]:
        budget = Budget(ms=50)
        turns = 0

        async def other() -> None:
            nonlocal turns
            while True:
                await asyncio.sleep(0)
                turns += 1

        task = asyncio.create_task(other())
        await asyncio.sleep(0)  # it starts
        budget.start()
        before = turns
        await budget.yield_if_spent()  # not spent: no turn for the other task
        within = turns - before
        while not budget.spent():
            pass
        await budget.yield_if_spent()
        spent = turns - before
        task.cancel()
        return within, spent

    within, spent = asyncio.run(main())
    assert within == 0 and spent >= 1


def test_a_due_timer_ends_the_window() -> None:
    async def main() -> tuple[bool, bool, bool]:
        loop = asyncio.get_running_loop()
        budget = Budget()
        budget.start()
        before = budget.spent()
        handle = loop.call_at(loop.time() - 0.001, lambda: None)  # a tick that is due
        during = budget.spent()
        await budget.yield_if_spent()  # yields: the timer runs
        after = handle.when() <= loop.time() and not timer_due()
        return not before, during, after

    assert asyncio.run(main()) == (True, True, True)


def test_a_timer_not_yet_due_leaves_the_window_alone() -> None:
    async def main() -> bool:
        loop = asyncio.get_running_loop()
        loop.call_later(10, lambda: None)
        budget = Budget(ms=1000)
        budget.start()
        return budget.spent()

    assert asyncio.run(main()) is False


def test_room_waits_until_a_big_step_fits_before_the_next_tick() -> None:
    async def main() -> tuple[float, float]:
        loop = asyncio.get_running_loop()
        budget = Budget()
        tick = loop.time() + 0.03  # the next tick in 30 ms, then every 200 ms
        budget.next_tick = lambda: (tick if loop.time() < tick else tick + 0.2) - loop.time()
        t0 = loop.time()
        await budget.room(0.001)  # small: no wait
        small = loop.time() - t0
        await budget.room(0.05)  # 50 ms does not fit in 30: after the tick
        return small, loop.time() - tick

    small, after_tick = asyncio.run(main())
    assert small < 0.005
    assert 0 <= after_tick < 0.1


def test_room_without_ticks_to_watch_goes_at_once() -> None:
    async def main() -> float:
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        await Budget().room(10.0)  # next_tick unset: nothing scheduled
        return loop.time() - t0

    assert asyncio.run(main()) < 0.05


def test_room_gives_up_when_ticks_never_leave_a_gap() -> None:
    async def main() -> float:
        loop = asyncio.get_running_loop()
        budget = Budget()
        budget.next_tick = lambda: 0.001  # always a tick 1 ms away
        t0 = loop.time()
        await budget.room(0.05)
        return loop.time() - t0

    waited = asyncio.run(main())
    assert ROOM_WAIT <= waited < ROOM_WAIT + 0.5


def test_a_timer_always_due_does_not_starve_yield_if_spent() -> None:
    async def main() -> int:
        loop = asyncio.get_running_loop()
        fired = 0

        def again() -> None:  # re-arms itself already due: "always a timer due"
            nonlocal fired
            fired += 1
            loop.call_at(loop.time() - 0.001, again)

        loop.call_at(loop.time() - 0.001, again)
        await asyncio.wait_for(Budget().yield_if_spent(), 1)
        return fired

    assert asyncio.run(main()) >= 1


def test_tasks_resumed_together_share_one_window() -> None:
    """Ten tasks sharing one budget, each wanting 1 ms of work after a pause:
    about two run per iteration (2 ms windows), not all ten back to back."""

    async def main() -> list[int]:
        budget = Budget(ms=2)
        iteration = 0
        ran: list[int] = []

        async def count_iterations() -> None:
            nonlocal iteration
            while True:
                await asyncio.sleep(0)
                iteration += 1

        async def worker() -> None:
            await budget.pause()
            await budget.yield_if_spent()
            t = time.perf_counter()
            while time.perf_counter() - t < 0.001:
                pass
            ran.append(iteration)

        counter = asyncio.create_task(count_iterations())
        budget.start()
        while not budget.spent():
            pass  # use up the window: all workers start with a pause
        await asyncio.gather(*(worker() for _ in range(10)))
        counter.cancel()
        return ran

    ran = asyncio.run(main())
    per_iteration = max(ran.count(i) for i in set(ran))
    assert len(ran) == 10 and per_iteration <= 3


def test_work_paused_for_a_due_timer_resumes_after_the_job_the_timer_starts() -> None:
    """A scheduler's timer starts its job as a new task (APScheduler's
    AsyncIOExecutor): the paused work must not resume before that task has run.
    asyncio runs what was made ready before an iteration's timers first, so the
    work yields three times (with two it ran one more window ahead of the tick)."""

    async def main() -> list[str]:
        loop = asyncio.get_running_loop()
        budget = Budget(ms=60_000)  # the window never runs out: only the timer counts
        order: list[str] = []

        async def job() -> None:
            order.append("job")

        loop.call_later(0.002, lambda: loop.create_task(job()))
        budget.start()
        while not budget.spent():  # busy until the timer is due
            pass
        await budget.pause()
        order.append("work")
        await asyncio.sleep(0.01)
        return order

    assert asyncio.run(main()) == ["job", "work"]

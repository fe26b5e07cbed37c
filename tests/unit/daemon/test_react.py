"""engine/daemon/react.py's coalescing: a burst of triggers is a bounded number of
runs, never two at once, at most one start per gap, and a trigger during a run
is never lost."""

from __future__ import annotations

import asyncio
import itertools
import time

from engine.daemon.clock import Clock
from engine.daemon.react import Coalesced


def test_a_burst_of_triggers_runs_once_per_gap_never_twice_at_once() -> None:
    starts: list[float] = []
    running = 0
    overlap = False

    async def run(key: str) -> None:
        nonlocal running, overlap
        running += 1
        overlap = overlap or running > 1
        starts.append(time.monotonic())
        await asyncio.sleep(0.01)
        running -= 1

    async def main() -> None:
        c = Coalesced(run, lambda _: 0.1, Clock())
        t0 = time.monotonic()
        while time.monotonic() - t0 < 0.5:  # 500 triggers in half a second
            c.trigger("g")
            await asyncio.sleep(0.001)
        await asyncio.sleep(0.3)
        await c.stop(5.0)

    asyncio.run(asyncio.wait_for(main(), 10))
    assert not overlap
    assert 4 <= len(starts) <= 7, starts  # 0.5 s of triggers at one run per 0.1 s, and the last
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    assert min(gaps) >= 0.095, gaps


def test_a_trigger_during_a_run_makes_one_more_run() -> None:
    runs = 0

    async def run(key: str) -> None:
        nonlocal runs
        runs += 1
        await asyncio.sleep(0.05)

    async def main() -> None:
        c = Coalesced(run, lambda _: 0.0, Clock())
        c.trigger("g")
        await asyncio.sleep(0.02)  # the first run is in flight
        c.trigger("g")
        c.trigger("g")
        await asyncio.sleep(0.3)
        await c.stop(5.0)

    asyncio.run(asyncio.wait_for(main(), 10))
    assert runs == 2

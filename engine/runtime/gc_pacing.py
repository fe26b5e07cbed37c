"""Garbage collection paced to the event loop's idle moments.

CPython's automatic collection of the oldest generation walks every container
object the process holds, with the event loop stopped: 10-100 ms with a few
thousand alerts, at moments the allocation rate picks (a notification burst,
API traffic) — exactly when evaluation ticks are due. So, once start-up is over:

- what start-up built is collected once and frozen (gc.freeze): it lives as long
  as the process, and reference counting still frees it;
- automatic collection keeps the two young generations (cheap, proportional to
  what was allocated lately) but never starts a full one;
- every FULL_EVERY seconds the pacer collects the old generation itself, when no
  scheduled job is due for longer than the last such collection took (plus a
  margin), and freezes the survivors, so the next one walks only what is newer;
- after a reload, and every THAW_EVERY seconds, everything is unfrozen and
  collected (what a replaced configuration left in cycles), also in a gap.

A gap is waited for at most MAX_WAIT seconds; then the collection runs anyway,
since memory matters more than one late tick.

Measured to pay for itself (`BENCH_NO_GC_PACING=1 bench/notify.py`): without it,
full collections of 30-160 ms fall into a 1,000-alert burst, and the loop's own
work in its worst lag grows from ~9 ms to ~50 ms, over the 10 ms tick target.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections.abc import Callable

log = logging.getLogger("vigil")

FULL_EVERY = 30.0
THAW_EVERY = 3600.0
MAX_WAIT = 60.0
POLL = 0.25  # how often a gap is looked for while a collection is owed
MARGIN = 0.005  # seconds of gap beyond the expected duration
NEVER = 1_000_000_000  # a threshold the old generation's counter never reaches


class GcPacer:
    """`next_due()` gives the seconds until the next scheduled job (None: none)."""

    def __init__(self, next_due: Callable[[], float | None]) -> None:
        self.next_due = next_due
        self.took = {False: 0.005, True: 0.05}  # last duration: young-only / thawed
        self._thaw = False
        self.last_full = time.monotonic()
        self.last_thaw = time.monotonic()

    def freeze_startup(self) -> None:
        t0 = time.perf_counter()
        gc.collect()
        gc.freeze()
        g0, g1, _ = gc.get_threshold()
        gc.set_threshold(g0, g1, NEVER)
        self.took[True] = time.perf_counter() - t0
        log.debug(
            "froze %d start-up objects in %.0f ms", gc.get_freeze_count(), self.took[True] * 1e3
        )

    def thaw_soon(self) -> None:
        """Have the next collection walk everything (after a reload)."""
        self._thaw = True

    async def run(self) -> None:
        while True:
            await asyncio.sleep(POLL)
            now = time.monotonic()
            thaw = self._thaw or now - self.last_thaw >= THAW_EVERY
            if not thaw and now - self.last_full < FULL_EVERY:
                continue
            owed_since = self.last_thaw if thaw else self.last_full
            overdue = now - owed_since >= (THAW_EVERY if thaw else FULL_EVERY) + MAX_WAIT
            gap = self.next_due()
            if overdue or gap is None or gap >= self.took[thaw] * 1.5 + MARGIN:
                self.collect(thaw)

    def collect(self, thaw: bool) -> None:
        t0 = time.perf_counter()
        if thaw:
            gc.unfreeze()
        found = gc.collect()
        gc.freeze()
        took = self.took[thaw] = time.perf_counter() - t0
        now = time.monotonic()
        self.last_full = now
        if thaw:
            self.last_thaw, self._thaw = now, False
        log.debug(
            "garbage collection%s: %d unreachable, %d frozen, %.1f ms",
            " (all)" if thaw else "", found, gc.get_freeze_count(), took * 1e3,
        )  # fmt: skip

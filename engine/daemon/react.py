"""Reacting to data: a pass when a collector is woken, an evaluation when it has news.

The interval jobs (engine/daemon/schedule.py) bound how late anything is; this
makes a log line's alert prompt without short intervals. A collector that can be
woken (`watch(wake)`, e.g. logtail on a write to a followed file) is collected at
once, at most once per its `react` seconds; a collection whose collector says
`news()` (logtail: new per-key pattern hits) evaluates the groups whose rules read
that collector at once, at most once per group per `EVAL_GAP`. So a busy log costs
a bounded number of passes and evaluations per second, whatever its line rate.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from engine.collectors.base import Collector
from engine.config.model import Config, RuleGroup
from engine.daemon.clock import Clock
from engine.daemon.collecting import Collecting
from engine.daemon.evaluation import Evaluation

log = logging.getLogger("vigil")

EVAL_GAP = 0.05  # seconds between two prompt evaluations of one group


class Coalesced:
    """Runs `run(key)` soon after `trigger(key)`: never two at once per key, at most
    one start per `gap(key)` seconds, and triggers meanwhile make one more run."""

    def __init__(
        self,
        run: Callable[[str], Awaitable[None]],
        gap: Callable[[str], float],
        clock: Clock,
    ) -> None:
        self._run = run
        self._gap = gap
        self._clock = clock
        self._started: dict[str, float] = {}  # key -> monotonic start of its last run
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._again: set[str] = set()
        self._stopped = False

    def trigger(self, key: str) -> None:
        if self._stopped:
            return
        task = self._tasks.get(key)
        if task is not None and not task.done():
            self._again.add(key)  # the run in flight (or waiting for its gap) may miss it
            return
        self._tasks[key] = asyncio.get_running_loop().create_task(self._loop(key))

    async def _loop(self, key: str) -> None:
        while True:
            wait = self._started.get(key, float("-inf")) + self._gap(key) - self._clock.mono()
            if wait > 0:
                await asyncio.sleep(wait)
            if self._stopped:
                return
            self._again.discard(key)  # what came before this run starts is seen by it
            self._started[key] = self._clock.mono()
            try:
                await self._run(key)
            except Exception:  # one failed run must not end the reacting
                log.exception("prompt run of %s failed", key)
            if key not in self._again:
                return

    async def stop(self, timeout: float) -> None:
        """No run starts any more; the runs in flight finish (an evaluation cut
        short would have stepped alerts without journaling them), within `timeout`."""
        self._stopped = True
        tasks = [t for t in self._tasks.values() if not t.done()]
        if tasks:
            await asyncio.wait(tasks, timeout=timeout)


class Reactor:
    """Wakes collections and evaluations between their interval ticks."""

    def __init__(self, collecting: Collecting, evaluation: Evaluation, clock: Clock) -> None:
        self.collecting = collecting
        self.evaluation = evaluation
        self._loop: asyncio.AbstractEventLoop | None = None
        self._watched: dict[str, Collector] = {}  # the collectors woken by their writes
        self._readers: dict[str, list[RuleGroup]] = {}  # collector -> the groups reading it
        self._groups: dict[str, RuleGroup] = {}
        self._collects = Coalesced(self._collect, self._react_gap, clock)
        self._evaluations = Coalesced(self._evaluate, lambda _: EVAL_GAP, clock)

    def start(self, config: Config) -> None:
        self._loop = asyncio.get_running_loop()
        self.collecting.on_news = self._news
        self.reconfigure(config)

    def reconfigure(self, config: Config) -> None:
        """After a start or a reload: watch new collectors, re-read who reads what."""
        self._readers = readers(config)
        self._groups = {g.name: g for g in config.groups}
        watched, self._watched = self._watched, {}
        for name, c in self.collecting.collectors.items():
            watch = getattr(c, "watch", None)
            if watch is not None:
                if watched.get(name) is not c:  # new, or rebuilt by the reload
                    watch(self._waker(name))
                self._watched[name] = c

    def _waker(self, name: str) -> Callable[[], None]:
        loop = self._loop
        assert loop is not None

        def wake() -> None:  # from the collector's watching thread
            with contextlib.suppress(RuntimeError):  # the loop closed at the stop
                loop.call_soon_threadsafe(self._collects.trigger, name)

        return wake

    def _react_gap(self, name: str) -> float:
        c: Collector | None = self.collecting.collectors.get(name)
        gap = getattr(c, "react", None)
        return float(gap) if gap else 0.0

    async def _collect(self, name: str) -> None:
        await self.collecting.collect(name, woken=True)

    def _news(self, collector: str) -> None:
        if self._loop is None:
            return
        for g in self._readers.get(collector, ()):
            self._evaluations.trigger(g.name)

    async def _evaluate(self, group: str) -> None:
        g = self._groups.get(group)
        if g is not None:  # removed by a reload meanwhile
            await self.evaluation.run_group(g, prompt=True)

    async def stop(self, timeout: float) -> None:
        self._loop = None
        await asyncio.gather(self._collects.stop(timeout), self._evaluations.stop(timeout))


def readers(config: Config) -> dict[str, list[RuleGroup]]:
    """collector name -> the groups with a rule that reads it."""
    out: dict[str, list[RuleGroup]] = {}
    collectors = {c.name for c in config.collectors}
    for g in config.groups:
        names: set[str] = set()
        for r in g.rules:
            for e in (r.compiled, r.compiled_resolve, r.compiled_each):
                if e is not None:
                    names.update(n for n in e.names if n in collectors)
        for n in names:
            out.setdefault(n, []).append(g)
    return out

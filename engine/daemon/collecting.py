"""Collecting: the collectors, their reads cleaned at the boundary, collector_down.

Each read lands whole in the hub (and in the history when a window reads it);
a failing collector raises the daemon's own collector_down alert, its first
good read resolves it. Separate from evaluation: it only fills what the rules read.
"""

from __future__ import annotations

import asyncio
import logging

from engine.collectors.base import Collector, create, restore_state, state_events
from engine.common.boundary import clean
from engine.config.model import CollectorConfig, Config
from engine.daemon.evaluation import Evaluation, synthetic_rule
from engine.errors import CollectorError, ConfigError, Problem

log = logging.getLogger("vigil")


class Collecting(Evaluation):
    """The collectors of the running configuration, read on their schedule."""

    collectors: dict[str, Collector]
    _recorded: set[str]  # the collectors a window reads: only they are recorded
    _cut_logged: dict[str, str]
    _collecting: int

    def _start_collectors(self, config: Config) -> None:
        for cc in config.collectors:
            self.collectors[cc.name] = c = create(cc)
            restore_state(cc.name, c, self.state)

    async def collect(self, name: str) -> None:
        self._collecting += 1
        try:
            await self._collect(name)
        finally:
            self._collecting -= 1

    async def _collect(self, name: str) -> None:
        c = self.collectors.get(name)
        if c is None:  # removed by a reload while its job was due
            return
        t0 = self.mono()
        try:
            sample = await asyncio.wait_for(c.collect(self.wall()), timeout=c.timeout + 1.0)
        except (CollectorError, TimeoutError, OSError) as e:
            self.metrics.collector(name, up=False)
            await self._collector_failed(name, str(e) or type(e).__name__)
            return
        saved = state_events(name, c)  # durable before the sample is read (logtail offsets)
        if saved and self.journal is not None and self.journal.is_open:
            await self._journal_only(saved, True)
        if self.collectors.get(name) is not c:
            return  # replaced meanwhile
        # the boundary: valid text, bounded depth and size, whatever the collector read
        sample, cut = clean(sample)
        if cut is not None and self._cut_logged.get(name) != cut:
            self._cut_logged[name] = cut
            log.warning("collector %s: values cut at the boundary: %s", name, cut)
        self.metrics.collector(name, up=True, duration=self.mono() - t0)
        self.hub.values[name] = sample
        if name in self._recorded:
            self.history.record_tree(name, self.wall(), sample)
        if name in self.hub.down:
            del self.hub.down[name]
            rule = synthetic_rule("collector_down", {"collector": name}, "")
            await self._emit(
                [{"event": "collector_up", "collector": name},
                 self._synthetic_event("resolved", rule, None)],
                durable=True,
            )  # fmt: skip

    async def _collector_failed(self, name: str, error: str) -> None:
        self.hub.values.pop(name, None)
        first = name not in self.hub.down
        self.hub.down[name] = error
        if first:
            log.warning("collector %s failed: %s", name, error)
            rule = synthetic_rule(
                "collector_down", {"collector": name}, f"collector {name} is failing"
            )
            await self._emit(
                [{"event": "collector_down", "collector": name, "error": error[:500]},
                 self._synthetic_event("firing", rule, error[:200])],
                durable=True,
            )  # fmt: skip


def build_collectors(configs: list[CollectorConfig]) -> dict[str, Collector]:
    """The collectors of `configs`, or ConfigError naming each one that cannot be
    built (the loader ran every plugin's parse already: this is the backstop)."""
    built: dict[str, Collector] = {}
    problems: list[Problem] = []
    for cc in configs:
        try:
            built[cc.name] = create(cc)
        except Exception as e:  # noqa: BLE001 - boundary: any plugin's error rejects the reload
            src = cc.source
            problems.append(Problem(src.file, src.line, src.col, " ".join(str(e).split())))
    if problems:
        raise ConfigError(problems)
    return built

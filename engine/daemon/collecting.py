"""Collecting: the collectors, their reads cleaned at the boundary, collector_down.

Each read lands whole in the hub (and in the history when a window reads it);
a failing collector raises the daemon's own collector_down alert, its first
good read resolves it. Separate from evaluation: it only fills what the rules read.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from functools import partial
from typing import Any

from engine.collectors.base import Collector, create, restore_state, state_events
from engine.common.boundary import Memo, clean
from engine.common.records import CollectorStateEvent, JournalEvent
from engine.config.model import CollectorConfig, Config, Rule
from engine.daemon.clock import Clock
from engine.daemon.emit import EventPath, synthetic_rule
from engine.daemon.hub import CollectorHub, rules_max_window, windowed
from engine.daemon.metrics import Metrics
from engine.errors import CollectorError, ConfigError, Problem
from engine.expr.history import History

log = logging.getLogger("vigil")


class Collecting:
    """Owns the collectors of the running configuration and which of them a window
    reads; writes their reads into the hub (and the history), and their outages
    down the event path."""

    def __init__(
        self,
        config: Config,
        hub: CollectorHub,
        history: History,
        events: EventPath,
        metrics: Metrics,
        clock: Clock,
    ) -> None:
        self.hub = hub
        self.history = history
        self.events = events
        self.metrics = metrics
        self.clock = clock
        self.collectors: dict[str, Collector] = {}
        # a collection of 10,000 values costs ~200 ms to record: only what a window reads
        self.recorded = windowed(config.rules())
        self._cut_logged: dict[str, str] = {}  # collector -> what was last cut (logged once)
        # the boundary's memo of each collector whose samples share unchanged parts
        self._memos: dict[str, tuple[Collector, Memo]] = {}
        self._collecting = 0  # collections in flight (drained at shutdown)
        # one collection at a time per collector: the interval job and a prompt one
        # (engine/daemon/react.py) may both be due
        self._locks: dict[str, asyncio.Lock] = {}
        self.on_news: Callable[[str], None] | None = None  # a collector says news() after a read

    @property
    def busy(self) -> bool:
        """Whether a collection is in flight (drained at shutdown)."""
        return self._collecting > 0

    def start(self, config: Config) -> None:
        for cc in config.collectors:
            self.collectors[cc.name] = c = create(cc)
            restore_state(cc.name, c, self.events.durable.state)

    async def collect_all(self) -> None:
        await asyncio.gather(*(self.collect(n) for n in self.collectors))

    async def collect(self, name: str, *, woken: bool = False) -> None:
        """One read of collector `name`; `woken` (engine/daemon/react.py): by a write,
        through its `collect_woken`, which may have nothing for the rules."""
        self._collecting += 1
        try:
            async with self._locks.setdefault(name, asyncio.Lock()):
                await self._collect(name, woken)
        finally:
            self._collecting -= 1

    async def _collect(self, name: str, woken: bool) -> None:
        c = self.collectors.get(name)
        if c is None:  # removed by a reload while its job was due
            return
        t0 = self.clock.mono()
        read = getattr(c, "collect_woken", None) if woken else None
        try:
            sample = await asyncio.wait_for(
                (read or c.collect)(self.clock.wall()), timeout=c.timeout + 1.0
            )
        except (CollectorError, TimeoutError, OSError) as e:
            self.metrics.collector(name, up=False)
            await self._collector_failed(name, str(e) or type(e).__name__)
            return
        saved = state_events(name, c)  # durable before the sample is read (logtail offsets)
        if saved:
            await self.events.record(saved)
        if self.collectors.get(name) is not c or sample is None:
            return  # replaced meanwhile, or a woken read with nothing new for the rules
        # the boundary: valid text, bounded depth and size, whatever the collector read;
        # walked in a worker thread: a logtail sample of 500 keys with their evidence
        # costs milliseconds that the loop's next tick must not wait for (issue 16);
        # a collector whose own process cleaned it (logtail's reader) is not walked
        # again here, where that walk would hold the GIL the loop needs
        cut = None
        if not getattr(c, "cleaned", False):
            memo = self._memo(name, c)
            sample, cut = await asyncio.to_thread(partial(clean, memo=memo), sample)
        if self.collectors.get(name) is not c:
            return  # replaced meanwhile
        if cut is not None and self._cut_logged.get(name) != cut:
            self._cut_logged[name] = cut
            log.warning("collector %s: values cut at the boundary: %s", name, cut)
        self.metrics.collector(name, up=True, duration=self.clock.mono() - t0)
        self.hub.values[name] = sample
        self.hub.last[name] = self.clock.wall()
        fills = getattr(c, "fills_for", 0.0)
        # and again when it comes back up: what read its windows may have restarted
        # (logtail's reader process, isolated.py), and what it missed is being read now
        if fills and (name not in self.hub.filling or name in self.hub.down):
            self.hub.filling[name] = (self.clock.mono() + fills, self.clock.wall() + fills)
        if name in self.recorded:
            self.history.record_tree(name, self.clock.wall(), sample)
        news = getattr(c, "news", None)
        if self.on_news is not None and news is not None and news():
            self.on_news(name)
        if name in self.hub.down:
            del self.hub.down[name]
            rule = synthetic_rule("collector_down", {"collector": name}, "")
            await self.events.emit(
                [{"event": "collector_up", "collector": name},
                 self.events.synthetic("resolved", rule, None)],
                durable=True,
            )  # fmt: skip

    def _memo(self, name: str, c: Collector) -> Memo | None:
        """A collector that says `shares_values` (it never changes a container it
        handed out, and hands out the same ones while unchanged) gets a Memo: the
        boundary walks only what is new in its sample."""
        if not getattr(c, "shares_values", False):
            return None
        got = self._memos.get(name)
        if got is None or got[0] is not c:  # new, or rebuilt by a reload
            got = self._memos[name] = (c, Memo())
        return got[1]

    async def _collector_failed(self, name: str, error: str) -> None:
        self.hub.values.pop(name, None)
        first = name not in self.hub.down
        self.hub.down[name] = error
        if first:
            log.warning("collector %s failed: %s", name, error)
            rule = synthetic_rule(
                "collector_down", {"collector": name}, f"collector {name} is failing"
            )
            await self.events.emit(
                [{"event": "collector_down", "collector": name, "error": error[:500]},
                 self.events.synthetic("firing", rule, error[:200])],
                durable=True,
            )  # fmt: skip

    # -- start -----------------------------------------------------------------------------
    def restore(self, state: Mapping[str, Any], config: Config) -> None:
        """Collectors that were down when the daemon stopped: their first good read
        says so."""
        for name in state["collectors_down"]:
            if any(c.name == name for c in config.collectors):
                self.hub.down[name] = "down before the restart"

    @staticmethod
    def orphans(state: Mapping[str, Any], config: Config) -> list[JournalEvent]:
        """At start: the collectors down when the daemon stopped that are gone now."""
        collectors = {c.name for c in config.collectors}
        return [
            {"event": "collector_up", "collector": name}
            for name in list(state["collectors_down"])
            if name not in collectors
        ]

    # -- reload ----------------------------------------------------------------------------
    async def swap(self, old: Config, new: Config, changed: list[Rule]) -> None:
        """Take the collectors of `new`, keeping the unchanged ones (and their
        connections, primed counters); ConfigError, with nothing changed, if one
        cannot be built. `changed` are the rules new or changed."""
        old_cc = {c.name: c for c in old.collectors}
        new_cc = {c.name: c for c in new.collectors}
        built = build_collectors(
            [cc for n, cc in new_cc.items() if n not in self.collectors or old_cc.get(n) != cc]
        )  # all or nothing, before anything of the old configuration is let go
        for name in list(self.collectors):
            if old_cc.get(name) != new_cc.get(name):
                c = self.collectors.pop(name)
                self.hub.values.pop(name, None)
                self.hub.down.pop(name, None)
                self.hub.filling.pop(name, None)  # the new one's windows start empty
                await c.aclose()
        for name, c in built.items():
            restore_state(name, c, self.events.durable.state)
        self.collectors.update(built)
        # the window only grows, and so does what is recorded
        self.history.max_window = max(self.history.max_window, rules_max_window(changed))
        self.recorded |= windowed(changed)

    def unread(self, config: Config) -> list[str]:
        """The collectors of `config` with neither a value nor an outage yet."""
        return [
            c.name
            for c in config.collectors
            if c.name not in self.hub.values and c.name not in self.hub.down
        ]

    async def aclose(self) -> list[CollectorStateEvent]:
        """Close every collector: the state they changed since their last record
        (logtail's offsets held back by save_interval), for the journal."""
        saved: list[CollectorStateEvent] = []
        for name, c in self.collectors.items():
            await c.aclose()
            saved += state_events(name, c)
        return saved


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

"""Reload: build the whole configuration aside, swap it in, or reject it.

Loading runs off the loop and bounded in time; only a configuration that is
valid as a whole (its collectors built too) replaces the running one, keeping
the unchanged collectors, groups and alert timers. A rejection keeps the old
configuration and raises config_invalid. Separate: the one place the running
configuration changes.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from engine.common.records import JournalEvent
from engine.config.build import ConfigLoader
from engine.config.model import Config
from engine.daemon.clock import Clock
from engine.daemon.collecting import Collecting
from engine.daemon.emit import EventPath, synthetic_rule
from engine.daemon.evaluation import Evaluation
from engine.daemon.metrics import Metrics
from engine.daemon.schedule import Scheduler
from engine.daemon.systemd import Notifier
from engine.errors import ConfigError, Problem
from engine.runtime.gc_pacing import GcPacer
from engine.runtime.reload_thread import LoadTimeout, run_bounded

log = logging.getLogger("vigil")


class Reloader:
    """Owns the running configuration (`config`), the loader and the outcome of the
    last reload; a swap hands the new configuration to collecting, evaluation, the
    scheduler and `on_swap` (the dispatcher, the API), in that order."""

    def __init__(
        self,
        config: Config,
        loader: ConfigLoader,
        config_path: str | None,
        *,
        events: EventPath,
        collecting: Collecting,
        evaluation: Evaluation,
        scheduler: Scheduler,
        on_swap: Callable[[Config], None],
        metrics: Metrics,
        gc: GcPacer,
        systemd: Notifier,
        ready: Callable[[], bool],
        summary: Callable[[], str],
        clock: Clock,
    ) -> None:
        self.config = config
        self.loader = loader
        self.config_path = config_path
        self.events = events
        self.collecting = collecting
        self.evaluation = evaluation
        self.scheduler = scheduler
        self.on_swap = on_swap
        self.metrics = metrics
        self.gc = gc
        self.systemd = systemd
        self.ready = ready
        self.summary = summary
        self.clock = clock
        self.last_reload: dict[str, Any] = {"ok": True, "at": clock.wall(), "errors": []}
        self._reload_lock = asyncio.Lock()

    async def reload(
        self,
        *,
        by: str = "signal",
        if_changed: bool = False,
        settled: Callable[[], Awaitable[bool]] | None = None,
    ) -> dict[str, Any]:
        """Build the whole configuration aside; swap it in only if all of it is valid.

        `if_changed` (file events) skips the swap when no file's content changed;
        an explicit reload (SIGHUP, API) always swaps, since a secret behind
        ${file:...} may have changed without any config file changing.
        `settled` (the file watcher's) is awaited between loading and acting: if it
        says the files changed meanwhile, what was loaded is dropped unused."""
        async with self._reload_lock:
            # a reload while starting (the watcher's first look) must not tell
            # systemd READY=1 before the daemon is
            tell_systemd = self.ready()
            if tell_systemd:
                self.systemd.reloading("reloading configuration")
            t0 = time.perf_counter()
            try:
                # parsing runs off the loop, so evaluation keeps its pace meanwhile,
                # in a thread that neither a stop nor the next reload waits for forever
                loader = self.loader
                try:
                    result = await run_bounded(lambda: loader.load(self.config_path))
                except LoadTimeout as e:
                    # the stuck thread keeps the old loader and its caches to itself
                    self.loader = ConfigLoader()
                    return await self._reject([Problem(self.config_path or "", 0, 0, str(e))], by)
                loaded_ms = (time.perf_counter() - t0) * 1000
                if settled is not None and not await settled():
                    return {"ok": True, "errors": [], "superseded": True}
                if result.config is None:
                    return await self._reject(result.problems, by)
                unchanged = result.config.config_hash == self.config.config_hash
                if if_changed and unchanged and self.last_reload["ok"]:
                    return {"ok": True, "errors": [], "config_hash": self.config.config_hash}
                try:
                    await self._swap(result.config, by)
                except ConfigError as e:  # a collector its plugin would not build after all
                    return await self._reject(e.problems, by)
                ms = (time.perf_counter() - t0) * 1000
                log.info(
                    "configuration reloaded (%s, by %s) in %.0f ms (%.0f ms loading it)",
                    result.config.config_hash,
                    by,
                    ms,
                    loaded_ms,
                )
                return {"ok": True, "errors": [], "config_hash": result.config.config_hash}
            finally:
                if tell_systemd:
                    self.systemd.ready(self.summary())

    async def _reject(self, problems: list[Any], by: str) -> dict[str, Any]:
        errors = [p.format() for p in problems]
        now = self.clock.wall()
        self.last_reload = {"ok": False, "at": now, "errors": errors}
        self.metrics.reload(ok=False, at=now)
        for e in errors[:20]:
            log.error("reload rejected: %s", e)
        rule = synthetic_rule(
            "config_invalid", {}, f"configuration rejected: {errors[0] if errors else ''}"
        )
        events: list[JournalEvent] = [
            {"event": "config_rejected", "by": by, "errors": errors[:500]}
        ]
        if not self.events.firing(rule):
            events.append(self.events.synthetic("firing", rule, len(errors)))
        await self.events.emit(events, durable=True)
        return {"ok": False, "errors": errors}

    async def _swap(self, new: Config, by: str) -> None:
        old = self.config
        self.gc.thaw_soon()  # what the old configuration leaves in cycles
        snap = self.evaluation.snapshot()
        # unchanged files keep their group objects: with 10,000 rules, only the
        # changed groups' rules need a look
        same = {id(g) for g in old.groups}
        changed = [r for g in new.groups if id(g) not in same for r in g.rules]
        await self.collecting.swap(old, new, changed)
        resolved = self.evaluation.adopt(new, snap)
        self.config = new
        self.on_swap(new)
        self.scheduler.reschedule(old, new)
        now = self.clock.wall()
        self.last_reload = {"ok": True, "at": now, "errors": []}
        self.metrics.reload(ok=True, at=now)
        events: list[JournalEvent] = [
            {"event": "config_loaded", "hash": new.config_hash, "by": by,
             "rules": len(new.rules()), "channels": len(new.channels)}
        ]  # fmt: skip
        rule = synthetic_rule("config_invalid", {}, "")
        if self.events.firing(rule):
            events.append(self.events.synthetic("resolved", rule, None))
        if resolved:
            mono = self.clock.mono()
            events.extend(t.as_journal(mono) for t in resolved)
        events.extend(self.evaluation.problem_events())  # removed rules'
        await self.events.emit(events, durable=True)
        # new collectors get their first values before their rules' next tick
        fresh = self.collecting.unread(new)
        await asyncio.gather(*(self.collecting.collect(n) for n in fresh))

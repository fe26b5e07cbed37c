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

from engine.collectors.base import restore_state
from engine.config.build import ConfigLoader
from engine.config.model import Config
from engine.daemon.collecting import build_collectors
from engine.daemon.evaluation import synthetic_rule
from engine.daemon.hub import rules_max_window, windowed
from engine.daemon.schedule import Scheduling
from engine.daemon.systemd import Notifier
from engine.errors import ConfigError, Problem
from engine.rules.evaluator import Transition
from engine.rules.state import Event, fingerprint
from engine.runtime.gc_pacing import GcPacer
from engine.runtime.reload_thread import LoadTimeout, run_bounded

log = logging.getLogger("vigil")


class Reloading(Scheduling):
    """Configuration changes while the daemon runs."""

    loader: ConfigLoader
    config_path: str | None
    ready: bool
    systemd: Notifier
    gc: GcPacer
    last_reload: dict[str, Any]
    _api_app: Any
    _reload_lock: asyncio.Lock
    summary: Callable[[], str]  # the App's

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
            tell_systemd = self.ready
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
        now = self.wall()
        self.last_reload = {"ok": False, "at": now, "errors": errors}
        self.metrics.reload(ok=False, at=now)
        for e in errors[:20]:
            log.error("reload rejected: %s", e)
        rule = synthetic_rule(
            "config_invalid", {}, f"configuration rejected: {errors[0] if errors else ''}"
        )
        events: list[dict[str, Any]] = [
            {"event": "config_rejected", "by": by, "errors": errors[:500]}
        ]
        fp = fingerprint(rule.id, rule.labels)
        if self.state["alerts"].get(fp, {}).get("state") != "firing":
            events.append(self._synthetic_event("firing", rule, len(errors)))
        await self._emit(events, durable=True)
        return {"ok": False, "errors": errors}

    async def _swap(self, new: Config, by: str) -> None:
        old = self.config
        self.gc.thaw_soon()  # what the old configuration leaves in cycles
        snap = self.hub.snapshot(self.wall(), self.mono())
        # collectors: keep the unchanged ones (and their connections, primed counters)
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
                await c.aclose()
        for name, c in built.items():
            restore_state(name, c, self.state)
        self.collectors.update(built)
        # the window only grows, and unchanged files keep their group objects: with
        # 10,000 rules, only the changed groups' rules need a look
        same = {id(g) for g in old.groups}
        changed = [r for g in new.groups if id(g) not in same for r in g.rules]
        self.history.max_window = max(self.history.max_window, rules_max_window(changed))
        self._recorded |= windowed(changed)  # grows only, like the window
        rules = new.rules()
        before = dict(self.evaluator.alerts)
        old_rules = dict(self.evaluator.rules)
        resolved = self.evaluator.adopt(rules, snap)
        self._limit_alerts(new)
        # adopt() drops the alerts of removed rules that never fired without a word;
        # the durable state must hear that they ended, or the API lists them forever
        ended = {t.event.alert.fingerprint for t in resolved}
        for fp, alert in before.items():
            rule = old_rules.get(alert.rule_id)
            if (
                alert.state == "pending"
                and rule is not None
                and fp not in self.evaluator.alerts
                and fp not in ended
            ):
                gone = alert._replace(state="inactive")
                resolved.append(Transition(Event("inactive", gone), rule, snap.wall))
        self.config = new
        self.dispatcher.reconfigure(new)
        if self._api_app is not None:
            from engine.api.server import update_api_config

            update_api_config(self._api_app, new.api)  # tokens and limits; not the address
        if self.scheduler is not None:
            self._reschedule(old, new)
        now = self.wall()
        self.last_reload = {"ok": True, "at": now, "errors": []}
        self.metrics.reload(ok=True, at=now)
        events: list[dict[str, Any]] = [
            {"event": "config_loaded", "hash": new.config_hash, "by": by,
             "rules": len(rules), "channels": len(new.channels)}
        ]  # fmt: skip
        rule = synthetic_rule("config_invalid", {}, "")
        if self.state["alerts"].get(fingerprint(rule.id, rule.labels), {}).get("state") == "firing":
            events.append(self._synthetic_event("resolved", rule, None))
        if resolved:
            mono = self.mono()
            events.extend(t.as_journal(mono) for t in resolved)
        events.extend(self._problem_events(self.evaluator.health.take()))  # removed rules'
        await self._emit(events, durable=True)
        # new collectors get their first values before their rules' next tick
        fresh = [n for n in new_cc if n not in self.hub.values and n not in self.hub.down]
        await asyncio.gather(*(self.collect(n) for n in fresh))

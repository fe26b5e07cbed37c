"""Wiring and lifecycle of the daemon: start, evaluate on schedule, stop.

Data flows one way: collectors fill `CollectorHub`; each group tick takes a
Snapshot, the Evaluator steps alerts, transitions are journaled (durable) and
only then handed to the notifier. This module only wires; each step lives in
its own module.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from engine import __version__
from engine.collectors.base import Collector, create
from engine.config.build import ConfigLoader
from engine.config.model import Config, Rule, RuleGroup
from engine.errors import CollectorError, ConfigError
from engine.evaluator import Evaluator, Snapshot, Transition
from engine.history import History
from engine.journal import Journal
from engine.state import Alert
from engine.store import fold_event, initial_state

log = logging.getLogger("vigil")


class Notifier(Protocol):
    """Receives journaled events (already durable) for delivery."""

    async def submit(self, events: Sequence[dict[str, Any]]) -> None: ...

    async def aclose(self) -> None: ...


class StdoutNotifier:
    """Prints each alert transition as one line (the `log` output of `vigil run`)."""

    def __init__(self, stream: Any = None) -> None:
        self.stream = stream or sys.stdout

    async def submit(self, events: Sequence[dict[str, Any]]) -> None:
        for e in events:
            if "alert" not in e:
                continue
            labels = ",".join(f"{k}={v}" for k, v in sorted(e.get("labels", {}).items()))
            print(
                f"{e.get('ts', '')} {e['event']:<9} {e.get('severity', ''):<8} "
                f"{e.get('rule')} {{{labels}}} value={e.get('value')}",
                file=self.stream,
                flush=True,
            )

    async def aclose(self) -> None:
        return None


@dataclass
class CollectorHub:
    """The latest sample of every collector, and which are down."""

    values: dict[str, Mapping[str, Any]] = field(default_factory=dict)
    down: dict[str, str] = field(default_factory=dict)  # name -> error
    durations: dict[str, float] = field(default_factory=dict)

    def snapshot(self, wall: float, mono: float) -> Snapshot:
        # values are replaced whole per collection, so a shallow copy is a consistent view
        return Snapshot(dict(self.values), frozenset(self.down), wall, mono)


def _max_window(config: Config) -> float:
    windows = [
        w for r in config.rules() for e in (r.compiled, r.compiled_resolve) if e for w in e.windows
    ]
    return max(windows, default=0.0)


def collector_rule(name: str) -> Rule:
    """The synthetic rule behind `collector_down` alerts."""
    from engine.config.model import Source
    from engine.expr import compile_expr

    return Rule(
        id="collector_down",
        group="vigil",
        expr="True",
        compiled=compile_expr("True", names=()),
        severity="critical",
        labels={"collector": name},
        annotations={"summary": f"collector {name} is failing"},
        source=Source("<builtin>", 0, 0),
    )


class App:
    def __init__(
        self,
        config: Config,
        *,
        loader: ConfigLoader | None = None,
        notifier: Notifier | None = None,
        dry_run: bool = False,
        wall: Callable[[], float] = time.time,
        mono: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self.loader = loader or ConfigLoader()
        self.notifier: Notifier = notifier or StdoutNotifier()
        self.dry_run = dry_run
        self.wall = wall
        self.mono = mono
        self.hub = CollectorHub()
        self.history = History(max(_max_window(config), 60.0))
        self.evaluator = Evaluator(self.history)
        self.collectors: dict[str, Collector] = {}
        self.journal: Journal | None = None
        self.scheduler: AsyncIOScheduler | None = None
        self.state: dict[str, Any] = initial_state()
        self.stopping = asyncio.Event()
        self.group_durations: dict[str, float] = {}
        self.overruns: dict[str, int] = {}
        self._running_groups: set[str] = set()

    # -- start -----------------------------------------------------------------
    def open_journal(self) -> None:
        self.journal = Journal(self.config.data_dir, self.config.log, clock=self.wall)
        replay = self.journal.open()
        for w in replay.warnings:
            log.warning("journal: %s", w)
        state = replay.state or initial_state()
        for ev in replay.events:
            fold_event(state, ev)
        self.state = state
        self._restore_alerts()

    def _restore_alerts(self) -> None:
        """Rebuild live alerts from the durable state: firing alerts stay firing (and are
        not announced again), pending timers continue from their wall-clock start."""
        now_w, now_m = self.wall(), self.mono()
        rules = {r.id: r for r in self.config.rules()}
        for fp, a in self.state["alerts"].items():
            rule = rules.get(a.get("rule"))
            if rule is None:
                continue

            def mono_of(wall_t: Any) -> float | None:
                return None if wall_t is None else now_m - (now_w - float(wall_t))

            self.evaluator.alerts[fp] = Alert(
                fingerprint=fp,
                rule_id=rule.id,
                labels=dict(a.get("labels", {})),
                state=a["state"],
                value=a.get("value"),
                pending_since=mono_of(a.get("pending_since")),
                firing_since=mono_of(a.get("firing_since")) if a["state"] == "firing" else None,
                last_true=now_m,
                streak=1,  # a `consecutive` count starts over after a restart
                flapping=bool(a.get("flapping")),
                # a flapping alert stays flapping until its changes age out again
                changes=(now_m,) * rule.flapping.max_changes if a.get("flapping") else (),
            )
            self.evaluator.rules[rule.id] = rule

    def start_collectors(self) -> None:
        for cc in self.config.collectors:
            self.collectors[cc.name] = create(cc)

    async def collect(self, name: str) -> None:
        c = self.collectors[name]
        t0 = self.mono()
        try:
            sample = await asyncio.wait_for(c.collect(self.wall()), timeout=c.timeout + 1.0)
        except (CollectorError, TimeoutError, OSError) as e:
            await self._collector_failed(name, str(e) or type(e).__name__)
            return
        self.hub.durations[name] = self.mono() - t0
        self.hub.values[name] = sample
        self._record_history(name, sample)
        if name in self.hub.down:
            del self.hub.down[name]
            await self._emit([{"event": "collector_up", "collector": name}], durable=True)

    def _record_history(self, name: str, sample: Mapping[str, Any]) -> None:
        self.history.record_tree(name, self.wall(), sample)

    async def _collector_failed(self, name: str, error: str) -> None:
        self.hub.values.pop(name, None)
        first = name not in self.hub.down
        self.hub.down[name] = error
        if first:
            log.warning("collector %s failed: %s", name, error)
            rule = collector_rule(name)
            ev = {
                "event": "collector_down",
                "collector": name,
                "error": error[:500],
            }
            from engine.state import fingerprint

            alert_ev = {
                "event": "firing",
                "alert": fingerprint(rule.id, rule.labels),
                "rule": rule.id,
                "group": "vigil",
                "labels": dict(rule.labels),
                "severity": rule.severity,
                "value": error[:200],
            }
            await self._emit([ev, alert_ev], durable=True)

    # -- evaluation ---------------------------------------------------------------
    async def run_group(self, group: RuleGroup) -> None:
        if group.name in self._running_groups:
            # never stacked: the previous run of this group is still going
            self.overruns[group.name] = self.overruns.get(group.name, 0) + 1
            return
        self._running_groups.add(group.name)
        try:
            t0 = self.mono()
            snap = self.hub.snapshot(self.wall(), t0)
            transitions = self.evaluator.run_group(group, snap)
            self.group_durations[group.name] = self.mono() - t0
            if transitions:
                await self._journal_transitions(transitions)
        finally:
            self._running_groups.discard(group.name)

    async def _journal_transitions(self, transitions: list[Transition]) -> None:
        mono = self.mono()
        events = [t.as_journal(mono) for t in transitions]
        await self._emit(events, durable=True)

    async def _emit(self, events: list[dict[str, Any]], *, durable: bool) -> None:
        """Journal first (durable before anything is notified), then fold and notify."""
        if self.journal is not None:
            stamped = await self.journal.append(events, durable=durable)
        else:
            stamped = events
        for ev in stamped:
            fold_event(self.state, ev)
        if not self.dry_run:
            await self.notifier.submit(stamped)

    # -- lifecycle --------------------------------------------------------------------
    def schedule(self) -> AsyncIOScheduler:
        sched = AsyncIOScheduler()
        default = self.config.default_interval
        for name, c in self.collectors.items():
            sched.add_job(
                self.collect,
                "interval",
                args=[name],
                seconds=c.interval or default,
                id=f"collect:{name}",
                max_instances=1,
                coalesce=True,
            )
        for g in self.config.groups:
            # small jitter so that groups with the same interval do not all tick at once
            sched.add_job(
                self.run_group,
                "interval",
                args=[g],
                seconds=g.interval,
                jitter=min(1.0, g.interval * 0.05),
                id=f"group:{g.name}",
                max_instances=1,
                coalesce=True,
            )
        return sched

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stopping.set)
        self.start_collectors()
        await self._emit(
            [
                {"event": "started", "version": __version__, "pid": _pid()},
                {
                    "event": "config_loaded",
                    "hash": self.config.config_hash,
                    "rules": len(self.config.rules()),
                    "channels": len(self.config.channels),
                },
            ],
            durable=True,
        )
        # first values before the first evaluation, so rules do not start in no_data
        await asyncio.gather(*(self.collect(n) for n in self.collectors))
        self.scheduler = self.schedule()
        self.scheduler.start()
        log.info(
            "vigil %s ready: %d rules in %d groups",
            __version__,
            len(self.config.rules()),
            len(self.config.groups),
        )
        await self.stopping.wait()
        await self.shutdown()
        return 0

    async def shutdown(self) -> None:
        if self.scheduler is not None:
            self.scheduler.shutdown(wait=False)
        for c in self.collectors.values():
            await c.aclose()
        await self._emit([{"event": "stopped", "pid": _pid()}], durable=True)
        await self.notifier.aclose()
        if self.journal is not None:
            await self.journal.close()

    async def once(self) -> list[tuple[Rule, Mapping[str, str], Any, str]]:
        """One collection and one evaluation pass of every group (for --once):
        each alert instance with its observed value and its state."""
        self.start_collectors()
        await asyncio.gather(*(self.collect(n) for n in self.collectors))
        snap = self.hub.snapshot(self.wall(), self.mono())
        rows: list[tuple[Rule, Mapping[str, str], Any, str]] = []
        for g in self.config.groups:
            self.evaluator.run_group(g, snap)
            for rule in g.rules:
                for fp, labels, result in self.evaluator.instances(rule, snap):
                    alert = self.evaluator.alerts.get(fp)
                    state: str = alert.state if alert is not None else "inactive"
                    if result.kind == "no_data":
                        state += " (no data)"
                    elif result.kind == "error":
                        state += f" (error: {result.error})"
                    rows.append((rule, labels, result.value, state))
        for c in self.collectors.values():
            await c.aclose()
        return rows


def _pid() -> int:
    import os

    return os.getpid()


def load_or_fail(config_path: str | None) -> tuple[Config, ConfigLoader]:
    loader = ConfigLoader()
    result = loader.load(config_path)
    if result.config is None:
        raise ConfigError(result.problems)
    return result.config, loader

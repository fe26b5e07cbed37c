"""The daemon's composition: wiring and lifecycle (start, run, stop).

Data flows one way: collectors fill the `CollectorHub`; each group tick takes a
Snapshot, the Evaluator steps alerts, transitions are journaled (durable) and
only then handed to the Dispatcher. Commands from the API, signals and the file
watcher take the same path: an event, journaled, folded into the durable state,
then delivered. `App` builds the live state and runs the daemon; the steps are
its layers, each in its own module: evaluation (the event path), collecting,
schedule, reload.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import time
from collections import Counter
from collections.abc import Callable, Coroutine, Mapping
from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from engine import __version__
from engine.channels.base import Channel
from engine.collectors.base import Collector, state_events
from engine.config.build import ConfigLoader
from engine.config.model import Config, Rule
from engine.daemon.evaluation import synthetic_rule
from engine.daemon.hub import CollectorHub, max_window, windowed
from engine.daemon.metrics import Metrics
from engine.daemon.reload import Reloading
from engine.daemon.systemd import Notifier, watchdog_loop
from engine.delivery.dispatch import Dispatcher
from engine.errors import ConfigError, JournalError
from engine.expr.history import History
from engine.journal.journal import Journal
from engine.journal.snapshot_copy import StateCopy
from engine.journal.store import fold_event, initial_state
from engine.rules.alert_tally import Tally, tally
from engine.rules.alert_tally import steps as tally_steps
from engine.rules.evaluator import Evaluator
from engine.rules.rule_health import PROBLEMS
from engine.rules.state import Alert, fingerprint
from engine.runtime import slices
from engine.runtime.clock_steps import watch_steps
from engine.runtime.gc_pacing import GcPacer

log = logging.getLogger("vigil")

SNAPSHOT_EVERY_EVENTS = 20_000
SNAPSHOT_EVERY_SECONDS = 600.0
SHUTDOWN_DRAIN_SECONDS = 5.0


class App(Reloading):
    """The running daemon: owns the live state, wires the modules together and runs
    them (its layers: Evaluation < Collecting < Scheduling < Reloading)."""

    def __init__(
        self,
        config: Config,
        *,
        loader: ConfigLoader | None = None,
        config_path: str | None = None,
        dry_run: bool = False,
        channels: Mapping[str, Channel] | None = None,
        wall: Callable[[], float] = time.time,
        mono: Callable[[], float] = time.monotonic,
        sender_process: bool = False,
    ) -> None:
        self.config = config
        self.loader = loader or ConfigLoader()
        self.config_path = config_path if config_path is not None else config.config_file
        self.dry_run = dry_run
        self.wall = wall
        self.mono = mono
        self.hub = CollectorHub()
        self.history = History(max(max_window(config), 60.0))
        # a collection of 10,000 values costs ~200 ms to record: only what a window reads
        self._recorded = windowed(config.rules())
        self.evaluator = Evaluator(self.history)
        self._limit_alerts(config)
        self.collectors: dict[str, Collector] = {}
        self.journal: Journal | None = None
        self.scheduler: AsyncIOScheduler | None = None
        self.state: dict[str, Any] = initial_state()
        self.state_version = 0  # +1 per event folded into `state`
        self.alert_versions: dict[str, int] = {}  # fingerprint -> state_version of its change
        self.metrics = Metrics()
        self._tally_cache: tuple[int, Tally] | None = None  # (state_version, counts)
        self._copying: StateCopy | None = None  # a snapshot being taken
        self.gc = GcPacer(self._next_due)
        self.systemd = Notifier.from_env()
        self.dispatcher = Dispatcher(
            config, emit=self._journal_only, state=self.state, channels=channels,
            wall=wall, dry_run=dry_run, sender_process=sender_process,
        )  # fmt: skip
        self.stopping = asyncio.Event()
        self.ready = False
        self.started_at = wall()
        self.last_reload: dict[str, Any] = {"ok": True, "at": self.started_at, "errors": []}
        self.api_port: int | None = None
        self._api_app: Any = None
        self._running_groups: set[str] = set()
        self._overrun_logged: dict[str, float] = {}
        self._cut_logged: dict[str, str] = {}  # collector -> what was last cut (logged once)
        self._collecting = 0  # collections in flight (drained at shutdown)
        self._reload_lock = asyncio.Lock()
        self._inflight = 0  # appends not yet folded: no snapshot while > 0
        self._last_snapshot = (0, mono())
        self._tasks: list[asyncio.Task[Any]] = []
        self.exit_code = 0  # non-zero when the daemon stops on a fault (a failed fsync)

    # -- start -----------------------------------------------------------------------
    def open_journal(self) -> None:
        self.journal = Journal(
            self.config.data_dir, self.config.log, clock=self.wall,
            on_fsync=self.metrics.observe_fsync,
            on_degraded=self._journal_degraded, on_fatal=self._journal_fatal,
        )  # fmt: skip
        replay = self.journal.open()
        for w in replay.warnings:
            log.warning("journal: %s", w)
        state = replay.state or initial_state()
        where = f"the snapshot at seq {replay.snapshot_seq}"
        try:
            for k, v in initial_state().items():
                if k in state and type(state[k]) is not type(v):
                    raise TypeError(f"its {k!r} is not a {type(v).__name__}")
            for ev in replay.events:
                where = f"event seq {ev['seq']}"
                fold_event(state, ev)
            # the dispatcher holds the same dict: replace its content, not the object
            self.state.clear()
            self.state.update(state)
            self.state_version += 1
            self.alert_versions.clear()
            self._last_snapshot = (replay.snapshot_seq, self.mono())
            where = "the replayed state"
            self._restore_alerts()
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            # well-formed lines or a snapshot whose content no vigil wrote (a hand
            # edit): one line naming it, not a traceback
            self.journal.close_sync()
            raise JournalError(
                f"{self.config.data_dir}: cannot replay {where}: {type(e).__name__}: {e}; "
                "`vigil log verify` checks the journal"
            ) from None

    def _restore_alerts(self) -> None:
        """Rebuild live alerts from the durable state: firing alerts stay firing (and are
        not announced again), pending timers continue from their wall-clock start."""
        now_w, now_m = self.wall(), self.mono()
        rules = {r.id: r for r in self.config.rules()}

        def mono_of(wall_t: Any) -> float | None:
            return None if wall_t is None else now_m - (now_w - float(wall_t))

        for fp, a in self.state["alerts"].items():
            rule = rules.get(a.get("rule"))
            if rule is None or (
                rule.compiled_each is None and fingerprint(rule.id, rule.labels) != fp
            ):
                continue  # its rule (or this instance of it) is gone: _end_orphans()
            if rule.compiled_each is not None:
                # an element that vanished while we were down resolves on the next pass
                self.evaluator._each_fps.setdefault(rule.id, set()).add(fp)
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
                # a flapping alert stays flapping until its changes age out again
                changes=(now_m,) * rule.flapping.max_changes if a.get("flapping") else (),
                flapping=bool(a.get("flapping")),
                # still stale: its collector's first good read ends that (stale_end)
                stale_since=now_m if a.get("stale") else None,
            )
            self.evaluator.rules[rule.id] = rule
        # a rule's own problems still open: kept, not announced again; the rule's
        # next evaluations end them or not
        for a in self.state["alerts"].values():
            rid = (a.get("labels") or {}).get("rule_id")
            if a.get("rule") in PROBLEMS and rid in rules and rules[rid].enabled:
                self.evaluator.health.restore(a["rule"], rid, str(a.get("value") or ""))
        # collectors that were down when we stopped: their first good read says so
        for name in self.state["collectors_down"]:
            if any(c.name == name for c in self.config.collectors):
                self.hub.down[name] = "down before the restart"

    def _end_orphans(self) -> list[dict[str, Any]]:
        """At start: the durable alerts that nothing will ever step again (their rule
        was removed or changed while the daemon was down, the configuration that was
        invalid is valid now, a collector that is gone) end, as a reload would end them."""
        collectors = {c.name for c in self.config.collectors}
        out: list[dict[str, Any]] = []
        for fp, a in self.state["alerts"].items():
            rule_id = a.get("rule")
            if fp in self.evaluator.alerts:
                continue
            if rule_id == "collector_down" and a.get("labels", {}).get("collector") in collectors:
                continue  # the collector's next read resolves it, or it stays down
            if (
                rule_id in PROBLEMS
                and (
                    rule_id,
                    a.get("labels", {}).get("rule_id"),
                )
                in self.evaluator.health.active
            ):
                continue  # restored: the rule's next evaluation ends it or not
            out.append(
                {"event": "resolved" if a.get("state") == "firing" else "inactive",
                 "alert": fp, "rule": rule_id, "labels": dict(a.get("labels") or {}),
                 "severity": a.get("severity"), "value": None}
            )  # fmt: skip
        for name in list(self.state["collectors_down"]):
            if name not in collectors:
                out.append({"event": "collector_up", "collector": name})
        return out

    # -- journal faults (engine/journal/hold.py) -------------------------------------------
    @property
    def degraded(self) -> str | None:
        """Why the daemon is not fully ready though it runs (GET /ready says 503)."""
        j = self.journal
        return None if j is None or j.degraded is None else f"journal degraded: {j.degraded}"

    def _journal_degraded(self, reason: str | None) -> None:
        """The journal holds writes in memory (or caught up): say so as an alert, which
        the channels deliver, since alerting itself goes on from memory."""
        self.metrics.journal_degraded(reason is not None)
        self._spawn(self._announce_journal(reason))

    async def _announce_journal(self, reason: str | None) -> None:
        rule = synthetic_rule(
            "journal_degraded", {}, f"the journal cannot write, alerting from memory: {reason}"
        )
        fp = fingerprint(rule.id, rule.labels)
        firing = self.state["alerts"].get(fp, {}).get("state") == "firing"
        if reason is not None and not firing:
            await self._emit([self._synthetic_event("firing", rule, reason[:200])], durable=True)
        elif reason is None and firing:
            await self._emit([self._synthetic_event("resolved", rule, None)], durable=True)

    def _journal_fatal(self, reason: str) -> None:
        # exit non-zero: systemd restarts vigil, which replays what is on disk
        self.exit_code = 70  # EX_SOFTWARE
        self.stopping.set()

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.append(task)
        task.add_done_callback(self._tasks.remove)

    # -- snapshots ----------------------------------------------------------------------
    async def _snapshots(self) -> None:
        while not self.stopping.is_set():
            await asyncio.sleep(5.0)
            try:
                await self.maybe_snapshot()
            except (JournalError, OSError) as e:
                # the log is the truth and still written: the next try may succeed
                log.warning("snapshot not written: %s", e)

    async def maybe_snapshot(self, *, force: bool = False) -> None:
        j = self.journal
        if j is None or self._inflight or self._copying is not None or j.degraded:
            return  # appended events not folded yet (or not on disk): the state would lag
        seq, at = self._last_snapshot
        due = (
            j.last_seq - seq >= SNAPSHOT_EVERY_EVENTS or self.mono() - at >= SNAPSHOT_EVERY_SECONDS
        )
        if j.last_seq > seq and (force or due):
            last = j.last_seq
            self._last_snapshot = (last, self.mono())
            # copy-on-write, in slices: events folded meanwhile keep it at `last`
            self._copying = copy = StateCopy(self.state, last)
            try:
                slices.begin()
                for _ in copy.steps():
                    await slices.check()
            finally:
                self._copying = None
            await j.write_snapshot_encoded(copy.encoded(), last)
            j.compact()

    # -- lifecycle --------------------------------------------------------------------------
    def summary(self) -> str:
        t = self._tally_cache
        if t is None or t[0] != self.state_version:
            t = self._tally_cache = (self.state_version, tally(list(self.state["alerts"].values())))
        firing, pending = t[1].count("firing"), t[1].count("pending")
        down = f", {len(self.hub.down)} collectors down" if self.hub.down else ""
        bad = ", last reload rejected" if not self.last_reload["ok"] else ""
        kinds = Counter(p for p, _ in self.evaluator.health.active)
        problems = "".join(f", {n} {k}" for k, n in sorted(kinds.items()))
        return (
            f"{len(self.config.rules())} rules, {firing} firing, {pending} pending"
            f"{down}{problems}{bad}"
        )

    async def _tally(self) -> Tally:
        """The alert counts, computed in slices and kept until the state changes."""
        t = self._tally_cache
        if t is not None and t[0] == self.state_version:
            return t[1]
        version, out = self.state_version, Tally()
        slices.begin()
        for _ in tally_steps(list(self.state["alerts"].values()), out):
            await slices.check()
        self._tally_cache = (version, out)
        return out

    def request_reload(self, by: str = "SIGHUP") -> None:
        task = asyncio.get_running_loop().create_task(self.reload(by=by))
        self._tasks.append(task)
        task.add_done_callback(self._tasks.remove)

    async def run(self, *, serve_api: bool = True, watch: bool = True) -> int:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stopping.set)
        loop.add_signal_handler(signal.SIGHUP, self.request_reload)
        self._start_collectors(self.config)
        await self._emit(
            [
                {"event": "started", "version": __version__, "pid": os.getpid()},
                {"event": "config_loaded", "hash": self.config.config_hash,
                 "rules": len(self.config.rules()), "channels": len(self.config.channels)},
                *self._end_orphans(),
            ],
            durable=True,
        )  # fmt: skip
        await self.dispatcher.start(self.state)
        self.metrics.config_loaded(self.wall())
        # the file watcher first: the configuration was read before anything watched
        # it, so the watcher re-reads it once it watches (an edit made meanwhile, or
        # during a slow first collection, is not lost). It and the API server start
        # before the scheduler: starting them holds the loop for 100-200 ms, which
        # would make the first ticks late; the API also before the first
        # collection, which may probe it
        watcher = self._watch() if watch else None
        api_server = await self._serve_api() if serve_api else None
        # first values before the first evaluation, so rules do not start in no_data
        await asyncio.gather(*(self.collect(n) for n in self.collectors))
        self.gc.freeze_startup()  # a full collection: before the first tick too
        self.scheduler = self.schedule()
        self.scheduler.start()
        slices.watch_ticks(self._next_due)  # big notification steps go between ticks
        self.ready = True
        self.systemd.ready(self.summary())
        log.info(
            "vigil %s ready: %d rules in %d groups%s", __version__, len(self.config.rules()),
            len(self.config.groups), f", API on port {self.api_port}" if self.api_port else "",
        )  # fmt: skip
        background = [
            asyncio.create_task(watchdog_loop(self.systemd, self.stopping), name="watchdog"),
            asyncio.create_task(self._snapshots(), name="snapshots"),
            asyncio.create_task(self._status_loop(), name="status"),
            asyncio.create_task(watch_steps(self._clock_stepped), name="clock-steps"),
            asyncio.create_task(self.gc.run(), name="gc-pacing"),
        ]
        await self.stopping.wait()
        self.ready = False
        slices.watch_ticks(None)
        self.systemd.stopping()
        for t in background:
            t.cancel()
        await asyncio.gather(*background, return_exceptions=True)
        if watcher is not None:
            await watcher.stop()
        if api_server is not None:
            from engine.api.server import stop

            await stop(*api_server)
        await self.shutdown()
        return self.exit_code

    async def _status_loop(self) -> None:
        last = ""
        while True:
            await asyncio.sleep(5.0)
            counts = await self._tally()
            text = self.summary()
            if text != last:
                self.systemd.status(text)
                last = text
            self.metrics.set_alert_counts(counts.by_state_severity)
            self.metrics.set_rules(counts.rule_states(self.config.rules()))
            self.metrics.sync_channels(self.dispatcher.status())

    async def _serve_api(self) -> Any:
        from engine.api.server import bound_address, create_app, serve
        from engine.daemon.control import Control

        api = self.config.api
        app = create_app(Control(self, self), api, registry=self.metrics.registry)
        try:
            server, task = await serve(app, api.host, api.port)
        except OSError as e:
            log.error("API not started: cannot listen on %s:%s: %s", api.host, api.port, e)
            return None
        self.api_port = bound_address(server)[1]
        self._api_app = app
        return server, task

    def _watch(self) -> Any:
        from engine.daemon.watch import ConfigWatcher

        def paths() -> list[str]:  # as configured now: a reload may change them
            found = [*self.config.rules_paths, *self.config.channels_paths]
            return [*found, self.config_path] if self.config_path else found

        watcher: ConfigWatcher | None = None

        async def changed() -> None:
            assert watcher is not None
            await self.reload(by="file change", if_changed=True, settled=watcher.settled)

        try:
            watcher = ConfigWatcher(paths, changed, asyncio.get_running_loop())
            watcher.start()
        except OSError as e:  # inotify limits, unreadable folders
            log.warning("not watching configuration files: %s", e)
            return None
        return watcher

    async def shutdown(self) -> None:
        if self.scheduler is not None:
            # shutdown() cancels the jobs in flight, which APScheduler logs as a job
            # failure with a traceback: let them finish first (bounded: collectors
            # have their own timeouts, and a stop must not hang)
            self.scheduler.pause()
            # a job handed to the loop just before the pause counts itself in
            # _collecting / _running_groups only at its first step: let it take it
            for _ in range(2):
                await asyncio.sleep(0)
            deadline = self.mono() + SHUTDOWN_DRAIN_SECONDS
            while (self._running_groups or self._collecting) and self.mono() < deadline:
                await asyncio.sleep(0.01)
            self.scheduler.shutdown(wait=False)
        for t in list(self._tasks):
            t.cancel()
        await self.dispatcher.aclose()
        saved: list[dict[str, Any]] = []
        for name, c in self.collectors.items():
            await c.aclose()
            saved += state_events(name, c)  # e.g. logtail's offsets since its last record
        try:
            await self._emit([*saved, {"event": "stopped", "pid": os.getpid()}], durable=True)
            await self.maybe_snapshot(force=True)
        except (JournalError, OSError) as e:
            log.error("stopping without a final snapshot: %s", e)
        if self.journal is not None:
            await self.journal.close()

    async def once(self) -> list[tuple[Rule, Mapping[str, str], Any, str]]:
        """One collection and one evaluation pass of every group (for --once):
        each alert instance with its observed value and its state."""
        self._start_collectors(self.config)
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
                    elif result.kind == "stale":
                        state += " (stale: collector down)"
                    rows.append((rule, labels, result.value, state))
        for c in self.collectors.values():
            await c.aclose()
        return rows


def load_or_fail(config_path: str | None) -> tuple[Config, ConfigLoader]:
    loader = ConfigLoader()
    result = loader.load(config_path)
    if result.config is None:
        raise ConfigError(result.problems)
    return result.config, loader

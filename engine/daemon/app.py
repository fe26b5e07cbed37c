"""The daemon's composition root: it builds the parts, wires them, and runs them.

Data flows one way: `Collecting` fills the `CollectorHub`; each group tick of
`Evaluation` takes a Snapshot and steps the alerts; the transitions take the
`EventPath`: journaled in the `DurableState` (durable), folded, and only then
handed to the `Dispatcher`. The `Scheduler` owns the timers, the `Reloader` the
running configuration and its swaps, `Status` the summary. Commands from the
API, signals and the file watcher take the same event path. `App` holds the
parts and their lifecycle (start, run, stop); the API sees it through two small
protocols (control.py's LiveState and DaemonInfo).
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import time
from collections.abc import Callable, Coroutine, Mapping, Sequence
from typing import Any

from engine import __version__
from engine.channels.base import Channel
from engine.collectors.base import Collector
from engine.common.records import JournalEvent
from engine.config.build import ConfigLoader
from engine.config.model import Config, Rule
from engine.daemon.clock import Clock
from engine.daemon.collecting import Collecting
from engine.daemon.durable import DurableState
from engine.daemon.emit import EventPath, synthetic_rule
from engine.daemon.evaluation import Evaluation
from engine.daemon.hub import CollectorHub, max_window
from engine.daemon.metrics import Metrics
from engine.daemon.reload import Reloader
from engine.daemon.schedule import Scheduler
from engine.daemon.status import Status
from engine.daemon.systemd import Notifier, watchdog_loop
from engine.delivery.dispatch import Dispatcher
from engine.errors import ConfigError, JournalError
from engine.expr.history import History
from engine.journal.history import HistoryIndex
from engine.journal.journal import Journal
from engine.rules.evaluator import Evaluator
from engine.runtime.budget import Budget
from engine.runtime.clock_steps import watch_steps
from engine.runtime.fanout import Fanout
from engine.runtime.gc_pacing import GcPacer

log = logging.getLogger("vigil")


class App:
    """The running daemon: owns its parts (built and wired here, each told in its
    constructor what it uses), the API server, the background tasks, and whether
    it is ready or stopping. The rest it asks the parts."""

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
        self.clock = clock = Clock(wall, mono)
        # the loop's time for long work, shared by all of it (engine/runtime/budget.py)
        self.budget = budget = Budget()
        self.metrics = Metrics()
        self.systemd = Notifier.from_env()
        self.hub = CollectorHub()
        self.history = History(max(max_window(config), 60.0))
        self.durable = DurableState(self.metrics, clock, budget)
        self.dispatcher = Dispatcher(
            config, emit=self.durable.record, state=self.durable.state, channels=channels,
            wall=wall, dry_run=dry_run, sender_process=sender_process, budget=budget,
        )  # fmt: skip
        self.events = EventPath(self.durable, self.dispatcher, clock, budget)
        self.collecting = Collecting(
            config, self.hub, self.history, self.events, self.metrics, clock
        )
        self.evaluation = Evaluation(
            config, self.hub, self.history, self.events, self.metrics, clock, budget
        )
        self.scheduler = Scheduler(self.collecting, self.evaluation, self.metrics, clock)
        self.gc = GcPacer(self.scheduler.next_due)
        self.reloader = Reloader(
            config, loader or ConfigLoader(),
            config_path if config_path is not None else config.config_file,
            events=self.events, collecting=self.collecting, evaluation=self.evaluation,
            scheduler=self.scheduler, on_swap=self._swapped, metrics=self.metrics,
            gc=self.gc, systemd=self.systemd, ready=lambda: self.ready,
            summary=self.summary, clock=clock,
        )  # fmt: skip
        self.status = Status(
            self.durable, self.hub, self.evaluation.evaluator.health, self.dispatcher,
            self.metrics, self.systemd,
            config=lambda: self.reloader.config, last_reload=lambda: self.reloader.last_reload,
            budget=budget,
        )  # fmt: skip
        self.stopping = asyncio.Event()
        self.ready = False
        self.started_at = wall()
        self.api_port: int | None = None
        self._api_app: Any = None
        self._tasks: list[asyncio.Task[Any]] = []
        # follows the journal in its own thread once the daemon runs (engine/journal/history.py)
        self.history_index: HistoryIndex | None = None
        self.exit_code = 0  # non-zero when the daemon stops on a fault (a failed fsync)

    # -- what the API reads (control.py's LiveState and DaemonInfo) ------------------------
    @property
    def wall(self) -> Callable[[], float]:
        return self.clock.wall

    @property
    def config(self) -> Config:
        return self.reloader.config

    @property
    def state(self) -> dict[str, Any]:
        return self.durable.state

    @property
    def state_version(self) -> int:
        return self.durable.state_version

    @property
    def stream(self) -> Fanout:
        return self.durable.fanout

    @property
    def alert_versions(self) -> dict[str, int]:
        return self.durable.alert_versions

    @property
    def journal(self) -> Journal | None:
        return self.durable.journal

    @property
    def collectors(self) -> dict[str, Collector]:
        return self.collecting.collectors

    @property
    def evaluator(self) -> Evaluator:
        return self.evaluation.evaluator

    @property
    def last_reload(self) -> dict[str, Any]:
        return self.reloader.last_reload

    @property
    def degraded(self) -> str | None:
        """Why the daemon is not fully ready though it runs (GET /ready says 503)."""
        j = self.journal
        return None if j is None or j.degraded is None else f"journal degraded: {j.degraded}"

    def summary(self) -> str:
        return self.status.summary()

    async def emit(self, events: Sequence[JournalEvent]) -> list[dict[str, Any]]:
        """Journal commands (acks, silences, audits) durably, then deliver."""
        return await self.events.emit(events, durable=True)

    async def collect(self, name: str) -> None:
        await self.collecting.collect(name)

    async def reload(self, *, by: str = "signal") -> dict[str, Any]:
        return await self.reloader.reload(by=by)

    def _swapped(self, new: Config) -> None:
        """A reload swapped the configuration in: the parts outside the loop's own."""
        self.dispatcher.reconfigure(new)
        if self._api_app is not None:
            from engine.api.server import update_api_config

            update_api_config(self._api_app, new.api)  # tokens and limits; not the address

    # -- start -----------------------------------------------------------------------
    def open_journal(self) -> None:
        config = self.config
        journal = Journal(
            config.data_dir, config.log, clock=self.wall,
            on_fsync=self.metrics.observe_fsync,
            on_degraded=self._journal_degraded, on_fatal=self._journal_fatal,
        )  # fmt: skip

        def restore() -> None:
            self.evaluation.restore(self.state)
            self.collecting.restore(self.state, config)

        self.durable.open(journal, config.data_dir, restore)

    # -- journal faults (engine/journal/hold.py) -------------------------------------------
    def _journal_degraded(self, reason: str | None) -> None:
        """The journal holds writes in memory (or caught up): say so as an alert, which
        the channels deliver, since alerting itself goes on from memory."""
        self.metrics.journal_degraded(reason is not None)
        self._spawn(self._announce_journal(reason))

    async def _announce_journal(self, reason: str | None) -> None:
        rule = synthetic_rule(
            "journal_degraded", {}, f"the journal cannot write, alerting from memory: {reason}"
        )
        firing = self.events.firing(rule)
        if reason is not None and not firing:
            await self.events.emit([self.events.synthetic("firing", rule, reason[:200])])
        elif reason is None and firing:
            await self.events.emit([self.events.synthetic("resolved", rule, None)])

    def _journal_fatal(self, reason: str) -> None:
        # exit non-zero: systemd restarts vigil, which replays what is on disk
        self.exit_code = 70  # EX_SOFTWARE
        self.stopping.set()

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.append(task)
        task.add_done_callback(self._tasks.remove)

    # -- lifecycle --------------------------------------------------------------------------
    def request_reload(self, by: str = "SIGHUP") -> None:
        self._spawn(self.reload(by=by))

    def _clock_stepped(self, step: float) -> None:
        log.warning(
            "the wall clock stepped %+.1f s; runs and notification timers keep their intervals",
            step,
        )
        self.scheduler.clock_stepped(step)
        self.dispatcher.clock_stepped(step)

    async def run(self, *, serve_api: bool = True, watch: bool = True) -> int:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stopping.set)
        loop.add_signal_handler(signal.SIGHUP, self.request_reload)
        config = self.config
        self.collecting.start(config)
        await self.events.emit(
            [
                {"event": "started", "version": __version__, "pid": os.getpid()},
                {"event": "config_loaded", "hash": config.config_hash,
                 "rules": len(config.rules()), "channels": len(config.channels)},
                *self.evaluation.orphans(self.state),
                *self.collecting.orphans(self.state, config),
            ],
        )  # fmt: skip
        await self.dispatcher.start(self.state)
        if self.journal is not None:
            self.history_index = HistoryIndex(config.data_dir)
            self.history_index.start()
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
        await self.collecting.collect_all()
        self.gc.freeze_startup()  # a full collection: before the first tick too
        from engine.report.deliver import ReportRunner  # its modules load only here

        self.scheduler.reports = ReportRunner(
            self.config, self.dispatcher.send_report, self.emit, self.wall,
            self.state.get("reports"),
        )  # fmt: skip
        self.scheduler.start(self.config)
        self.budget.next_tick = self.scheduler.next_due  # big notification steps go between ticks
        self.ready = True
        self.systemd.ready(self.summary())
        log.info(
            "vigil %s ready: %d rules in %d groups%s", __version__, len(self.config.rules()),
            len(self.config.groups), f", API on port {self.api_port}" if self.api_port else "",
        )  # fmt: skip
        background = [
            asyncio.create_task(watchdog_loop(self.systemd, self.stopping), name="watchdog"),
            asyncio.create_task(self.durable.snapshots(self.stopping), name="snapshots"),
            asyncio.create_task(self.status.loop(), name="status"),
            asyncio.create_task(watch_steps(self._clock_stepped), name="clock-steps"),
            asyncio.create_task(self.gc.run(), name="gc-pacing"),
        ]
        await self.stopping.wait()
        self.ready = False
        self.budget.next_tick = None
        self.systemd.stopping()
        for t in background:
            t.cancel()
        await asyncio.gather(*background, return_exceptions=True)
        if watcher is not None:
            await watcher.stop()
        if api_server is not None:
            from engine.api.server import stop

            self.durable.fanout.close()  # live streams end now, not at the server's timeout
            await stop(*api_server)
        if self.history_index is not None:
            await asyncio.to_thread(self.history_index.stop)
        await self.shutdown()
        return self.exit_code

    async def _serve_api(self) -> Any:
        from engine.api.server import bound_address, create_app, serve
        from engine.daemon.control import Control

        api = self.config.api
        app = create_app(
            Control(self, self), api, registry=self.metrics.registry, budget=self.budget
        )
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
            path = self.reloader.config_path
            return [*found, path] if path else found

        watcher: ConfigWatcher | None = None

        async def changed() -> None:
            assert watcher is not None
            await self.reloader.reload(by="file change", if_changed=True, settled=watcher.settled)

        try:
            watcher = ConfigWatcher(paths, changed, asyncio.get_running_loop())
            watcher.start()
        except OSError as e:  # inotify limits, unreadable folders
            log.warning("not watching configuration files: %s", e)
            return None
        return watcher

    async def shutdown(self) -> None:
        await self.scheduler.stop()
        for t in list(self._tasks):
            t.cancel()
        await self.dispatcher.aclose()
        saved = await self.collecting.aclose()  # e.g. logtail's offsets since its last record
        try:
            await self.events.emit([*saved, {"event": "stopped", "pid": os.getpid()}])
            await self.durable.maybe_snapshot(force=True)
        except (JournalError, OSError) as e:
            log.error("stopping without a final snapshot: %s", e)
        await self.durable.close()

    async def once(self) -> list[tuple[Rule, Mapping[str, str], Any, str]]:
        """One collection and one evaluation pass of every group (for --once):
        each alert instance with its observed value and its state."""
        self.collecting.start(self.config)
        await self.collecting.collect_all()
        rows = self.evaluation.once()
        await self.collecting.aclose()
        return rows


def load_or_fail(config_path: str | None) -> tuple[Config, ConfigLoader]:
    loader = ConfigLoader()
    result = loader.load(config_path)
    if result.config is None:
        raise ConfigError(result.problems)
    return result.config, loader

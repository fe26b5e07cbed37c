"""Wiring and lifecycle of the daemon: start, evaluate on schedule, reload, stop.

Data flows one way: collectors fill the `CollectorHub`; each group tick takes a
Snapshot, the Evaluator steps alerts, transitions are journaled (durable) and
only then handed to the Dispatcher. Commands from the API, signals and the file
watcher take the same path: an event, journaled, folded into the durable state,
then delivered. This module only wires; each step lives in its own module.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import time
import zlib
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from engine import __version__
from engine.channels.base import Channel
from engine.collectors.base import Collector, create
from engine.common.boundary import clean
from engine.config.build import ConfigLoader
from engine.config.catalog import metric_names
from engine.config.model import CollectorConfig, Config, Rule, RuleGroup, Severity, Source
from engine.daemon.metrics import Metrics
from engine.daemon.systemd import Notifier, watchdog_loop
from engine.delivery.dispatch import Dispatcher
from engine.errors import CollectorError, ConfigError, JournalError, Problem
from engine.expr.compiler import compile_expr
from engine.expr.history import History
from engine.journal.journal import Journal
from engine.journal.snapshot_copy import StateCopy
from engine.journal.store import fold_event, initial_state
from engine.rules.alert_events import ALERT_EVENTS, journal_events
from engine.rules.alert_tally import Tally, tally
from engine.rules.alert_tally import steps as tally_steps
from engine.rules.evaluator import Evaluator, Snapshot, Transition
from engine.rules.rule_health import PROBLEMS, Change
from engine.rules.state import Alert, Event, fingerprint
from engine.runtime import slices
from engine.runtime.clock_steps import replan, watch_steps
from engine.runtime.gc_pacing import GcPacer
from engine.runtime.reload_thread import LoadTimeout, run_bounded

log = logging.getLogger("vigil")

SNAPSHOT_EVERY_EVENTS = 20_000
SNAPSHOT_EVERY_SECONDS = 600.0
SHUTDOWN_DRAIN_SECONDS = 5.0
_ALERT_EVENTS = ALERT_EVENTS


@dataclass
class CollectorHub:
    """The latest sample of every collector, and which are down."""

    values: dict[str, Mapping[str, Any]] = field(default_factory=dict)
    down: dict[str, str] = field(default_factory=dict)  # name -> error

    def snapshot(self, wall: float, mono: float) -> Snapshot:
        # values are replaced whole per collection, so a shallow copy is a consistent view
        return Snapshot(dict(self.values), frozenset(self.down), wall, mono)


def max_window(config: Config) -> float:
    return _max_window(config.rules())


def _max_window(rules: list[Rule]) -> float:
    exprs = [e for r in rules for e in (r.compiled, r.compiled_resolve) if e]
    return max((w for e in exprs for w in e.windows), default=0.0)


def _windowed(rules: list[Rule]) -> set[str]:
    """The collectors whose values a window function may read (avg_over, rate ...):
    only their samples need a history. Every name a rule reads counts once any
    of its expressions has a window."""
    out: set[str] = set()
    for r in rules:
        exprs = [e for e in (r.compiled, r.compiled_resolve, r.compiled_each) if e]
        if any(e.windows for e in exprs):
            out.update(n for e in exprs for n in e.names)
    out.discard("it")  # an element's samples are recorded by the evaluator
    return out


def runtime_named(config: Config) -> frozenset[str]:
    """The collectors whose metric names only collecting can tell."""
    return frozenset(c.name for c in config.collectors if metric_names(c) is None)


def synthetic_rule(
    rule_id: str, labels: Mapping[str, str], summary: str, severity: Severity = "critical"
) -> Rule:
    """The rule behind the daemon's own alerts (collector_down, config_invalid,
    and a rule's own problems: rule_error, rule_no_data, cardinality_exceeded)."""
    return Rule(
        id=rule_id,
        group="vigil",
        expr="True",
        compiled=compile_expr("True", names=()),
        severity=severity,
        labels=dict(labels),
        annotations={"summary": summary},
        source=Source("<builtin>", 0, 0),
    )


class App:
    """The running daemon: owns live state and wires the modules together."""

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
        self._recorded = _windowed(config.rules())
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

    def _limit_alerts(self, config: Config) -> None:
        """What the evaluator needs of the configuration besides the rules."""
        ev = self.evaluator
        ev.runtime_named = runtime_named(config)
        ev.max_alerts_per_rule = config.max_alerts_per_rule
        ev.max_alerts_total = config.max_alerts_total

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

    # -- collectors ----------------------------------------------------------------------
    def _start_collectors(self, config: Config) -> None:
        for cc in config.collectors:
            self.collectors[cc.name] = create(cc)

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

    def _problem_events(self, changes: list[Change]) -> list[dict[str, Any]]:
        """One alert per rule and problem (engine/rules/rule_health.py): firing when it
        starts, resolved when it ends; the rule's own severity, since a critical
        rule that cannot be evaluated is a critical blind spot."""
        events: list[dict[str, Any]] = []
        for c in changes:
            rule = synthetic_rule(
                c.problem, {"rule_id": c.rule}, f"rule {c.rule}: {c.message or c.problem}",
                severity=c.severity,
            )  # fmt: skip
            if c.message is not None:
                events.append(self._synthetic_event("firing", rule, c.message[:200]))
            elif self.state["alerts"].get(fingerprint(rule.id, rule.labels)) is not None:
                events.append(self._synthetic_event("resolved", rule, None))
        return events

    def _synthetic_event(self, kind: str, rule: Rule, value: Any) -> dict[str, Any]:
        now = self.wall()
        return {
            "event": kind,
            "alert": fingerprint(rule.id, rule.labels),
            "rule": rule.id,
            "group": rule.group,
            "labels": dict(rule.labels),
            "severity": rule.severity,
            "value": value,
            "annotations": dict(rule.annotations),
            "pending_since": now,
            "firing_since": now,
        }

    # -- evaluation ---------------------------------------------------------------------
    async def run_group(self, group: RuleGroup) -> None:
        if group.name in self._running_groups:
            # never stacked: the previous run of this group is still going
            self.metrics.evaluation_overrun(group.name)
            log.warning("group %s overran its interval of %ss", group.name, group.interval)
            return
        self._running_groups.add(group.name)
        try:
            t0 = self.mono()
            snap = self.hub.snapshot(self.wall(), t0)
            transitions: list[Transition] = []
            config = self.config
            took, t = 0.0, time.perf_counter()  # evaluation time, without the pauses
            slices.begin()
            for _ in self.evaluator.steps(group, snap, transitions):
                if slices.spent():
                    took += time.perf_counter() - t
                    await slices.pause()
                    t = time.perf_counter()
                    if self.config is not config:
                        break  # a reload swapped the rules: the rest is theirs now
            self.metrics.observe_evaluation(group.name, took + time.perf_counter() - t)
            if transitions:
                await self._journal_transitions(transitions)
            for rid in self.evaluator.health.take_failed():
                self.metrics.rule_failure(rid)
            problems = self._problem_events(self.evaluator.health.take())
            if problems:
                await self._emit(problems, durable=True)
        finally:
            self._running_groups.discard(group.name)

    async def _journal_transitions(self, transitions: list[Transition]) -> None:
        """Journal and notify a tick's transitions (the records `vigil test` predicts,
        engine/rules/alert_events.py). A burst goes in slices: each is rendered and
        queued for the journal (in order) while earlier ones are being written;
        each is folded and notified as soon as it is durable. So a thousand
        alerts firing at once never hold the loop for long, and the first of
        them are on their way before the last are rendered."""
        now = self.mono()
        written: deque[tuple[list[dict[str, Any]], asyncio.Future[None] | None]] = deque()
        events: list[dict[str, Any]] = []
        done = 0
        self._inflight += 1
        self.dispatcher.hold()
        try:
            while done < len(transitions) or written:
                # what is durable first (folded and on its way to the channels),
                # then the next slice rendered and stamped, in what is left of
                # the time slice
                while written and (written[0][1] is None or written[0][1].done()):
                    stamped, fut = written.popleft()
                    if fut is not None:
                        fut.result()  # raises what the journal raised
                    self._fold(stamped)
                    await self.dispatcher.submit(stamped)
                    if slices.spent():
                        break
                batch: list[dict[str, Any]] = []
                while done < len(transitions) and not slices.spent():
                    batch += journal_events(transitions[done : done + 8], now)
                    done += 8
                if batch:
                    events += batch
                    written.append(self._submit(batch, durable=True))
                if done < len(transitions) or (written and written[0][1] is None):
                    await slices.pause()
                elif written:
                    fut = written[0][1]
                    assert fut is not None
                    await asyncio.wait([fut])
        finally:
            self._inflight -= 1
            self.dispatcher.release()
        self._log_transitions(events)

    def _submit(
        self, events: list[dict[str, Any]], *, durable: bool
    ) -> tuple[list[dict[str, Any]], asyncio.Future[None] | None]:
        if self.journal is None:
            return [dict(e) for e in events], None
        return self.journal.submit(events, durable=durable)

    async def _journal_only(
        self, events: list[dict[str, Any]], durable: bool
    ) -> list[dict[str, Any]]:
        """Journal and fold, without notifying (the dispatcher's own outcomes)."""
        self._inflight += 1
        try:
            stamped, fut = self._submit(events, durable=durable)
            if fut is not None:
                await fut
            self._fold(stamped)
            return stamped
        finally:
            self._inflight -= 1

    def _fold(self, stamped: list[dict[str, Any]]) -> None:
        copying = self._copying
        for ev in stamped:
            if copying is not None:
                copying.before_fold(ev)
            fold_event(self.state, ev)
            self._changed(ev)
            if ev["event"] == "notified":
                self.metrics.notification(ev.get("channel", ""), ok=True)
            elif ev["event"] == "notify_failed":
                self.metrics.notification(ev.get("channel", ""), ok=False)

    def _changed(self, ev: Mapping[str, Any]) -> None:
        """Versions for readers that cache what they derive from the state (the API's
        alert views): the state's, and per alert the state version of its last change."""
        self.state_version += 1
        alerts = self.state["alerts"]
        touched = [ev["alert"]] if isinstance(ev.get("alert"), str) else []
        touched.extend(fp for fp in ev.get("alerts") or () if isinstance(fp, str))
        for fp in touched:
            if fp in alerts:
                self.alert_versions[fp] = self.state_version
            else:
                self.alert_versions.pop(fp, None)

    async def _emit(
        self, events: list[dict[str, Any]], *, durable: bool, quiet: bool = False
    ) -> list[dict[str, Any]]:
        """Journal first (durable before anything is notified), then fold and notify."""
        stamped = await self._journal_only(events, durable)
        if not quiet:
            self._log_transitions(stamped)
        await self.dispatcher.submit(stamped)
        return stamped

    @staticmethod
    def _log_transitions(events: list[dict[str, Any]]) -> None:
        alert_events = [ev for ev in events if ev["event"] in _ALERT_EVENTS]
        if len(alert_events) <= 20:
            for ev in alert_events:
                labels = ",".join(f"{k}={v}" for k, v in sorted(ev.get("labels", {}).items()))
                log.info(
                    "%s %s {%s} value=%s", ev["event"], ev.get("rule"), labels, ev.get("value")
                )
        else:  # a burst: one line, not a thousand (the journal has every event)
            kinds = Counter(ev["event"] for ev in alert_events)
            rules = Counter(str(ev.get("rule")) for ev in alert_events).most_common(3)
            log.info(
                "%d transitions (%s), most from %s", len(alert_events),
                ", ".join(f"{n} {k}" for k, n in sorted(kinds.items())),
                ", ".join(f"{r} ({n})" for r, n in rules),
            )  # fmt: skip

    async def emit(self, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Journal commands (acks, silences, audits) durably, then deliver."""
        return await self._emit(events, durable=True)

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

    # -- reload ------------------------------------------------------------------------
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
        built = _build_collectors(
            [cc for n, cc in new_cc.items() if n not in self.collectors or old_cc.get(n) != cc]
        )  # all or nothing, before anything of the old configuration is let go
        for name in list(self.collectors):
            if old_cc.get(name) != new_cc.get(name):
                c = self.collectors.pop(name)
                self.hub.values.pop(name, None)
                self.hub.down.pop(name, None)
                await c.aclose()
        self.collectors.update(built)
        # the window only grows, and unchanged files keep their group objects: with
        # 10,000 rules, only the changed groups' rules need a look
        same = {id(g) for g in old.groups}
        changed = [r for g in new.groups if id(g) not in same for r in g.rules]
        self.history.max_window = max(self.history.max_window, _max_window(changed))
        self._recorded |= _windowed(changed)  # grows only, like the window
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

    def _reschedule(self, old: Config, new: Config) -> None:
        assert self.scheduler is not None
        sched = self.scheduler
        old_groups = {g.name: g for g in old.groups}
        new_groups = {g.name: g for g in new.groups}
        for name, g in old_groups.items():
            if new_groups.get(name) != g:
                sched.remove_job(f"group:{name}")
                self.metrics.forget_group(name)
        for name, g in new_groups.items():
            if old_groups.get(name) != g:
                self._add_group_job(sched, g, spread=False)
        old_cc = {c.name: c for c in old.collectors}
        for c in old.collectors:
            if c not in new.collectors:
                sched.remove_job(f"collect:{c.name}")
        for c in new.collectors:
            if old_cc.get(c.name) != c:
                self._add_collector_job(sched, c.name)

    # -- scheduling ----------------------------------------------------------------------
    def _add_collector_job(self, sched: AsyncIOScheduler, name: str) -> None:
        c = self.collectors[name]
        sched.add_job(
            self.collect, "interval", args=[name], seconds=c.interval or self.config.default_interval,
            id=f"collect:{name}", max_instances=1, coalesce=True, replace_existing=True,
        )  # fmt: skip

    def _add_group_job(self, sched: AsyncIOScheduler, g: RuleGroup, *, spread: bool) -> None:
        # The first evaluation is now, not an interval later: a group added or changed
        # by a reload applies its rules at once, and after a start the replayed alerts
        # are judged on fresh values. `spread` (at start) staggers the groups' first
        # runs over up to a second, and jitter keeps groups with the same interval
        # from ticking all at once later on.
        offset = zlib.crc32(g.name.encode()) % 1000 / 1000 * min(1.0, g.interval) if spread else 0
        sched.add_job(
            self.run_group, "interval", args=[g], seconds=g.interval,
            jitter=min(1.0, g.interval * 0.05), id=f"group:{g.name}",
            max_instances=1, coalesce=True, replace_existing=True,
            next_run_time=datetime.now(UTC) + timedelta(seconds=offset),
        )  # fmt: skip

    def schedule(self) -> AsyncIOScheduler:
        from apscheduler.events import EVENT_JOB_MAX_INSTANCES, JobSubmissionEvent

        sched = AsyncIOScheduler()

        def skipped(event: JobSubmissionEvent) -> None:
            # APScheduler skips a run while the previous one still goes (max_instances=1):
            # an overrun, counted and reported at most once a minute per job
            job = str(event.job_id)
            if job.startswith("group:"):
                self.metrics.evaluation_overrun(job[6:])
            now = self.mono()
            if now - self._overrun_logged.get(job, -60.0) >= 60.0:
                self._overrun_logged[job] = now
                log.warning("%s overran its interval; the run that was due is skipped", job)

        sched.add_listener(skipped, EVENT_JOB_MAX_INSTANCES)
        for name in self.collectors:
            self._add_collector_job(sched, name)
        for g in self.config.groups:
            self._add_group_job(sched, g, spread=True)
        return sched

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

    def _clock_stepped(self, step: float) -> None:
        log.warning(
            "the wall clock stepped %+.1f s; runs and notification timers keep their intervals",
            step,
        )
        if self.scheduler is not None:
            replan(self.scheduler, step)
        self.dispatcher.clock_stepped(step)

    def _next_due(self) -> float | None:
        """Seconds until the scheduler's next job (the gap the garbage collector and
        big notification steps wait for)."""
        if self.scheduler is None:
            return None
        times = [j.next_run_time for j in self.scheduler.get_jobs() if j.next_run_time]
        return min(times).timestamp() - self.wall() if times else None

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
        for c in self.collectors.values():
            await c.aclose()
        try:
            await self._emit([{"event": "stopped", "pid": os.getpid()}], durable=True)
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


def _build_collectors(configs: list[CollectorConfig]) -> dict[str, Collector]:
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


def load_or_fail(config_path: str | None) -> tuple[Config, ConfigLoader]:
    loader = ConfigLoader()
    result = loader.load(config_path)
    if result.config is None:
        raise ConfigError(result.problems)
    return result.config, loader

"""Evaluation: the rules' live alerts, run group by group, and their transitions.

Each group tick takes a Snapshot of the hub, the Evaluator steps its alerts, and
the transitions go down the event path (journaled durably, then notified); a
rule's own problems (rule_error, rule_no_data ...) become the daemon's own
alerts. At start the live alerts are rebuilt from the durable state; a reload
hands over the new rules here.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from typing import Any

from engine.common.records import AlertEvent, JournalEvent
from engine.config.model import Config, Rule, RuleGroup
from engine.daemon.clock import Clock
from engine.daemon.emit import EventPath, synthetic_rule
from engine.daemon.hub import CollectorHub, runtime_named
from engine.daemon.metrics import Metrics
from engine.expr.history import History
from engine.rules.evaluator import Evaluator, Snapshot, Transition
from engine.rules.rule_health import PROBLEMS
from engine.rules.state import Alert, Event, fingerprint
from engine.runtime.budget import Budget

log = logging.getLogger("vigil")

Row = tuple[Rule, Mapping[str, str], Any, str]


class Evaluation:
    """Owns the rules' live alerts (the `Evaluator`), the configuration its rules
    came from, and which groups are running. Reads the hub and the history;
    writes only through the event path."""

    def __init__(
        self,
        config: Config,
        hub: CollectorHub,
        history: History,
        events: EventPath,
        metrics: Metrics,
        clock: Clock,
        budget: Budget,
    ) -> None:
        self.config = config
        self.budget = budget
        self.hub = hub
        self.events = events
        self.metrics = metrics
        self.clock = clock
        self.evaluator = Evaluator(history)
        self._limit_alerts(config)
        self._running_groups: dict[str, bool] = {}  # name -> a prompt run (react.py)?

    @property
    def running(self) -> bool:
        """Whether a group run is in flight (drained at shutdown)."""
        return bool(self._running_groups)

    def snapshot(self) -> Snapshot:
        return self.hub.snapshot(self.clock.wall(), self.clock.mono())

    def _limit_alerts(self, config: Config) -> None:
        """What the evaluator needs of the configuration besides the rules."""
        ev = self.evaluator
        ev.runtime_named = runtime_named(config)
        ev.max_alerts_per_rule = config.max_alerts_per_rule
        ev.max_alerts_total = config.max_alerts_total

    # -- ticks ---------------------------------------------------------------------------
    async def run_group(self, group: RuleGroup, *, prompt: bool = False) -> None:
        """One evaluation of `group`: on its tick, or `prompt`ly because a collector it
        reads has news (engine/daemon/react.py), which waits for a run in flight."""
        while prompt and group.name in self._running_groups:
            await asyncio.sleep(0.005)
        if group.name in self._running_groups:
            if self._running_groups[group.name]:
                return  # a prompt run is evaluating fresh values right now: no overrun
            # never stacked: the previous run of this group is still going
            self.metrics.evaluation_overrun(group.name)
            log.warning("group %s overran its interval of %ss", group.name, group.interval)
            return
        self._running_groups[group.name] = prompt
        try:
            t0 = self.clock.mono()
            snap = self.hub.snapshot(self.clock.wall(), t0)
            transitions: list[Transition] = []
            config = self.config
            took, t = 0.0, time.perf_counter()  # evaluation time, without the pauses
            budget = self.budget
            budget.start()
            for _ in self.evaluator.steps(group, snap, transitions):
                if budget.spent():
                    took += time.perf_counter() - t
                    await budget.pause()
                    t = time.perf_counter()
                    if self.config is not config:
                        break  # a reload swapped the rules: the rest is theirs now
            took += time.perf_counter() - t
            self.metrics.observe_evaluation(group.name, took)
            self.evaluator.last_runs[group.name] = (snap.wall, took)
            if transitions:
                await self.events.transitions(transitions, self.clock.mono())
            for rid in self.evaluator.health.take_failed():
                self.metrics.rule_failure(rid)
            problems = self.problem_events()
            if problems:
                await self.events.emit(problems)
        finally:
            self._running_groups.pop(group.name, None)

    def problem_events(self) -> list[AlertEvent]:
        """One alert per rule and problem (engine/rules/rule_health.py): firing when it
        starts, resolved when it ends; the rule's own severity, since a critical
        rule that cannot be evaluated is a critical blind spot."""
        events: list[AlertEvent] = []
        for c in self.evaluator.health.take():
            rule = synthetic_rule(
                c.problem, {"rule_id": c.rule}, f"rule {c.rule}: {c.message or c.problem}",
                severity=c.severity,
            )  # fmt: skip
            if c.message is not None:
                events.append(self.events.synthetic("firing", rule, c.message[:200]))
            elif self.events.stored(fingerprint(rule.id, rule.labels)) is not None:
                events.append(self.events.synthetic("resolved", rule, None))
        return events

    # -- start -----------------------------------------------------------------------------
    def restore(self, state: Mapping[str, Any]) -> None:
        """Rebuild live alerts from the durable state: firing alerts stay firing (and are
        not announced again), pending timers continue from their wall-clock start."""
        now_w, now_m = self.clock.wall(), self.clock.mono()
        rules = {r.id: r for r in self.config.rules()}

        def mono_of(wall_t: Any) -> float | None:
            return None if wall_t is None else now_m - (now_w - float(wall_t))

        for fp, a in state["alerts"].items():
            rule = rules.get(a.get("rule"))
            if rule is None or (
                rule.compiled_each is None and fingerprint(rule.id, rule.labels) != fp
            ):
                continue  # its rule (or this instance of it) is gone: orphans()
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
        for a in state["alerts"].values():
            rid = (a.get("labels") or {}).get("rule_id")
            if a.get("rule") in PROBLEMS and rid in rules and rules[rid].enabled:
                self.evaluator.health.restore(a["rule"], rid, str(a.get("value") or ""))

    def orphans(self, state: Mapping[str, Any]) -> list[JournalEvent]:
        """At start: the durable alerts that nothing will ever step again (their rule
        was removed or changed while the daemon was down, the configuration that was
        invalid is valid now, a collector that is gone) end, as a reload would end them."""
        collectors = {c.name for c in self.config.collectors}
        out: list[JournalEvent] = []
        for fp, a in state["alerts"].items():
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
        return out

    # -- reload ----------------------------------------------------------------------------
    def adopt(self, new: Config, snap: Snapshot) -> list[Transition]:
        """Take the rules of `new` (unchanged ones keep their alerts and timers): the
        transitions of the alerts that end with their rule."""
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
        return resolved

    # -- --once ----------------------------------------------------------------------------
    def once(self) -> list[Row]:
        """One evaluation pass of every group: each alert instance with its observed
        value and its state."""
        snap = self.snapshot()
        rows: list[Row] = []
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
        return rows

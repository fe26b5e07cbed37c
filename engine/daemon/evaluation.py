"""Evaluation: running a rule group, journaling its transitions and notifying them.

Each group tick takes a Snapshot of the hub, the Evaluator steps its alerts, and
the transitions are journaled (durable) and only then handed to the Dispatcher;
a rule's own problems (rule_error, rule_no_data ...) become the daemon's own
alerts. Every event the daemon writes goes through the path here (`_emit`:
journal, fold into the durable state, notify), so it is the bottom of the App's
layers: collecting, scheduling and reload build on it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter, deque
from collections.abc import Callable, Mapping
from typing import Any

from engine.config.model import Config, Rule, RuleGroup, Severity, Source
from engine.daemon.hub import CollectorHub, runtime_named
from engine.daemon.metrics import Metrics
from engine.delivery.dispatch import Dispatcher
from engine.expr.compiler import compile_expr
from engine.expr.history import History
from engine.journal.journal import Journal
from engine.journal.snapshot_copy import StateCopy
from engine.journal.store import fold_event
from engine.rules.alert_events import ALERT_EVENTS, journal_events
from engine.rules.evaluator import Evaluator, Transition
from engine.rules.rule_health import Change
from engine.rules.state import fingerprint
from engine.runtime.budget import Budget

log = logging.getLogger("vigil")


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


class Evaluation:
    """Rule groups run, and the one path of events: journal, fold, notify.
    (The attributes are the App's, set in its __init__.)"""

    config: Config
    wall: Callable[[], float]
    mono: Callable[[], float]
    hub: CollectorHub
    history: History
    evaluator: Evaluator
    journal: Journal | None
    state: dict[str, Any]
    state_version: int
    alert_versions: dict[str, int]
    metrics: Metrics
    dispatcher: Dispatcher
    budget: Budget
    _copying: StateCopy | None
    _inflight: int
    _running_groups: set[str]

    def _limit_alerts(self, config: Config) -> None:
        """What the evaluator needs of the configuration besides the rules."""
        ev = self.evaluator
        ev.runtime_named = runtime_named(config)
        ev.max_alerts_per_rule = config.max_alerts_per_rule
        ev.max_alerts_total = config.max_alerts_total

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
            budget = self.budget
            budget.start()
            for _ in self.evaluator.steps(group, snap, transitions):
                if budget.spent():
                    took += time.perf_counter() - t
                    await budget.pause()
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
        engine/rules/alert_events.py). A burst goes in steps within the loop's time
        budget (engine/runtime/budget.py): each is rendered and
        queued for the journal (in order) while earlier ones are being written;
        each is folded and notified as soon as it is durable. So a thousand
        alerts firing at once never hold the loop for long, and the first of
        them are on their way before the last are rendered."""
        now = self.mono()
        budget = self.budget
        written: deque[tuple[list[dict[str, Any]], asyncio.Future[None] | None]] = deque()
        events: list[dict[str, Any]] = []
        done = 0
        self._inflight += 1
        self.dispatcher.hold()
        try:
            while done < len(transitions) or written:
                # what is durable first (folded and on its way to the channels),
                # then the next step rendered and stamped, in what is left of
                # the budget's window
                while written and (written[0][1] is None or written[0][1].done()):
                    stamped, fut = written.popleft()
                    if fut is not None:
                        fut.result()  # raises what the journal raised
                    self._fold(stamped)
                    await self.dispatcher.submit(stamped)
                    if budget.spent():
                        break
                batch: list[dict[str, Any]] = []
                while done < len(transitions) and not budget.spent():
                    batch += journal_events(transitions[done : done + 8], now)
                    done += 8
                if batch:
                    events += batch
                    written.append(self._submit(batch, durable=True))
                if done < len(transitions) or (written and written[0][1] is None):
                    await budget.pause()
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
        alert_events = [ev for ev in events if ev["event"] in ALERT_EVENTS]
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

"""Runs rule groups against a snapshot of collector values and steps their alerts.

No I/O and no clock reads: the caller passes the snapshot (with both clocks) and
gets back the transitions to journal. The live alerts are a cache keyed by
fingerprint, which replay rebuilds and reload keeps.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from engine.config.model import Rule, RuleGroup
from engine.errors import ExprError
from engine.expr import EvalScope, MissingData
from engine.history import History
from engine.state import IDLE, Alert, Event, Result, fingerprint, is_idle, step

_NO_LABELS: Mapping[str, str] = MappingProxyType({})
# rules or `each` elements per piece of Evaluator.steps: ~0.1-0.5 ms of work
STEP = 64
_NO_DATA = Result("no_data")
_FALSE = Result("value", matched=False)


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Collector values as they were at one moment; read-only for evaluation."""

    values: Mapping[str, Mapping[str, Any]]
    down: frozenset[str]  # collectors whose last collection failed
    wall: float  # epoch seconds
    mono: float  # monotonic seconds


@dataclass(frozen=True, slots=True)
class Transition:
    """An event of the state machine with what the journal needs to record it."""

    event: Event
    rule: Rule
    wall: float

    def as_journal(self, mono_now: float) -> dict[str, Any]:
        a = self.event.alert
        out: dict[str, Any] = {
            "event": self.event.kind,
            "alert": a.fingerprint,
            "rule": a.rule_id,
            "group": self.rule.group,
            "labels": dict(a.labels),
            "severity": self.rule.severity,
            "value": _plain(a.value),
        }
        # wall-clock of the episode's start, so a restart can continue its timers
        if a.pending_since is not None:
            out["pending_since"] = round(self.wall - (mono_now - a.pending_since), 3)
        if a.firing_since is not None:
            out["firing_since"] = round(self.wall - (mono_now - a.firing_since), 3)
        if a.error:
            out["error"] = a.error
        return out


def _plain(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if value == value and abs(value) != float("inf") else str(value)
    try:
        return str(value)[:200]
    except (RecursionError, ValueError):  # a value no bound caught: its transition still counts
        return f"<a {type(value).__name__} too large to show>"


class Evaluator:
    """Evaluates groups and holds the live alert of every instance."""

    def __init__(self, history: History) -> None:
        self.history = history
        self.alerts: dict[str, Alert] = {}  # fingerprint -> live alert
        self.rules: dict[str, Rule] = {}  # rule id -> rule, for alerts' rules
        self._each_fps: dict[str, set[str]] = {}  # rule id -> fingerprints of its instances
        self._fp: dict[tuple[str, tuple[tuple[str, str], ...]], str] = {}
        # per rule object: its plain fingerprint and the collectors it reads
        self._plan: dict[str, tuple[Rule, str, frozenset[str]]] = {}

    def _fingerprint(self, rule: Rule, labels: Mapping[str, str]) -> str:
        key = (rule.id, tuple(sorted(labels.items())))
        fp = self._fp.get(key)
        if fp is None:
            fp = self._fp[key] = fingerprint(rule.id, labels)
        return fp

    def _plan_of(self, rule: Rule) -> tuple[Rule, str, frozenset[str]]:
        plan = self._plan.get(rule.id)
        if plan is None or plan[0] is not rule:
            reads = rule.compiled.names - {"it"}
            if rule.compiled_each is not None:
                reads |= rule.compiled_each.names
            plan = self._plan[rule.id] = (rule, fingerprint(rule.id, rule.labels), reads)
            self.rules[rule.id] = rule
        return plan

    def run_group(self, group: RuleGroup, snap: Snapshot) -> list[Transition]:
        """One evaluation of every enabled rule of `group`: the transitions to journal."""
        out: list[Transition] = []
        for _ in self.steps(group, snap, out):
            pass
        return out

    def steps(self, group: RuleGroup, snap: Snapshot, out: list[Transition]) -> Iterator[None]:
        """run_group in pieces: appends transitions to `out` and yields every STEP
        rules or `each` elements, so that the daemon can let its event loop run
        between pieces of a large group (other groups' ticks stay on time)."""
        base = EvalScope(values=snap.values, now=snap.wall, history=self.history)
        available = snap.values.keys() - snap.down if snap.down else snap.values.keys()
        alerts = self.alerts
        mono = snap.mono
        n = 0
        for rule in group.rules:
            if not rule.enabled:
                continue
            _, fp, reads = self._plan_of(rule)
            if rule.compiled_each is not None:
                yield from self._run_each(rule, base, reads <= available, snap, out)
                continue
            # the hot path: one plain rule, usually quiet
            prev = alerts.get(fp)
            result = self._result(rule, base, prev) if reads <= available else _NO_DATA
            alert, events = step(rule, prev, result, mono, labels=rule.labels)
            if alert is not prev:
                self._keep(fp, alert, events)
            for ev in events:
                out.append(Transition(ev, rule, snap.wall))
            n += 1
            if n % STEP == 0:
                yield

    def _keep(self, fp: str, alert: Alert, events: tuple[Event, ...]) -> None:
        if alert is IDLE or is_idle(alert) or (alert.state == "resolved" and not events):
            self.alerts.pop(fp, None)
        else:
            self.alerts[fp] = alert

    def _run_each(
        self, rule: Rule, base: EvalScope, has_data: bool, snap: Snapshot, out: list[Transition]
    ) -> Iterator[None]:
        seen: set[str] = set()
        for fp, labels, result in self._each_instances(rule, base, has_data, snap):
            seen.add(fp)
            self._step(rule, fp, labels, result, snap, out)
            if len(seen) % STEP == 0:
                yield
        known = self._each_fps.setdefault(rule.id, set())
        # an instance that vanished (a disk unmounted, a target removed) is over: it
        # resolves whatever the no_data policy, which is about metrics going missing
        for fp in known - seen:
            prev = self.alerts.get(fp)
            if prev is not None:
                # its last value, so that a resolved notification can still show it
                gone = Result("value", matched=False, resolve_ok=True, value=prev.value)
                self._step(rule, fp, prev.labels, gone, snap, out)
        known.clear()
        known.update(fp for fp in seen if fp in self.alerts)

    def instances(
        self, rule: Rule, snap: Snapshot
    ) -> Iterator[tuple[str, Mapping[str, str], Result]]:
        """Each alert instance of `rule` with its evaluation result (with its value,
        for display): one for a plain rule, one per element for `each`."""
        _, fp, reads = self._plan_of(rule)
        base = EvalScope(values=snap.values, now=snap.wall, history=self.history)
        has_data = reads <= (snap.values.keys() - snap.down)
        if rule.compiled_each is None:
            prev = self.alerts.get(fp) or IDLE  # any alert: the value is wanted
            yield fp, rule.labels, self._result(rule, base, prev) if has_data else _NO_DATA
            return
        yield from self._each_instances(rule, base, has_data, snap)

    def _each_instances(
        self, rule: Rule, base: EvalScope, has_data: bool, snap: Snapshot
    ) -> Iterator[tuple[str, Mapping[str, str], Result]]:
        assert rule.compiled_each is not None
        if not has_data:
            return
        try:
            got = rule.compiled_each.evaluate(base)
        except MissingData:
            return
        except ExprError as e:
            # its instances cannot be known: one error alert for the rule itself
            yield self._plan_of(rule)[1], rule.labels, Result("error", error=f"each: {e.message}")
            return
        if not isinstance(got, list):
            why = f"each: expected a list, got {type(got).__name__}"
            yield self._plan_of(rule)[1], rule.labels, Result("error", error=why)
            return
        for el in got:
            el_labels = el.get("labels") if isinstance(el, dict) else None
            labels = (
                MappingProxyType({**rule.labels, **{str(k): str(v) for k, v in el_labels.items()}})
                if isinstance(el_labels, dict)
                else rule.labels
            )
            fp = self._fingerprint(rule, labels)
            if rule.compiled.it_series:
                # window functions over `it.x` read this element's own series
                self.history.record_tree(fp, snap.wall, el)
            scope = base.for_element(el, fp)
            yield fp, labels, self._result(rule, scope, self.alerts.get(fp) or IDLE)

    @staticmethod
    def _result(rule: Rule, scope: EvalScope, prev: Alert | None) -> Result:
        try:
            if not rule.compiled.evaluate_bool(scope):
                if prev is None:
                    return _FALSE  # quiet and no alert: the value is not wanted
                matched = False
                resolve_ok = (
                    rule.compiled_resolve.evaluate_bool(scope)
                    if rule.compiled_resolve is not None
                    else None
                )
            else:
                matched, resolve_ok = True, None
            value: Any = matched
            if rule.compiled_value is not None:
                value = rule.compiled_value.evaluate(scope)
        except MissingData:
            return _NO_DATA
        except ExprError as e:
            return Result("error", error=e.message)
        return Result("value", matched=matched, resolve_ok=resolve_ok, value=value)

    def _step(
        self,
        rule: Rule,
        fp: str,
        labels: Mapping[str, str],
        result: Result,
        snap: Snapshot,
        out: list[Transition],
    ) -> None:
        prev = self.alerts.get(fp)
        alert, events = step(rule, prev, result, snap.mono, labels=labels)
        if alert is not prev:
            self._keep(fp, alert, events)
        for ev in events:
            out.append(Transition(ev, rule, snap.wall))

    def adopt(self, rules: list[Rule], snap: Snapshot) -> list[Transition]:
        """Take a reloaded rule set. Alerts whose rule and fingerprint still exist keep
        their state and timers; alerts of removed rules, and of plain rules whose
        identity labels changed (a new fingerprint), are resolved if they fired and
        dropped otherwise. Returns the resolutions to journal and notify."""
        by_id = {r.id: r for r in rules}
        out: list[Transition] = []
        for fp, alert in list(self.alerts.items()):
            new = by_id.get(alert.rule_id)
            if new is not None and (new.compiled_each is not None or self._plan_of(new)[1] == fp):
                continue
            old = self.rules.get(alert.rule_id) or new
            if old is not None and alert.state == "firing":
                gone = alert._replace(state="resolved")
                out.append(Transition(Event("resolved", gone), old, snap.wall))
            del self.alerts[fp]
        for rid in list(self.rules):
            if rid not in by_id:
                del self.rules[rid]
                self._each_fps.pop(rid, None)
                self._plan.pop(rid, None)
        return out

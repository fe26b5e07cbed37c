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
    return str(value)[:200]


class Evaluator:
    """Evaluates groups and holds the live alert of every instance."""

    def __init__(self, history: History) -> None:
        self.history = history
        self.alerts: dict[str, Alert] = {}  # fingerprint -> live alert
        self.rules: dict[str, Rule] = {}  # rule id -> rule, for alerts' rules
        self._each_fps: dict[str, set[str]] = {}  # rule id -> fingerprints of its instances
        self._fp: dict[tuple[str, tuple[tuple[str, str], ...]], str] = {}

    def _fingerprint(self, rule: Rule, labels: Mapping[str, str]) -> str:
        key = (rule.id, tuple(sorted(labels.items())))
        fp = self._fp.get(key)
        if fp is None:
            fp = self._fp[key] = fingerprint(rule.id, labels)
        return fp

    def run_group(self, group: RuleGroup, snap: Snapshot) -> list[Transition]:
        out: list[Transition] = []
        for rule in group.rules:
            if rule.enabled:
                self.rules[rule.id] = rule
                self.run_rule(rule, snap, out)
        return out

    def run_rule(self, rule: Rule, snap: Snapshot, out: list[Transition]) -> None:
        seen: set[str] = set()
        for fp, labels, result in self.instances(rule, snap):
            seen.add(fp)
            self._step(rule, fp, labels, result, snap, out)
        if rule.compiled_each is None:
            return
        known = self._each_fps.setdefault(rule.id, set())
        # an instance that vanished (a disk unmounted, a target removed) is over: it
        # resolves whatever the no_data policy, which is about metrics going missing
        gone = Result("value", matched=False, resolve_ok=True)
        for fp in known - seen:
            prev = self.alerts.get(fp)
            if prev is not None:
                self._step(rule, fp, prev.labels, gone, snap, out)
        known.clear()
        known.update(fp for fp in seen if fp in self.alerts)

    def instances(
        self, rule: Rule, snap: Snapshot
    ) -> Iterator[tuple[str, Mapping[str, str], Result]]:
        """Each alert instance of `rule` with its evaluation result: one for a plain
        rule, one per element for `each` (plus one error instance if `each` fails)."""
        missing = self._missing(rule, snap)
        base = EvalScope(values=snap.values, now=snap.wall, history=self.history)
        if rule.compiled_each is None:
            fp = self._fingerprint(rule, rule.labels)
            yield fp, rule.labels, Result("no_data") if missing else self._result(rule, base)
            return
        if missing:
            return
        try:
            got = rule.compiled_each.evaluate(base)
        except MissingData:
            return
        except ExprError as e:
            # its instances cannot be known: one error alert for the rule itself
            fp = self._fingerprint(rule, rule.labels)
            yield fp, rule.labels, Result("error", error=f"each: {e.message}")
            return
        if not isinstance(got, list):
            fp = self._fingerprint(rule, rule.labels)
            yield (
                fp,
                rule.labels,
                Result("error", error=f"each: expected a list, got {type(got).__name__}"),
            )
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
            yield fp, labels, self._result(rule, base.for_element(el, fp))

    def _missing(self, rule: Rule, snap: Snapshot) -> bool:
        for name in rule.compiled.names:
            if name != "it" and (name in snap.down or name not in snap.values):
                return True
        return False

    def _result(self, rule: Rule, scope: EvalScope) -> Result:
        try:
            matched = rule.compiled.evaluate_bool(scope)
            value = matched
            if rule.compiled_value is not None:
                value = rule.compiled_value.evaluate(scope)
            resolve_ok = None
            if rule.compiled_resolve is not None and not matched:
                resolve_ok = rule.compiled_resolve.evaluate_bool(scope)
        except MissingData:
            return Result("no_data")
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
            if alert is IDLE or is_idle(alert) or (alert.state == "resolved" and not events):
                self.alerts.pop(fp, None)
            else:
                self.alerts[fp] = alert
        for ev in events:
            out.append(Transition(ev, rule, snap.wall))

    def forget_rules(self, keep: set[str], snap: Snapshot) -> list[Transition]:
        """Resolve the alerts of rules no longer configured (reload removed them)."""
        out: list[Transition] = []
        for fp, alert in list(self.alerts.items()):
            if alert.rule_id in keep:
                continue
            rule = self.rules.get(alert.rule_id)
            if rule is not None and alert.state == "firing":
                gone = Alert(
                    alert.fingerprint,
                    alert.rule_id,
                    alert.labels,
                    "resolved",
                    alert.value,
                    alert.pending_since,
                    alert.firing_since,
                )
                out.append(Transition(Event("resolved", gone), rule, snap.wall))
            del self.alerts[fp]
        for rid in list(self.rules):
            if rid not in keep:
                del self.rules[rid]
                self._each_fps.pop(rid, None)
        return out

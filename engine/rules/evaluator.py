"""Runs rule groups against a snapshot of collector values and steps their alerts.

No I/O and no clock reads: the caller passes the snapshot (with both clocks) and
gets back the transitions to journal. The live alerts are a cache keyed by
fingerprint, which replay rebuilds and reload keeps.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from types import MappingProxyType
from typing import Any

from engine.common.records import AlertEvent
from engine.config.model import Rule, RuleGroup
from engine.errors import ExprError
from engine.expr.history import History
from engine.expr.scope import EvalScope, MissingData
from engine.rules.rule_health import Outcome, RuleHealth
from engine.rules.state import IDLE, Alert, Event, Result, fingerprint, is_idle, step

_NO_LABELS: Mapping[str, str] = MappingProxyType({})
# an `each` element's labels as given (string pairs in their order), or _MERGED and
# the labels they became, sorted
LabelKey = tuple[Any, ...]
_MERGED = object()
# rules or `each` elements per piece of Evaluator.steps: ~0.1-0.5 ms of work
STEP = 64
_NO_DATA = Result("no_data")
_STALE = Result("stale")
_FALSE = Result("value", matched=False)
# an element past a cap that is already exceeded: not evaluated (nothing would be kept)
_SKIPPED = Result("value", matched=False)


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Collector values as they were at one moment; read-only for evaluation."""

    values: Mapping[str, Mapping[str, Any]]
    down: frozenset[str]  # collectors whose last collection failed
    wall: float  # epoch seconds
    mono: float  # monotonic seconds
    # collectors whose windows are still filling after a start or reload (see
    # engine/collectors/base.py, fills_for): they may undercount, never overcount
    filling: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class Transition:
    """An event of the state machine with what the journal needs to record it."""

    event: Event
    rule: Rule
    wall: float
    element: Any = None  # an `each` rule's element: its annotations read it as `it`

    def as_journal(self, mono_now: float) -> AlertEvent:
        a = self.event.alert
        out: AlertEvent = {
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
        if self.event.kind == "flapping":
            # the counted changes, wall-clock: when the hold ends follows from them
            out["changes"] = [round(self.wall - (mono_now - t), 3) for t in a.changes]
        return out


# names the data may never set: the routing, silences and display of every alert
# rely on them being the rule's own (router.match_labels adds them)
_RESERVED = frozenset({"rule", "severity"})


def _element_labels(rule: Rule, el_labels: Mapping[Any, Any]) -> Mapping[str, str]:
    """An `each` instance's labels: the element's, under the rule's own. Rule labels
    win, as in Prometheus: data the rule's author does not control (a collector's
    values) must not re-route its alerts or rename them."""
    merged = {str(k): str(v) for k, v in el_labels.items() if str(k) not in _RESERVED}
    merged.update(rule.labels)
    return MappingProxyType(merged)


def _annotated(rule: Rule, result: Result) -> bool:
    """Whether a transition carries its `each` element: annotations may read it
    (`it.evidence`: the lines behind it)."""
    return bool(rule.annotations) and result.kind == "value"


def _stale(reads: frozenset[str], snap: Snapshot) -> bool:
    """Whether a collector the rule reads is down: its alerts then keep their
    state (stale), rather than judge data that is missing for that reason."""
    return bool(snap.down) and not reads.isdisjoint(snap.down)


def _hold(result: Result, prev: Alert | None, reads: frozenset[str], snap: Snapshot) -> Result:
    """A false result from windows that are still filling does not end an alert: the
    window has not seen its whole span since the start, so "below the threshold"
    is not known yet (a true result is: a count can only grow). The alert keeps its
    state and timers until the windows are full."""
    if (
        result.kind == "value"
        and not result.matched
        and prev is not None
        and prev.state in ("pending", "firing")
        and not reads.isdisjoint(snap.filling)
    ):
        return replace(result, held=True)
    return result


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
        # rule id -> (the rule, element labels as given -> (its labels, fingerprint)),
        # holding only the elements of the rule's latest evaluation: elements come
        # and go (pods, disks), and a cache of every label set ever seen would grow
        # without end (14.A3); the rule: its own labels are part of the result
        self._fp: dict[str, tuple[Rule, dict[LabelKey, tuple[Mapping[str, str], str]]]] = {}
        # per rule object: its plain fingerprint and the collectors it reads
        self._plan: dict[str, tuple[Rule, str, frozenset[str]]] = {}
        self.health = RuleHealth()
        # group name -> (wall time, seconds) of its last evaluation, set by the
        # daemon (engine/daemon/evaluation.py): the rules view shows it per rule
        self.last_runs: dict[str, tuple[float, float]] = {}
        # caps on `each` alert instances (Config.max_alerts_per_rule/_total)
        self.max_alerts_per_rule = 10_000
        self.max_alerts_total = 50_000
        # collectors whose metric names only collecting can tell (push, command,
        # file ...): a rule reading them that never gets data raises rule_no_data
        self.runtime_named: frozenset[str] = frozenset()

    def _identity(
        self, rule: Rule, el: Any, fresh: dict[LabelKey, tuple[Mapping[str, str], str]] | None
    ) -> tuple[Mapping[str, str], str]:
        """An `each` element's labels and fingerprint; `fresh`: this evaluation's
        cache, which replaces the rule's old one. Cached by the element's labels as
        given when they are all strings (the usual case; an element's labels are
        rebuilt on every collection), else by the labels they become."""
        el_labels = el.get("labels") if isinstance(el, dict) else None
        if not isinstance(el_labels, dict):
            return rule.labels, self._plan_of(rule)[1]
        old = self._fp.get(rule.id)
        cache = old[1] if old is not None and old[0] is rule else {}
        key: LabelKey = tuple(el_labels.items())
        for k, v in el_labels.items():
            if type(k) is not str or type(v) is not str:
                # 1 and True are equal keys, but become "1" and "True"
                key = (_MERGED, *sorted(_element_labels(rule, el_labels).items()))
                break
        got = cache.get(key)
        if got is None:
            labels = _element_labels(rule, el_labels)
            got = (labels, fingerprint(rule.id, labels))
        if fresh is not None:
            fresh[key] = got
        return got

    def _plan_of(self, rule: Rule) -> tuple[Rule, str, frozenset[str]]:
        plan = self._plan.get(rule.id)
        if plan is None or plan[0] is not rule:
            reads = rule.compiled.names - {"it"}
            if rule.compiled_each is not None:
                reads |= rule.compiled_each.names
            plan = self._plan[rule.id] = (rule, fingerprint(rule.id, rule.labels), reads)
            self.rules[rule.id] = rule
            self.health.edited(rule.id, rule.severity)
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
            if reads <= available:
                result = self._result(rule, base, prev)
                if snap.filling:
                    result = _hold(result, prev, reads, snap)
            else:
                result = _STALE if _stale(reads, snap) else _NO_DATA
            if result.kind != "value" or rule.id not in self.health.quiet:
                self._observe(rule, reads, result.kind, result.error)
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
        known = self._each_fps.setdefault(rule.id, set())
        if not has_data and _stale(self._plan_of(rule)[2], snap):
            # a collector it reads is down: its elements are unknown, not gone
            # (and its health is unknown too: nothing to observe)
            for fp in list(known):
                prev = self.alerts.get(fp)
                if prev is not None:
                    self._step(rule, fp, prev.labels, _STALE, snap, out)
            fp = self._plan_of(rule)[1]  # its rule-level error alert, if any
            if fp in self.alerts:
                self._step(rule, fp, rule.labels, _STALE, snap, out)
            return
        seen: set[str] = set()
        # what this evaluation found, for the rule's own health: the list itself
        # missing is no data; an empty list is a value (nothing to alert on)
        listed: list[bool] = []
        kinds: set[str] = set()
        error = None
        # caps on alert instances: over them, an element that would start a new
        # alert is not tracked (the rule keeps the ones it has) and the rule says so
        cap = rule.max_alerts or self.max_alerts_per_rule
        alerts = self.alerts
        live = sum(1 for fp in known if fp in alerts)
        over: str | None = None
        fresh: dict[LabelKey, tuple[Mapping[str, str], str]] = {}

        def skip(fp: str) -> bool:
            # once the cap refused one element, others it would refuse are not
            # evaluated (nor their series recorded): a flood costs its labels only
            return (
                over is not None
                and fp not in alerts
                and (live >= cap or len(alerts) >= self.max_alerts_total)
            )

        instances = self._each_results(rule, base, has_data, snap, listed, fresh, skip)
        for n, (fp, labels, result, el) in enumerate(instances, 1):
            if result is _SKIPPED:
                if n % STEP == 0:
                    yield
                continue
            kinds.add(result.kind)
            if result.kind == "error" and error is None:
                error = result.error
            if fp not in alerts and (live >= cap or len(alerts) >= self.max_alerts_total):
                if result is not _FALSE and not (result.kind == "value" and not result.matched):
                    over = over or (
                        f"more than {cap} alert instances (max_alerts): new ones are not tracked"
                        if live >= cap
                        else f"all rules have {len(alerts)} alert instances "
                        "(max_alerts_total): new ones are not tracked"
                    )
            else:
                was = fp in alerts
                seen.add(fp)
                self._step(rule, fp, labels, result, snap, out, el)
                live += (fp in alerts) - was
            if n % STEP == 0:
                yield
        self.health.mark("cardinality_exceeded", rule.id, over)
        outcome: Outcome = (
            "error" if error is not None
            else "value" if "value" in kinds or (listed and not kinds)
            else "no_data"
        )  # fmt: skip
        self._observe(rule, self._plan_of(rule)[2], outcome, error)
        # an instance that vanished (a disk unmounted, a target removed) is over: it
        # resolves whatever the no_data policy, which is about metrics going missing;
        # like a false evaluation, so keep_firing_for holds it (Prometheus does), and
        # it is stepped on every evaluation until it is gone from the alerts
        held: list[str] = []
        for fp in known - seen:
            prev = self.alerts.get(fp)
            if prev is not None:
                # its last value, so that a resolved notification can still show it
                gone = Result("value", matched=False, resolve_ok=True, value=prev.value)
                self._step(rule, fp, prev.labels, gone, snap, out)
                if fp in self.alerts:
                    held.append(fp)
        known.clear()
        known.update(fp for fp in seen if fp in self.alerts)
        known.update(held)
        self._fp[rule.id] = (rule, fresh)

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
            if has_data:
                yield fp, rule.labels, self._result(rule, base, prev)
            else:
                yield fp, rule.labels, _STALE if _stale(reads, snap) else _NO_DATA
            return
        if not has_data and _stale(reads, snap):
            for efp in sorted(self._each_fps.get(rule.id, ())):
                kept = self.alerts.get(efp)
                if kept is not None:
                    yield efp, kept.labels, _STALE
            return
        for fp, labels, result, el in self._each_results(rule, base, has_data, snap):
            if _annotated(rule, result):
                result = replace(result, element=el)
            yield fp, labels, result

    def _each_results(
        self,
        rule: Rule,
        base: EvalScope,
        has_data: bool,
        snap: Snapshot,
        listed: list[bool] | None = None,
        fresh: dict[LabelKey, tuple[Mapping[str, str], str]] | None = None,
        skip: Callable[[str], bool] | None = None,
    ) -> Iterator[tuple[str, Mapping[str, str], Result, Any]]:
        """Each instance of an `each` rule: (fingerprint, labels, result, element).
        `listed` gets True appended when `each` gave a list (even an empty one);
        `fresh` gets the fingerprints of this evaluation's elements; an element
        whose fingerprint `skip` says True for comes as _SKIPPED, not evaluated."""
        assert rule.compiled_each is not None
        if not has_data:
            return
        try:
            got = rule.compiled_each.evaluate(base)
        except MissingData:
            return
        except ExprError as e:
            # its instances cannot be known: one error alert for the rule itself
            error = Result("error", error=f"each: {e.message}")
            yield self._plan_of(rule)[1], rule.labels, error, None
            return
        if not isinstance(got, list):
            why = f"each: expected a list, got {type(got).__name__}"
            yield self._plan_of(rule)[1], rule.labels, Result("error", error=why), None
            return
        if listed is not None:
            listed.append(True)
        for el in got:
            labels, fp = self._identity(rule, el, fresh)
            if skip is not None and skip(fp):
                yield fp, labels, _SKIPPED, el
                continue
            if rule.compiled.it_series:
                # window functions over `it.x` read this element's own series
                self.history.record_tree(fp, snap.wall, el)
            scope = base.for_element(el, fp)
            # the element goes with the result (not in it: one Result per element
            # would be built for the few that make a transition)
            yield fp, labels, self._result(rule, scope, self.alerts.get(fp) or IDLE), el

    def _observe(
        self, rule: Rule, reads: frozenset[str], outcome: Outcome, error: str | None
    ) -> None:
        """Tell the rule's health what one evaluation found (a Result kind)."""
        runtime = (
            outcome == "no_data"
            and bool(self.runtime_named)
            and not reads.isdisjoint(self.runtime_named)
        )
        self.health.observe(rule.id, outcome, error or "", runtime_names=runtime)

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
        element: Any = None,
    ) -> None:
        """`element`: an `each` rule's element, which its annotations read."""
        prev = self.alerts.get(fp)
        if snap.filling:
            result = _hold(result, prev, self._plan_of(rule)[2], snap)
        alert, events = step(rule, prev, result, snap.mono, labels=labels)
        if alert is not prev and not (prev is None and alert is IDLE):  # IDLE: none kept
            self._keep(fp, alert, events)
        if events:
            el = element if _annotated(rule, result) else None
            for ev in events:
                out.append(Transition(ev, rule, snap.wall, el))

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
        self.health.forget({r.id for r in rules if r.enabled})  # removed/disabled rules' end
        for rid in list(self.rules):
            if rid not in by_id:
                del self.rules[rid]
                self._each_fps.pop(rid, None)
                self._plan.pop(rid, None)
                self._fp.pop(rid, None)
        return out

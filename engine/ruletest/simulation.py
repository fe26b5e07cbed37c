"""One rule test case on a simulated clock, driving the daemon's own parts
(Evaluator, journal events, store fold, Pipeline) the way `App` does.

Separate because it is the one place that mimics the daemon's loop; the
checks only read what it holds at a time."""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from engine.common.records import JournalEvent
from engine.expr.history import History
from engine.journal.format import FORMAT_VERSION, format_ts
from engine.journal.store import fold_event, initial_state
from engine.notify.dedup import notified_event
from engine.notify.pipeline import Pipeline
from engine.rules.alert_events import journal_events
from engine.rules.evaluator import Evaluator, Snapshot
from engine.ruletest.clock import DRIFT, EPS, MAX_TEST_STEPS, MONO0, SAMPLE_AGE
from engine.ruletest.model import Case, TestFile
from engine.ruletest.results import CaseResult
from engine.ruletest.series import MISSING


@dataclass
class ActualAlert:
    fp: str
    rule: str
    state: str
    labels: dict[str, str]
    annotations: dict[str, str]
    value: Any
    severity: str
    no_data: bool
    error: bool
    flapping: bool


class Simulation:
    """One test case on a simulated clock, driving the daemon's parts as App does."""

    def __init__(self, tf: TestFile, case: Case, result: CaseResult) -> None:
        self.tf = tf
        self.case = case
        self.result = result
        self.config = tf.config
        self.dt = tf.interval
        # as App: history as long as the longest window, at least a minute
        windows = [
            w
            for r in self.config.rules()
            for e in (r.compiled, r.compiled_resolve)
            if e is not None
            for w in e.windows
        ]
        self.history = _History(max(max(windows, default=0.0), 60.0))
        self.evaluator = Evaluator(self.history)
        self.state: dict[str, Any] = initial_state()
        self.step = 0  # the next step to evaluate
        self.wall_now = case.start  # the latest simulated wall time reached
        self.seq = 0
        self.annotations: dict[str, dict[str, str]] = {}
        self.template_errors: dict[str, tuple[float, str]] = {}
        self.pipeline: Pipeline | None = None
        if self.config.channels:
            self.pipeline = Pipeline(self.config, tf.channel_types)
            self.pipeline.load_state(self.state, case.start)

    # -- clock ---------------------------------------------------------------------

    def since_start(self, wall: float) -> float:
        return round(wall - self.case.start, 6)

    def advance(self, t: float) -> None:
        """Everything up to and including `t` seconds after the start."""
        while self.step * self.dt <= t + EPS:
            if self.step > MAX_TEST_STEPS:
                raise ValueError(f"the test would simulate more than {MAX_TEST_STEPS} steps")
            st = self.step * self.dt
            # what comes due at the step's instant goes out before the evaluation
            self._deadlines(self.case.start + st)
            self._evaluate(self.step)
            self.step += 1
        self._deadlines(self.case.start + t)

    def _deadlines(self, limit: float) -> None:
        """Deliver what the pipeline has due up to and including `limit` (wall)."""
        if self.pipeline is None:
            return
        for _ in range(100_000):
            d = self.pipeline.next_deadline()
            if d is None or d > limit + EPS:
                return
            self._due(max(d, self.wall_now))
        raise RuntimeError("the notification pipeline keeps scheduling work at the same time")

    # -- one evaluation step, as App.run_group ------------------------------------------

    def _evaluate(self, i: int) -> None:
        t = i * self.dt
        wall, mono = self.case.start + t, MONO0 + t * (1 + DRIFT)
        self.wall_now = max(self.wall_now, wall)
        values = self.values_at(i)
        for name, sample in values.items():
            self.history.record_tree(name, wall, sample)
        snap = Snapshot(values, frozenset(), wall, mono)
        for g in self.config.groups:
            transitions = self.evaluator.run_group(g, snap)
            if transitions:
                self._emit(journal_events(transitions, mono), wall)

    def values_at(self, i: int) -> dict[str, Any]:
        case = self.case
        out: dict[str, Any] = copy.deepcopy(case.constants)
        for parts, vals in case.flat.items():
            node = out.setdefault(parts[0], {})
            v = vals[i] if i < len(vals) else MISSING
            if v is not MISSING:
                _put(node, parts[1:], v)
        for parts, elements in case.lists.items():
            node = out.setdefault(parts[0], {})
            longest = max((len(v) for el in elements for v in el.fields.values()), default=0)
            if i >= longest:
                continue  # every element's series ended: the list metric is missing
            items: list[dict[str, Any]] = []
            for el in elements:
                present = {
                    f: vals[i]
                    for f, vals in el.fields.items()
                    if i < len(vals) and vals[i] is not MISSING
                }
                if present:
                    items.append({"labels": dict(el.labels), **present})
            _put(node, parts[1:], items)
        return out

    def _stamp(self, ev: Mapping[str, Any], wall: float) -> dict[str, Any]:
        self.seq += 1
        return {"v": FORMAT_VERSION, "seq": self.seq, "ts": format_ts(wall), **ev}

    def _emit(self, events: Sequence[JournalEvent], wall: float) -> None:
        """As App._emit: journal (stamp), fold into the durable state, then hand to
        the notification pipeline and take what is due now (Dispatcher.submit)."""
        stamped = self._journal(events, wall)
        if self.pipeline is not None:
            for ev in stamped:
                self.pipeline.ingest(ev, wall)
            self._due(wall)

    def _journal(self, events: Sequence[JournalEvent], wall: float) -> list[dict[str, Any]]:
        stamped = [self._stamp(ev, wall) for ev in events]
        at = self.since_start(wall)
        for ev in stamped:
            fold_event(self.state, ev)
            self.result.events.append({**ev, "at": at})
            kind = ev["event"]
            if kind in ("pending", "firing", "resolved") and "annotations" in ev:
                self.annotations[ev["alert"]] = dict(ev["annotations"])
            elif kind == "template_failed":
                what = f"rule {ev['rule']}" if "rule" in ev else f"channel {ev.get('channel')}"
                self.template_errors.setdefault(f"{what}: {ev.get('error')}", (wall, what))
        return stamped

    def _due(self, wall: float) -> None:
        """As Dispatcher._pump and _report: what is due goes out, is delivered at
        once, and the outcome is journaled and told to the pipeline."""
        p = self.pipeline
        assert p is not None
        self.wall_now = max(self.wall_now, wall)
        for n in p.due(wall):
            self.result.notifications.append((self.since_start(wall), n))
            self._journal([notified_event(n.channel, n, ok=True, attempts=1)], wall)
            p.delivered(n, True, wall)
        extra = p.take_events()
        if extra:
            self._journal(extra, wall)

    # -- what there is at a time ----------------------------------------------------------

    def actual_alerts(self) -> list[ActualAlert]:
        out: list[ActualAlert] = []
        for fp, a in self.evaluator.alerts.items():
            rule = self.evaluator.rules.get(a.rule_id)
            out.append(
                ActualAlert(
                    fp=fp,
                    rule=a.rule_id,
                    state=a.state,
                    labels=dict(a.labels),
                    annotations=self.annotations.get(fp, {}),
                    value=a.value,
                    severity=rule.severity if rule is not None else "",
                    no_data=a.no_data,
                    error=a.error is not None,
                    flapping=a.flapping,
                )
            )
        out.sort(key=lambda x: (x.rule, sorted(x.labels.items()), x.state))
        return out


class _History(History):
    """The engine's History, keeping each sample SAMPLE_AGE before the simulated
    instant it was taken at (see MONO0): the evaluator records `each` elements'
    series through `record` too."""

    __slots__ = ()

    def record(self, key: str, ts: float, value: Any) -> None:
        super().record(key, ts - SAMPLE_AGE, value)


def _put(node: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    for p in path[:-1]:
        nxt = node.get(p)
        if not isinstance(nxt, dict):
            nxt = node[p] = {}
        node = nxt
    node[path[-1]] = value

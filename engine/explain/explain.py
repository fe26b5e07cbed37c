"""Why a rule is or is not firing, and where its notification would go.

    explain(config, rule_id, *, labels, values, state, now, channel_status=None,
            history=None, collector_errors=None) -> Explanation
    Explanation.to_dict()      JSON-able, versioned; what GET /api/v1/explain/{rule} returns
    Explanation.to_text()      the same, for a terminal (render_text(to_dict()))
    render_text(d)             text from the dict form: the CLI's online mode prints this
    parse_labels(["k=v"])      --labels / ?label= as a dict; ValueError for a bad one
    find_rule(config, id)      the rule, or UnknownRule with a did-you-mean

Pure: no I/O, no clock reads. The caller passes

    values          collector name -> metrics (the collectors' latest samples), or
                    None when they are unknown: then only the state and the
                    routing are explained
    state           the durable state of engine/journal/store.py (journal replay / App.state)
    now             wall-clock epoch seconds the explanation is "as of"
    channel_status  Dispatcher.status(): {channel: {queued, folded, breaker, sent,
                    failed, error}}; optional extra keys `held` (notifications held
                    by the rate limit now) and `sent_at` (recent send times, epoch
                    seconds; the offline CLI fills it from the journal)
    history         the daemon's sample history, for window functions (avg_over ...)
    collector_errors  collector name -> why its last collection failed
    sent_at         channel -> recent send times (epoch seconds), for the rate limit
                    when channel_status cannot say (offline: `notified` journal events)

The condition is judged as the evaluator judges it (engine/rules/evaluator.py), and
each part of it is shown: for `and`/`or`, `not` and comparisons every operand's
source is compiled on its own with the rule's names and evaluated against the
same scope, so `system.cpu_percent > 90 → False (system.cpu_percent = 42.5)`.
The notification part follows the pipeline's order (engine/notify/pipeline.py):
route → silence → inhibit → time interval → flapping hold → acknowledgement →
rate limit / breaker. Both parts say what would happen, not what a send did:
the journal's `notified` records say what went out.
"""

from __future__ import annotations

import ast
import difflib
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields, is_dataclass
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any, Literal

from engine.common import matchers
from engine.common.durations import format_duration
from engine.config.model import (
    Channel,
    Config,
    Matcher,
    Route,
    Rule,
    Silence,
    TimeInterval,
    matches_all,
)
from engine.errors import ExprError, VigilError
from engine.explain.notes import STALE_POLICY, instance_note, rule_notes
from engine.expr.compiler import compile_expr
from engine.expr.expression import Expression
from engine.expr.history import History
from engine.expr.scope import EvalScope, MissingData
from engine.notify import ticks
from engine.notify.pipeline import CLOSING_TYPES
from engine.notify.router import (
    BYPASS_INDEX,
    match_labels,
    silence_active,
    silence_from_state,
    source_counts,
    targets,
)
from engine.notify.timeintervals import active as interval_active
from engine.notify.timeintervals import muted
from engine.rules.state import fingerprint

__all__ = [
    "FORMAT_VERSION",
    "ChannelInfo",
    "Check",
    "Condition",
    "Delivery",
    "Explanation",
    "Instance",
    "Reason",
    "RouteInfo",
    "UnknownRule",
    "explain",
    "find_rule",
    "parse_labels",
    "render_text",
]

FORMAT_VERSION = 1
_EMPTY: Mapping[str, Any] = MappingProxyType({})
# a metric path such as system.cpu_percent, it.labels["x"], app.queues[0].depth
_PATH = re.compile(r"[A-Za-z_]\w*(?:\s*(?:\.\s*[A-Za-z_]\w*|\[[^\[\]]*\]))*")
# how far ahead to look for the end of a mute_time or the start of an active_time
_INTERVAL_HORIZON = 8 * 86400.0

Outcome = Literal["true", "false", "value", "no_data", "error", "skipped"]
ConditionOutcome = Literal[
    "true", "false", "no_data", "stale", "error", "gone", "unknown", "disabled"
]
AlertState = Literal["inactive", "pending", "firing"]
DeliveryStatus = Literal["sending", "withheld", "nowhere", "not_firing"]


class UnknownRule(VigilError):
    """No rule has this id; the message suggests the closest ones."""

    def __init__(self, rule_id: str, suggestions: Sequence[str] = ()) -> None:
        self.rule_id = rule_id
        self.suggestions = tuple(suggestions)
        hint = f"; did you mean {' or '.join(self.suggestions)}?" if self.suggestions else ""
        super().__init__(f"unknown rule {rule_id!r}{hint}")


# -- the result ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Check:
    """One (sub-)expression and what it evaluated to.

    outcome   true | false | value (neither boolean) | no_data | error | skipped
    shown     the value as text ("42.5", "True") or the no-data / error message
    operands  (source, value as text) of the parts a comparison or call read
    op        "and" | "or" | "not" | "" (a comparison or a leaf)
    decisive  this part decided its parent's result
    reached   False: short-circuited, the rule itself never evaluated it
    """

    source: str
    outcome: Outcome
    shown: str
    value: Any = None
    operands: tuple[tuple[str, str], ...] = ()
    op: str = ""
    decisive: bool = False
    reached: bool = True
    children: tuple[Check, ...] = ()

    @property
    def text(self) -> str:
        return _check_line(self.source, self.outcome, self.shown, self.operands)


@dataclass(frozen=True, slots=True)
class Condition:
    """The rule's condition for one alert instance, as the evaluator sees it.

    outcome   true | false | no_data | error | gone (an `each` element vanished)
              | stale (a collector it reads is down: the state is frozen)
              | unknown (no values given) | disabled
    message   the one-sentence reason (the deciding part, the missing metric ...)
    policy    what the rule's no_data / on_error setting makes of it ("" if nothing)
    """

    outcome: ConditionOutcome
    message: str
    value: Any = None
    policy: str = ""
    check: Check | None = None
    resolve: Check | None = None


@dataclass(frozen=True, slots=True)
class Reason:
    """Why a notification is held back. `route`/`channel` say what it applies to
    (both None: the alert as a whole)."""

    code: str  # silenced | inhibited | outside_active_time | inside_mute_time | flapping
    # | acknowledged | rate_limited | breaker_open | channel_unavailable | no_route
    text: str
    route: int | None = None
    channel: str | None = None
    data: Mapping[str, Any] = field(default_factory=lambda: _EMPTY)


@dataclass(frozen=True, slots=True)
class RouteInfo:
    index: int  # BYPASS_INDEX (-1): the rule's own `channels`
    text: str
    matchers: str
    channels: tuple[str, ...]
    continue_: bool
    group_by: tuple[str, ...]
    group_wait: float
    group_interval: float
    repeat_interval: float
    active_time: tuple[str, ...]
    mute_time: tuple[str, ...]
    source: str


@dataclass(frozen=True, slots=True)
class ChannelInfo:
    name: str
    type: str
    routes: tuple[int, ...]
    sends: bool  # a firing alert would go out on it now
    lines: tuple[str, ...]  # told at ..., rate limit ..., breaker ...
    status: Mapping[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class Delivery:
    """Where a notification goes. status: sending (firing, going out), withheld
    (firing, held back), nowhere (no route), not_firing (nothing to send; the rest
    says what would happen if it fired)."""

    status: DeliveryStatus
    summary: str
    routes: tuple[RouteInfo, ...]
    withheld: tuple[Reason, ...]
    channels: tuple[ChannelInfo, ...]
    escalation: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Instance:
    """One alert of the rule (one label set): the whole rule, or one `each` element."""

    labels: Mapping[str, str]
    fingerprint: str
    state: AlertState  # from the durable state (journal)
    since: str | None  # RFC 3339: pending since / firing since
    summary: str
    condition: Condition
    timer: tuple[str, ...]
    delivery: Delivery
    notes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Explanation:
    rule: str
    group: str
    severity: str
    source: str
    expr: str
    enabled: bool
    settings: Mapping[str, Any]
    at: str  # RFC 3339 of `now`
    values_known: bool
    instances: tuple[Instance, ...]
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        out = _jsonable(self)
        assert isinstance(out, dict)
        return {"version": FORMAT_VERSION, **out}

    def to_text(self) -> str:
        return render_text(self.to_dict())


# -- entry points --------------------------------------------------------------------------


def parse_labels(items: Sequence[str]) -> dict[str, str]:
    """`["host=a", "disk=/"]` -> {"host": "a", "disk": "/"}; ValueError names a bad item."""
    out: dict[str, str] = {}
    for item in items:
        k, sep, v = item.partition("=")
        if not sep or not k.strip():
            raise ValueError(f"expected label=value, got {item!r}")
        out[k.strip()] = v
    return out


def find_rule(config: Config, rule_id: str) -> Rule:
    rules = {r.id: r for r in config.rules()}
    rule = rules.get(rule_id)
    if rule is None:
        raise UnknownRule(rule_id, difflib.get_close_matches(rule_id, list(rules), n=3, cutoff=0.6))
    return rule


def explain(
    config: Config,
    rule_id: str,
    *,
    labels: Mapping[str, str] | None,
    values: Mapping[str, Mapping[str, Any]] | None,
    state: Mapping[str, Any],
    now: float,
    channel_status: Mapping[str, Mapping[str, Any]] | None = None,
    history: History | None = None,
    collector_errors: Mapping[str, str] | None = None,
    sent_at: Mapping[str, Sequence[float]] | None = None,
) -> Explanation:
    """Explain rule `rule_id` as of `now`; see the module docstring.

    `labels` selects alerts whose labels include all of them (for `each` rules:
    the element); when none has them, the rule's labels plus `labels` are
    explained as a what-if. Raises UnknownRule.
    """
    rule = find_rule(config, rule_id)
    ctx = _Ctx(config, rule, values, state, now, channel_status, history, collector_errors)
    ctx.sent_at = {k: list(v) for k, v in (sent_at or {}).items()}
    notes: list[str] = []
    if not rule.enabled:
        notes.append("the rule is disabled (enabled: false): it is never evaluated")
    if values is None:
        notes.append(
            "collector values are unknown, so the condition is not evaluated "
            "(give --values FILE); the alert state comes from the journal"
        )
    elif rule.compiled.windows and history is None:
        notes.append(
            "window functions (avg_over, rate ...) need the daemon's sample history, "
            "which this explanation does not have: ask the running daemon (--url)"
        )
    if channel_status is None:
        notes.append("channel delivery state (breaker, queue) is unknown: ask the daemon (--url)")
    notes.extend(
        rule_notes(
            rule.id, ctx.reads, ctx.alerts, ctx.errors, ctx.down,
            lambda t: _when(_num(t), now),
        )
    )  # fmt: skip
    wanted = dict(labels or {})
    instances = [ctx.instance(lab, it, note) for lab, it, note in ctx.targets(wanted, notes)]
    settings: dict[str, Any] = {
        "interval": ctx.interval,
        "for": rule.for_,
        "consecutive": rule.consecutive,
        "keep_firing_for": rule.keep_firing_for,
        "resolve_expr": rule.resolve_expr,
        "each": rule.each,
        "no_data": rule.no_data,
        "on_error": rule.on_error,
        "channels": list(rule.channels) if rule.channels is not None else None,
        "labels": dict(rule.labels),
    }
    return Explanation(
        rule=rule.id,
        group=rule.group,
        severity=rule.severity,
        source=str(rule.source),
        expr=rule.expr,
        enabled=rule.enabled,
        settings=settings,
        at=_iso(now),
        values_known=values is not None,
        instances=tuple(instances),
        notes=tuple(notes),
    )


# -- the work ------------------------------------------------------------------------------

_GONE = object()  # the `it` of an element that is no longer in the list
_NO_IT = object()  # a plain rule: no `it`


class _Ctx:
    def __init__(
        self,
        config: Config,
        rule: Rule,
        values: Mapping[str, Mapping[str, Any]] | None,
        state: Mapping[str, Any],
        now: float,
        channel_status: Mapping[str, Mapping[str, Any]] | None,
        history: History | None,
        collector_errors: Mapping[str, str] | None,
    ) -> None:
        self.config = config
        self.rule = rule
        self.values = values
        self.now = now
        self.channel_status = channel_status
        self.errors = dict(collector_errors or {})
        self.alerts: Mapping[str, Any] = state.get("alerts") or {}
        self.down: Mapping[str, Any] = state.get("collectors_down") or {}
        self.held: Mapping[str, Any] = state.get("held") or {}  # held for flapping
        self.api_silences: list[Silence] = []
        for sid, d in (state.get("silences") or {}).items():
            if isinstance(d, Mapping):
                s = silence_from_state(str(sid), d)
                if s is not None:
                    self.api_silences.append(s)
        self.names = frozenset(c.name for c in config.collectors) | {"it"}
        self.scope = (
            EvalScope(values=values, now=now, history=history) if values is not None else None
        )
        self.intervals = {t.name: t for t in config.time_intervals}
        group = next((g for g in config.groups if g.name == rule.group), None)
        self.interval = group.interval if group is not None else config.default_interval
        self._mute_cache: dict[tuple[int, bool], float | None] = {}
        self.sent_at: dict[str, list[float]] = {}
        # the collectors the evaluator requires before it evaluates the rule at all
        self.reads = rule.compiled.names - {"it"}
        if rule.compiled_each is not None:
            self.reads |= rule.compiled_each.names

    # which alerts -------------------------------------------------------------------

    def _state_alerts(self) -> list[tuple[str, Mapping[str, Any]]]:
        return [
            (fp, a)
            for fp, a in self.alerts.items()
            if isinstance(a, Mapping) and a.get("rule") == self.rule.id
        ]

    def targets(
        self, wanted: Mapping[str, str], notes: list[str]
    ) -> list[tuple[Mapping[str, str], Any, str]]:
        """(labels, the `each` element or _NO_IT/_GONE/None (unknown), note) per instance."""
        rule = self.rule

        def selected(labels: Mapping[str, str]) -> bool:
            return all(labels.get(k) == v for k, v in wanted.items())

        def what_if(why: str) -> list[tuple[Mapping[str, str], Any, str]]:
            merged = {**rule.labels, **wanted}
            notes.append(why)
            return [(merged, None if rule.compiled_each is not None else _NO_IT, "what-if")]

        if rule.compiled_each is None:
            if selected(rule.labels):
                return [(rule.labels, _NO_IT, "")]
            shown = _labels_text(rule.labels) or "no labels"
            return what_if(
                f"the rule's alert has {shown}; explaining it with "
                f"{_labels_text(wanted)} added, as a what-if"
            )
        out: list[tuple[Mapping[str, str], Any, str]] = []
        seen: set[str] = set()
        absent = sorted(self.reads - set(self.scope.values)) if self.scope is not None else []
        if absent:
            # as the evaluator does: without every collector the rule reads, `each`
            # yields no elements, and alerts whose element is gone resolve
            notes.append(
                "no data: "
                + "; ".join(self._collector_text(n) for n in absent)
                + f": `{rule.each}` yields no elements now, so the rule's alerts resolve"
            )
        elif self.scope is not None:
            try:
                got = rule.compiled_each.evaluate(self.scope)
            except MissingData as e:
                notes.append(
                    f"each `{rule.each}`: no data ({self._missing_text(rule.each or '', e)}): "
                    "the rule has no elements now, so its alerts resolve"
                )
                got = []
            except ExprError as e:
                notes.append(f"each `{rule.each}` failed: {e.message}")
                return [(rule.labels, _NO_IT, f"each: {e.message}")]
            if not isinstance(got, list):
                why = f"each: expected a list, got {type(got).__name__}"
                notes.append(f"`{rule.each}` is not a list: {why}")
                return [(rule.labels, _NO_IT, why)]
            for el in got:
                el_labels = el.get("labels") if isinstance(el, dict) else None
                labels: Mapping[str, str] = (
                    {**rule.labels, **{str(k): str(v) for k, v in el_labels.items()}}
                    if isinstance(el_labels, dict)
                    else dict(rule.labels)
                )
                fp = fingerprint(rule.id, labels)
                if fp in seen or not selected(labels):
                    continue
                seen.add(fp)
                out.append((labels, el, ""))
        for fp, a in self._state_alerts():
            labels = {str(k): str(v) for k, v in (a.get("labels") or {}).items()}
            if fp in seen or not selected(labels):
                continue
            seen.add(fp)
            out.append((labels, _GONE if self.scope is not None else None, ""))
        if out:
            return out
        if wanted:
            where = "in the values" if self.scope is not None else "in the journal"
            return what_if(
                f"no element of `{rule.each}` has {_labels_text(wanted)} {where}; "
                "explaining the routing of such an alert as a what-if"
            )
        if self.scope is None:
            notes.append(
                f"the elements of `{rule.each}` are unknown without values and the journal "
                "has no alert of this rule: give --values, or --labels for a what-if"
            )
        else:
            notes.append(f"`{rule.each}` has no elements now: the rule has no alerts")
        return []

    # one alert ---------------------------------------------------------------------

    def instance(self, labels: Mapping[str, str], it: Any, note: str) -> Instance:
        rule = self.rule
        fp = fingerprint(rule.id, labels)
        sa = self.alerts.get(fp)
        sa = sa if isinstance(sa, Mapping) and sa.get("state") in ("pending", "firing") else None
        st: AlertState = sa["state"] if sa is not None else "inactive"
        notes: list[str] = []
        if note == "what-if":
            notes.append("what-if: no such alert exists now")
        stale = instance_note(sa)
        if stale is not None:
            notes.append(stale)
        cond = self.condition(it, fp, note)
        since_t = None
        if sa is not None:
            since_t = _num(sa.get("firing_since") if st == "firing" else sa.get("pending_since"))
        timer = self.timer(st, sa, cond)
        delivery = self.delivery(fp, labels, st, sa)
        summary = self.summary(st, since_t, cond, sa)
        return Instance(
            labels=dict(labels),
            fingerprint=fp,
            state=st,
            since=_iso(since_t) if since_t is not None else None,
            summary=summary,
            condition=cond,
            timer=tuple(timer),
            delivery=delivery,
            notes=tuple(notes),
        )

    # the condition -----------------------------------------------------------------

    def condition(self, it: Any, fp: str, note: str) -> Condition:
        rule = self.rule
        if not rule.enabled:
            return Condition("disabled", "the rule is disabled: it is never evaluated")
        if note.startswith("each"):
            return Condition("error", note, policy=_on_error_policy(rule))
        if self.scope is None or it is None:
            why = (
                "collector values are unknown"
                if self.scope is None
                else "no such element in the values"
            )
            return Condition("unknown", why)
        if it is _GONE:
            return Condition(
                "gone",
                f"the element is no longer in `{rule.each}`: the alert resolves at the next "
                "evaluation",
            )
        scope = self.scope if it is _NO_IT else self.scope.for_element(it, fp)
        tree = self.walk(rule.expr, scope)
        resolve_tree: Check | None = None
        absent = sorted(self.reads - set(scope.values))
        if absent:
            why = self._deciding_missing(tree) or "; ".join(self._collector_text(n) for n in absent)
            msg = "no data: " + why
            if any(n in self.errors or n in self.down for n in absent):
                # the evaluator's "stale", not no_data: its policy does not apply
                return Condition("stale", msg, policy=STALE_POLICY, check=tree)
            return Condition("no_data", msg, policy=_no_data_policy(rule), check=tree)
        try:
            matched = rule.compiled.evaluate_bool(scope)
            value: Any = matched
            if rule.compiled_value is not None:
                value = rule.compiled_value.evaluate(scope)
        except MissingData as e:
            msg = "no data: " + (self._deciding_missing(tree) or e.message)
            return Condition("no_data", msg, policy=_no_data_policy(rule), check=tree)
        except ExprError as e:
            return Condition(
                "error", f"error: {e.message}", policy=_on_error_policy(rule), check=tree
            )
        if rule.resolve_expr is not None and not matched:
            resolve_tree = self.walk(rule.resolve_expr, scope)
        leaf = _deciding_leaf(tree)
        return Condition(
            "true" if matched else "false",
            leaf.text if leaf is not None else tree.text,
            value=value,
            check=tree,
            resolve=resolve_tree,
        )

    def walk(self, expr: str, scope: EvalScope) -> Check:
        text = expr.strip()
        try:
            root = ast.parse(text, mode="eval").body
        except (SyntaxError, ValueError, RecursionError):
            return self._leaf(text, scope)
        return self._node(root, text, scope)

    def _compile(self, source: str) -> Expression | None:
        try:
            return compile_expr(f"({source})" if "\n" in source else source, names=self.names)
        except ExprError:
            return None

    def _eval(self, source: str, scope: EvalScope) -> tuple[Outcome, Any, str]:
        compiled = self._compile(source)
        if compiled is None:
            return "skipped", None, "cannot be evaluated on its own"
        try:
            v = compiled.evaluate(scope)
        except MissingData as e:
            return "no_data", None, self._missing_text(source, e)
        except ExprError as e:
            return "error", None, e.message
        if v is True:
            return "true", v, "True"
        if v is False:
            return "false", v, "False"
        return "value", v, _show(v)

    def _leaf(self, source: str, scope: EvalScope) -> Check:
        outcome, value, shown = self._eval(source, scope)
        return Check(_one_line(source), outcome, shown, _plain(value))

    def _node(self, node: ast.expr, text: str, scope: EvalScope) -> Check:
        source = ast.get_source_segment(text, node) or text
        if isinstance(node, ast.BoolOp):
            kids = [self._node(v, text, scope) for v in node.values]  # all, for the reader
            is_and = isinstance(node.op, ast.And)
            decider: int | None = None
            for i, k in enumerate(kids):
                if k.outcome in ("no_data", "error", "skipped"):
                    decider = i
                    break
                truthy = bool(k.value) if k.outcome == "value" else k.outcome == "true"
                if truthy != is_and:  # `and` stops at a false operand, `or` at a true one
                    decider = i
                    break
            marked: list[Check] = []
            for i, k in enumerate(kids):
                if decider is None:
                    marked.append(_with(k, decisive=True))
                else:
                    marked.append(_with(k, decisive=i == decider, reached=i <= decider))
            whole = self._leaf(source, scope)
            shown = whole.shown
            if decider is not None and whole.outcome == kids[decider].outcome == "no_data":
                shown = kids[decider].shown  # the operand names the missing value best
            return Check(
                whole.source,
                whole.outcome,
                shown,
                whole.value,
                op="and" if is_and else "or",
                children=tuple(marked),
            )
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            kid = self._node(node.operand, text, scope)
            whole = self._leaf(source, scope)
            return Check(
                whole.source,
                whole.outcome,
                whole.shown,
                whole.value,
                op="not",
                children=(_with(kid, decisive=True),),
            )
        return self._leaf_in(source, node, text, scope)

    def _leaf_in(self, source: str, node: ast.expr, text: str, scope: EvalScope) -> Check:
        outcome, value, shown = self._eval(source, scope)
        operands: list[tuple[str, str]] = []
        parts: list[ast.expr] = []
        if isinstance(node, ast.Compare):
            parts = [node.left, *node.comparators]
        elif isinstance(node, ast.Call):
            parts = list(node.args)
        elif isinstance(node, ast.UnaryOp):
            parts = [node.operand]
        for part in parts:
            if not _dynamic(part):
                continue
            seg = ast.get_source_segment(text, part)
            if seg is None or seg == source:
                continue
            _o, _v, s = self._eval(seg, scope)
            operands.append((_one_line(seg), s))
        if outcome == "no_data":
            # the operand that is missing says more than the comparison around it
            shown = next((s for _src, s in operands if _is_missing(s)), shown)
        return Check(_one_line(source), outcome, shown, _plain(value), tuple(_dedupe(operands)))

    def _missing_text(self, source: str, e: MissingData) -> str:
        src = _one_line(source)
        if "no history" in e.message:
            return f"{src} has no value here: window functions need the daemon's sample history"
        if not _PATH.fullmatch(src):
            return e.message  # a larger expression: its operands say which value is missing
        root = _root_name(src)
        if (
            root is not None
            and root != "it"
            and self.values is not None
            and root not in self.values
        ):
            return f"{src} is missing ({self._collector_hint(root)})"
        return f"{src} is missing"

    def _collector_hint(self, name: str) -> str:
        if name in self.errors:
            return f"collector {name} is down: {self.errors[name]}"
        since = _num(self.down.get(name))
        if since is not None:
            return f"collector {name} is down since {_when(since, self.now)}"
        if not any(c.name == name for c in self.config.collectors):
            return f"no collector {name} is configured"
        return "collector down?"

    def _collector_text(self, name: str) -> str:
        hint = self._collector_hint(name)
        if hint == "collector down?":
            return f"collector {name} has no values (collector down?)"
        return hint

    def _deciding_missing(self, tree: Check) -> str | None:
        leaf = _deciding_leaf(tree)
        if leaf is None:
            return None
        return leaf.shown if leaf.outcome == "no_data" else None

    # timers ------------------------------------------------------------------------

    def timer(self, st: AlertState, sa: Mapping[str, Any] | None, cond: Condition) -> list[str]:
        rule, now = self.rule, self.now
        holds = _effective(rule, cond)  # True / False / None: frozen / "unknown"
        out: list[str] = [f"evaluated every {_dur(self.interval)} (group {rule.group})"]
        if cond.policy:
            out.append(cond.policy)
        if st == "firing" and sa is not None:
            since = _num(sa.get("firing_since"))
            out.append(f"firing since {_when(since, now)}" if since else "firing")
            if holds is True:
                out.append("the condition holds: it stays firing")
            elif holds is False:
                out.extend(self._resolving(cond))
            elif holds is None:
                out.append("its state is frozen while this lasts: it stays firing")
            if rule.keep_firing_for and holds is not False:
                out.append(
                    f"keep_firing_for {_dur(rule.keep_firing_for)}: once the condition stops "
                    "holding it stays firing that long"
                )
        elif st == "pending" and sa is not None:
            since = _num(sa.get("pending_since"))
            out.append(f"pending since {_when(since, now)}" if since else "pending")
            if holds is False:
                out.append(
                    "the condition does not hold now: back to inactive at the next "
                    "evaluation (the timer starts over)"
                )
            elif holds is None:
                out.append("its state and timer are frozen while this lasts")
            out.extend(self._fires_when(since))
        else:
            if holds is True:
                if rule.for_ > 0 or rule.consecutive > 1:
                    out.append("the condition holds: it becomes pending at the next evaluation")
                    out.extend(self._fires_when(None))
                else:
                    out.append("the condition holds: it fires at the next evaluation")
            elif holds is False:
                out.append("the condition does not hold: nothing pending")
            elif holds is None:
                out.append("its state is frozen while this lasts: it stays inactive")
            if holds is not True and (rule.for_ > 0 or rule.consecutive > 1):
                out.extend(self._fires_when(None))
        return out

    def _fires_when(self, since: float | None) -> list[str]:
        rule, now = self.rule, self.now
        out: list[str] = []
        if rule.for_ > 0:
            if since is None:
                out.append(f"for {_dur(rule.for_)}: it fires once the condition has held that long")
            else:
                at = since + rule.for_
                if at > now:
                    out.append(
                        f"for {_dur(rule.for_)}: fires at {_when(at, now)} if the condition "
                        "keeps holding (at the first evaluation after that)"
                    )
                else:
                    out.append(
                        f"for {_dur(rule.for_)} has passed ({_iso(at)}): fires at the next "
                        "evaluation where the condition holds"
                    )
        if rule.consecutive > 1:
            guess = ""
            if since is not None:
                at = since + (rule.consecutive - 1) * self.interval
                guess = f"; at this interval about {_when(at, now)}"
            out.append(
                f"consecutive {rule.consecutive}: fires after {rule.consecutive} true "
                f"evaluations in a row{guess} (the count itself is not journaled)"
            )
        return out

    def _resolving(self, cond: Condition) -> list[str]:
        rule = self.rule
        out = ["the condition does not hold now"]
        if rule.keep_firing_for:
            out.append(
                f"keep_firing_for {_dur(rule.keep_firing_for)}: it resolves once the condition "
                "has not held for that long"
            )
        if rule.resolve_expr is not None:
            r = cond.resolve
            if cond.outcome == "no_data" and rule.no_data == "ok":
                out.append("resolve_expr: missing data counts as the resolve condition holding")
            elif cond.outcome == "gone":
                out.append("resolve_expr: a vanished element counts as resolved")
            elif r is None:
                out.append(f"resolve_expr `{rule.resolve_expr}` was not evaluated")
            elif r.outcome == "true":
                out.append(f"resolve_expr holds: {r.text}: it may resolve (hysteresis)")
            else:
                out.append(
                    f"resolve_expr does not hold: {r.text}: it stays firing until it does "
                    "(hysteresis)"
                )
        if not rule.keep_firing_for and (
            rule.resolve_expr is None
            or cond.outcome == "gone"
            or (cond.outcome == "no_data" and rule.no_data == "ok")
            or (cond.resolve is not None and cond.resolve.outcome == "true")
        ):
            out.append("it resolves at the next evaluation")
        return out

    # notifications -----------------------------------------------------------------

    def delivery(
        self, fp: str, labels: Mapping[str, str], st: AlertState, sa: Mapping[str, Any] | None
    ) -> Delivery:
        rule, config = self.rule, self.config
        severity = str(sa.get("severity") or rule.severity) if sa is not None else rule.severity
        ml = match_labels(labels, rule.id, severity)
        pairs = targets(config, ml, rule)
        firing = st == "firing"
        routes = tuple(_route_info(i, r) for i, r in pairs)
        notes: list[str] = []
        if rule.channels is not None:
            notes.append(
                f"the rule names its own channels ({', '.join(rule.channels)}): routes are "
                "bypassed (grouped by rule, default timing, no time intervals or escalation)"
            )
        reasons: list[Reason] = []
        if not pairs:
            reasons.append(
                Reason(
                    "no_route",
                    f"no route matches {_labels_text(ml)}: the notification goes nowhere "
                    "(add a default route without `match`)",
                )
            )
        reasons += self._silences(ml, notes)
        reasons += self._inhibited(fp, ml)
        # time intervals, per route
        for i, r in pairs:
            reasons += self._time(i, r)
        held = self.held.get(fp)
        if isinstance(held, Mapping) or (sa is not None and sa.get("flapping")):
            reasons.append(self._flapping(held if isinstance(held, Mapping) else None))
        ack = self._ack(sa, notes)
        if ack is not None:
            reasons.append(ack)
        alert_blocked = any(r.route is None and r.channel is None for r in reasons)
        acked_only = alert_blocked and all(
            r.code == "acknowledged" for r in reasons if r.route is None and r.channel is None
        )
        muted_routes = {r.route for r in reasons if r.route is not None}
        # channels: route channels first, in route order
        order: dict[str, list[int]] = {}
        for i, r in pairs:
            for ch in r.channels:
                order.setdefault(ch, []).append(i)
        channels: list[ChannelInfo] = []
        for name, idxs in order.items():
            cfg = config.channel(name)
            creasons, lines = self._channel(
                name,
                cfg,
                idxs,
                pairs,
                sa,
                firing,
                acked=any(r.code == "acknowledged" for r in reasons),
            )
            reasons += creasons
            closing = cfg is not None and cfg.type in CLOSING_TYPES
            open_route = any(i not in muted_routes for i in idxs)
            sends = (
                open_route
                and not creasons
                and (not alert_blocked or (acked_only and closing))
                and cfg is not None
            )
            if acked_only and closing:
                lines.append("gets the acknowledgement (it acknowledges the incident there)")
            waits = [_short(r) for r in reasons if r.route is not None and r.route in idxs]
            if not open_route and waits:
                lines.append("waits: " + "; ".join(waits))
            channels.append(
                ChannelInfo(
                    name,
                    cfg.type if cfg is not None else "?",
                    tuple(idxs),
                    sends,
                    tuple(lines),
                    dict(self.channel_status[name])
                    if self.channel_status is not None and name in self.channel_status
                    else None,
                )
            )
        escalation = self._escalation(pairs, sa, alert_blocked) if firing else []
        going = [c.name for c in channels if c.sends]
        if not pairs:
            status: DeliveryStatus = "nowhere"
            summary = "no route matches: a notification would go nowhere"
        elif not firing:
            status = "not_firing"
            verb = (
                "pending: nothing is sent until it fires"
                if st == "pending"
                else "not firing: nothing is sent"
            )
            if going:
                summary = f"{verb}; if it fired now it would go to {', '.join(going)}"
            else:
                held = "; ".join(_short(r) for r in reasons) or "nothing would go out"
                summary = f"{verb}; if it fired now it would be held back: {held}"
        elif going:
            status = "sending"
            summary = f"notifications go to {', '.join(going)}"
            stopped = [c.name for c in channels if not c.sends]
            if stopped:
                summary += f"; held back from {', '.join(stopped)}"
        else:
            status = "withheld"
            summary = "withheld: " + "; ".join(_short(r) for r in reasons)
        return Delivery(
            status,
            summary,
            routes,
            tuple(reasons),
            tuple(channels),
            tuple(escalation),
            tuple(notes),
        )

    def _flapping(self, held: Mapping[str, Any] | None) -> Reason:
        """Held for flapping: since when, and until when at the earliest. The hold
        ends once fewer than max(1, max_changes // 2) of the counted changes
        (firing, resolved) lie within the window (engine/rules/state.py)."""
        fl, now = self.rule.flapping, self.now
        calm = max(1, fl.max_changes // 2)
        since = _num(held.get("since")) if held is not None else None
        changes = sorted(
            t for t in (_num(c) for c in (held or {}).get("changes") or ()) if t is not None
        )
        recent = [t for t in changes if t > now - fl.window]
        until: float | None = None
        if held is not None:
            until = recent[len(recent) - calm] + fl.window if len(recent) >= calm else now
        head = (
            f"held for flapping since {_when(since, now)}"
            if since is not None
            else "held for flapping"
        )
        text = (
            f"{head}: {len(recent) if held is not None else 'at least ' + str(fl.max_changes)} "
            f"state changes within {_dur(fl.window)} (flapping from {fl.max_changes}). "
            "Notifications are held back, and escalation waits, until fewer than "
            f"{calm} remain within {_dur(fl.window)}"
        )
        if until is not None:
            text += (
                f": until {_when(until, now)} at the earliest, later if it changes state "
                "again; then its channels hear its latest state"
            )
        data: dict[str, Any] = {"since": _iso_or_none(since), "until": _iso_or_none(until)}
        return Reason("flapping", text, data=data)

    def _silences(self, ml: Mapping[str, str], notes: list[str]) -> list[Reason]:
        out: list[Reason] = []
        now = self.now
        for origin, silences in (("config", self.config.silences), ("API", self.api_silences)):
            for s in silences:
                if not matches_all(s.matchers, ml) or now >= s.until:
                    continue
                where = f" ({s.source})" if origin == "config" and s.source.line else ""
                what = f"{origin} silence {s.id}{where} [{_matchers_text(s.matchers)}]"
                if not silence_active(s, now):
                    notes.append(
                        f"{what} will silence it from {_when(s.starts, now)} "
                        f"until {_iso(s.until)}: {s.reason!r}"
                    )
                    continue
                out.append(
                    Reason(
                        "silenced",
                        f"silenced by {what} by {s.created_by}: {s.reason!r}; "
                        f"expires {_when(s.until, now)}",
                        data={
                            "id": s.id,
                            "origin": origin.lower(),
                            "matchers": _matchers_text(s.matchers),
                            "reason": s.reason,
                            "created_by": s.created_by,
                            "until": _iso(s.until),
                            "starts": _iso_or_none(s.starts),
                        },
                    )
                )
        return out

    def _inhibited(self, fp: str, ml: Mapping[str, str]) -> list[Reason]:
        out: list[Reason] = []
        for i, inh in enumerate(self.config.inhibits):
            if not matches_all(inh.target_matchers, ml):
                continue
            key = tuple(ml.get(k, "") for k in inh.equal)
            for sfp, a in self.alerts.items():
                if sfp == fp or not isinstance(a, Mapping) or a.get("state") != "firing":
                    continue
                slabels = {str(k): str(v) for k, v in (a.get("labels") or {}).items()}
                sml = match_labels(slabels, str(a.get("rule") or ""), str(a.get("severity") or ""))
                if not source_counts(inh, ml, sml):  # Alertmanager's two-sided rule
                    continue
                if tuple(sml.get(k, "") for k in inh.equal) != key:
                    continue
                equal = ", ".join(f"{k}={v!r}" for k, v in zip(inh.equal, key, strict=True))
                out.append(
                    Reason(
                        "inhibited",
                        f"inhibited by firing alert {a.get('rule')} {_labels_text(slabels)} "
                        f"(fingerprint {sfp}, {a.get('severity')}): inhibit rule #{i} "
                        f"[source {_matchers_text(inh.source_matchers)} → target "
                        f"{_matchers_text(inh.target_matchers)}"
                        + (f", equal on {equal}]" if inh.equal else "]"),
                        data={
                            "inhibit": i,
                            "source": str(inh.source),
                            "by": {"fingerprint": sfp, "rule": a.get("rule"), "labels": slabels},
                            "equal": list(inh.equal),
                        },
                    )
                )
                break  # one source per inhibit rule is enough to say why
        return out

    def _time(self, index: int, r: Route) -> list[Reason]:
        if index == BYPASS_INDEX or not muted(r, self.intervals, self.now):
            return []
        out: list[Reason] = []
        now = self.now
        if r.active_time and not any(
            n in self.intervals and interval_active(self.intervals[n], now) for n in r.active_time
        ):
            nxt = self._next_change(index, r, want_muted=False)
            names = ", ".join(_interval_text(self.intervals.get(n), n) for n in r.active_time)
            when = f"; next active {_when(nxt, now)}" if nxt is not None else ""
            out.append(
                Reason(
                    "outside_active_time",
                    f"route #{index} is outside its active_time ({names}){when}: its "
                    "notifications wait until then",
                    route=index,
                    data={"intervals": list(r.active_time), "next": _iso_or_none(nxt)},
                )
            )
        inside = [
            n
            for n in r.mute_time
            if n in self.intervals and interval_active(self.intervals[n], now)
        ]
        if inside:
            nxt = self._next_change(index, r, want_muted=False)
            names = ", ".join(_interval_text(self.intervals.get(n), n) for n in inside)
            when = f" until {_when(nxt, now)}" if nxt is not None else ""
            out.append(
                Reason(
                    "inside_mute_time",
                    f"route #{index} is inside its mute_time ({names}){when}: its "
                    "notifications wait until then",
                    route=index,
                    data={"intervals": inside, "until": _iso_or_none(nxt)},
                )
            )
        return out

    def _next_change(self, index: int, r: Route, *, want_muted: bool) -> float | None:
        key = (index, want_muted)
        if key not in self._mute_cache:
            t = (math.floor(self.now / 60.0) + 1) * 60.0
            end = self.now + _INTERVAL_HORIZON
            found: float | None = None
            while t <= end:
                if muted(r, self.intervals, t) == want_muted:
                    found = t
                    break
                t += 60.0
            self._mute_cache[key] = found
        return self._mute_cache[key]

    def _ack(self, sa: Mapping[str, Any] | None, notes: list[str]) -> Reason | None:
        ack = sa.get("ack") if sa is not None else None
        if not isinstance(ack, Mapping):
            return None
        until = _parse_time(ack.get("until"))
        by, note = ack.get("by"), ack.get("note")
        if until is not None and self.now >= until:
            notes.append(f"its acknowledgement by {by} expired {_when(until, self.now)}")
            return None
        data = {
            "by": by,
            "note": note,
            "until": _iso_or_none(until),
            "at": _iso_or_none(_num(ack.get("at"))),
        }
        lasts = f"until {_when(until, self.now)}" if until is not None else "until it resolves"
        return Reason(
            "acknowledged",
            f"acknowledged by {by} ({note!r}) {lasts}: no repeats and no escalation; "
            "incident tools (PagerDuty, Opsgenie) are told of the acknowledgement",
            data=data,
        )

    def _channel(
        self,
        name: str,
        cfg: Channel | None,
        idxs: list[int],
        pairs: list[tuple[int, Route]],
        sa: Mapping[str, Any] | None,
        firing: bool,
        *,
        acked: bool,
    ) -> tuple[list[Reason], list[str]]:
        now = self.now
        reasons: list[Reason] = []
        lines: list[str] = []
        if cfg is None:
            reasons.append(
                Reason("channel_unavailable", f"channel {name} is not configured", channel=name)
            )
            return reasons, lines
        route = dict(pairs)[idxs[0]]
        told = (sa.get("notified") or {}).get(name) if sa is not None else None
        if isinstance(told, Mapping):
            ts = _num(told.get("ts"))
            if told.get("ok", True):
                lines.append(f"told at {_when(ts, now)} ({told.get('status')})")
                if firing and acked:
                    lines.append("no repeats while acknowledged")
                elif firing and told.get("status") == "firing" and ts is not None:
                    # the pipeline's timing: on the group's ticks, which go on
                    # every group_interval from that notification (ticks.py)
                    gi = route.group_interval
                    nxt = ticks.repeat_tick(ts, gi, ts, route.repeat_interval)
                    lines.append(
                        f"repeats every {_dur(route.repeat_interval)} while unacknowledged, "
                        f"on the group's ticks every {_dur(gi)} (next about {_when(nxt, now)})"
                    )
            else:
                lines.append(
                    f"the last attempt at {_when(ts, now)} failed: retried on the group's next "
                    f"tick (every group_interval, {_dur(route.group_interval)})"
                )
        elif firing:
            lines.append(
                "not told yet"
                + (
                    f" (a new group waits group_wait, {_dur(route.group_wait)})"
                    if route.group_wait
                    else ""
                )
            )
        rl = cfg.rate_limit
        status = self.channel_status.get(name) if self.channel_status is not None else None
        if rl is not None:
            times = [*self.sent_at.get(name, ()), *((status or {}).get("sent_at") or ())]
            recent = [
                t for t in (_num(x) for x in times) if t is not None and now - rl.per < t <= now
            ]
            held = int((status or {}).get("held") or 0)
            limited = held > 0 or len(recent) >= rl.max
            lines.append(f"rate limit {rl.max} per {_dur(rl.per)}")
            if limited:
                why = (
                    f"{held} notification(s) held"
                    if held
                    else f"{len(recent)} sent in the last {_dur(rl.per)}"
                )
                reasons.append(
                    Reason(
                        "rate_limited",
                        f"channel {name} is at its rate limit ({rl.max} per {_dur(rl.per)}; "
                        f"{why}): new notifications wait and go out together as one digest",
                        channel=name,
                        data={"max": rl.max, "per": rl.per, "held": held, "recent": len(recent)},
                    )
                )
        if status is not None:
            error = status.get("error")
            breaker = status.get("breaker")
            if error:
                reasons.append(
                    Reason(
                        "channel_unavailable",
                        f"channel {name} cannot deliver: {error}",
                        channel=name,
                        data={"error": str(error)},
                    )
                )
            if breaker == "open":
                reasons.append(
                    Reason(
                        "breaker_open",
                        f"channel {name}'s circuit breaker is open after repeated failures "
                        f"(sent {status.get('sent', 0)}, failed {status.get('failed', 0)}): "
                        "deliveries fail fast until its cooldown ends, then one probe is tried",
                        channel=name,
                        data={"sent": status.get("sent"), "failed": status.get("failed")},
                    )
                )
            elif breaker == "half_open":
                lines.append("breaker half-open: one probe delivery decides whether it closes")
            elif breaker is not None:
                lines.append(f"breaker {breaker}")
            if status.get("queued"):
                lines.append(f"{status['queued']} notification(s) queued for delivery")
            if status.get("folded"):
                lines.append(
                    f"{status['folded']} notification(s) folded into a digest (its queue was full)"
                )
        return reasons, lines

    def _escalation(
        self, pairs: list[tuple[int, Route]], sa: Mapping[str, Any] | None, blocked: bool
    ) -> list[str]:
        if sa is None:
            return []
        now = self.now
        level = int(sa.get("escalation") or 0)
        starts = _num(sa.get("starts_at")) or _num(sa.get("firing_since"))
        out: list[str] = []
        for i, r in pairs:
            if not r.escalate:
                continue
            for n, step in enumerate(r.escalate, 1):
                chans = ", ".join(step.channels)
                if n <= level:
                    out.append(f"route #{i} level {n} (after {_dur(step.after)} → {chans}): done")
                elif blocked:
                    out.append(
                        f"route #{i} level {n} (after {_dur(step.after)} → {chans}): "
                        "waits while it is silenced, inhibited, flapping or acknowledged"
                    )
                    break
                elif starts is not None:
                    at = starts + step.after
                    due = (
                        f"due {_when(at, now)} unless acknowledged"
                        if at > now
                        else (f"overdue since {_when(at, now)}: goes out at the next check")
                    )
                    out.append(f"route #{i} level {n} (after {_dur(step.after)} → {chans}): {due}")
        return out

    # one sentence ------------------------------------------------------------------

    def summary(
        self, st: AlertState, since: float | None, cond: Condition, sa: Mapping[str, Any] | None
    ) -> str:
        now, rule = self.now, self.rule
        why = cond.message
        if cond.outcome in ("no_data", "stale") and cond.policy:
            why += f" — {cond.policy.split(' — ')[0]}"
        if cond.outcome == "error" and cond.policy:
            why += f" — {cond.policy.split(' — ')[0]}"
        if st == "firing":
            head = f"FIRING since {_when(since, now)}" if since is not None else "FIRING"
            if cond.outcome == "true":
                return f"{head}: {why}"
            if cond.outcome == "unknown":
                last = sa.get("value") if sa is not None else None
                return f"{head} (last recorded value {_show(last)}; current values unknown)"
            return f"{head}; now {why}"
        if st == "pending":
            head = f"PENDING since {_when(since, now)}" if since is not None else "PENDING"
            if rule.for_ > 0 and since is not None and cond.outcome != "false":
                head += f", fires {_when(since + rule.for_, now)} if it keeps holding"
            if cond.outcome == "unknown":
                return f"{head} (current values unknown)"
            return f"{head}: {why}"
        if cond.outcome == "unknown":
            return "NOT FIRING (no alert in the journal; current values unknown)"
        if cond.outcome == "disabled":
            return "NOT FIRING: the rule is disabled"
        if cond.outcome == "true":
            return f"NOT FIRING yet: {why} (the next evaluation acts on it)"
        return f"NOT FIRING: {why}"


# -- helpers: policies and effects ---------------------------------------------------------


def _no_data_policy(rule: Rule) -> str:
    return {
        "ok": "no_data: ok — missing data counts as all clear: a pending alert goes back to "
        "inactive, a firing one resolves",
        "keep": "no_data: keep — the alert keeps its state and timers until data returns",
        "alert": "no_data: alert — missing data counts as the condition holding",
    }[rule.no_data]


def _on_error_policy(rule: Rule) -> str:
    return {
        "error": "on_error: error — the alert keeps its state, marked `error`",
        "keep": "on_error: keep — the alert keeps its state, silently",
        "alert": "on_error: alert — the failure counts as the condition holding",
    }[rule.on_error]


def _effective(rule: Rule, cond: Condition) -> bool | str | None:
    """What the condition means to the state machine: True / False, None (frozen),
    or "unknown"."""
    o = cond.outcome
    if o == "true":
        return True
    if o in ("false", "gone"):
        return False
    if o == "no_data":
        return {"ok": False, "alert": True, "keep": None}[rule.no_data]
    if o == "stale":
        return None
    if o == "error":
        return True if rule.on_error == "alert" else None
    return "unknown"


def _short(r: Reason) -> str:
    """A few words for a summary line; the reason's text has the whole story."""
    code, d = r.code, r.data
    if code == "silenced":
        return f"silenced ({d.get('id')})"
    if code == "inhibited":
        by = d.get("by")
        return f"inhibited by {by.get('rule') if isinstance(by, Mapping) else '?'}"
    if code == "outside_active_time":
        return f"route #{r.route} outside active_time"
    if code == "inside_mute_time":
        return f"route #{r.route} inside mute_time"
    if code == "acknowledged":
        return f"acknowledged by {d.get('by')}"
    if code == "rate_limited":
        return f"{r.channel} rate limited"
    if code == "breaker_open":
        return f"{r.channel} breaker open"
    if code == "channel_unavailable":
        return f"{r.channel} unavailable"
    if code == "no_route":
        return "no route matches"
    return code


def _route_info(index: int, r: Route) -> RouteInfo:
    matchers = _matchers_text(r.matchers) if r.matchers else "(matches everything)"
    group_by = ", ".join(r.group_by)
    timing = (
        f"group_by {group_by}; wait {_dur(r.group_wait)}, interval {_dur(r.group_interval)}, "
        f"repeat {_dur(r.repeat_interval)}"
    )
    extra = ""
    if r.active_time:
        extra += f"; active_time {', '.join(r.active_time)}"
    if r.mute_time:
        extra += f"; mute_time {', '.join(r.mute_time)}"
    if r.continue_:
        extra += "; continue: later routes apply too"
    if index == BYPASS_INDEX:
        text = f"rule channels → {', '.join(r.channels)} (routes bypassed; {timing})"
    else:
        text = f"route #{index} {matchers} → {', '.join(r.channels)} ({timing}{extra})"
    return RouteInfo(
        index=index,
        text=text,
        matchers=matchers,
        channels=r.channels,
        continue_=r.continue_,
        group_by=r.group_by,
        group_wait=r.group_wait,
        group_interval=r.group_interval,
        repeat_interval=r.repeat_interval,
        active_time=r.active_time,
        mute_time=r.mute_time,
        source=str(r.source) if r.source.line else "",
    )


def _matchers_text(ms: Sequence[Matcher]) -> str:
    return ", ".join(matchers.to_text(m, quote=False) for m in ms)


def _interval_text(t: TimeInterval | None, name: str) -> str:
    return f"{name}, {t.timezone}" if t is not None else f"{name} (unknown)"


def _labels_text(labels: Mapping[str, str]) -> str:
    return "{" + ", ".join(f"{k}={v}" for k, v in sorted(labels.items())) + "}"


# -- helpers: expressions ------------------------------------------------------------------


def _dynamic(node: ast.AST) -> bool:
    """Whether evaluating `node` reads anything (a name or a call), i.e. is worth showing."""
    return any(isinstance(n, ast.Name | ast.Call) for n in ast.walk(node))


def _root_name(src: str) -> str | None:
    head = src.split(".", 1)[0].split("[", 1)[0].strip()
    return head if head.isidentifier() else None


def _with(c: Check, *, decisive: bool, reached: bool = True) -> Check:
    return Check(
        c.source, c.outcome, c.shown, c.value, c.operands, c.op, decisive, reached, c.children
    )


def _deciding_leaf(c: Check) -> Check | None:
    """Follow the deciding operands down to the comparison that settled it."""
    while c.children:
        nxt = next((k for k in c.children if k.decisive), None)
        if nxt is None or (c.op in ("and", "or") and all(k.decisive for k in c.children)):
            return c
        c = nxt
    return c


def _dedupe(items: list[tuple[str, str]]) -> list[tuple[str, str]]:
    seen: set[str] = set()
    out = []
    for src, shown in items:
        if src not in seen:
            seen.add(src)
            out.append((src, shown))
    return out


def _check_line(source: str, outcome: str, shown: str, operands: Sequence[Sequence[str]]) -> str:
    if outcome == "no_data":
        return f"{source} → no data: {shown}"
    if outcome == "error":
        return f"{source} → error: {shown}"
    if outcome == "skipped":
        return f"{source} ({shown})"
    parts = [val if _is_missing(val) else f"{src} = {val}" for src, val in operands]
    return f"{source} → {shown}" + (f" ({'; '.join(parts)})" if parts else "")


def _is_missing(shown: str) -> bool:
    return " is missing" in shown or " has no value" in shown


def _one_line(s: str) -> str:
    return " ".join(s.split()) if "\n" in s else s


# -- helpers: values and times -------------------------------------------------------------


def _show(v: Any) -> str:
    if v is None or isinstance(v, bool):
        return str(v)
    if isinstance(v, int):
        return str(v) if v.bit_length() <= 64 else f"<int of {v.bit_length()} bits>"
    if isinstance(v, float):
        return f"{v:.6g}"
    if isinstance(v, str):
        return repr(v) if len(v) <= 60 else repr(v[:57]) + "..."
    if isinstance(v, list | tuple):
        return f"<list of {len(v)}>" if len(v) > 5 else "[" + ", ".join(_show(x) for x in v) + "]"
    if isinstance(v, Mapping):
        return f"<map of {len(v)} keys>"
    return f"<{type(v).__name__}>"


def _plain(v: Any) -> Any:
    if v is None or isinstance(v, bool | str):
        return v
    if isinstance(v, int):
        return v if v.bit_length() <= 64 else _show(v)
    if isinstance(v, float):
        return v if math.isfinite(v) else str(v)
    return _show(v)


def _num(v: Any) -> float | None:
    if isinstance(v, bool):
        return None
    if isinstance(v, int | float):
        return float(v)
    return None


def _parse_time(v: Any) -> float | None:
    if isinstance(v, str):
        try:
            d = datetime.fromisoformat(v.replace("Z", "+00:00"))
        except ValueError:
            return None
        return (d if d.tzinfo else d.replace(tzinfo=UTC)).timestamp()
    return _num(v)


def _iso(t: float) -> str:
    try:
        return datetime.fromtimestamp(round(t), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    except (OverflowError, OSError, ValueError):
        return str(t)


def _iso_or_none(t: float | None) -> str | None:
    return _iso(t) if t is not None else None


def _dur(seconds: float) -> str:
    return format_duration(round(seconds, 3))


def _rel(t: float, now: float) -> str:
    d = t - now
    if abs(d) < 1:
        return "now"
    text = format_duration(round(abs(d)))
    return f"in {text}" if d > 0 else f"{text} ago"


def _when(t: float | None, now: float) -> str:
    if t is None:
        return "an unknown time"
    return f"{_iso(t)} ({_rel(t, now)})"


# -- to_dict -------------------------------------------------------------------------------


def _jsonable(o: Any) -> Any:
    if is_dataclass(o) and not isinstance(o, type):
        out: dict[str, Any] = {}
        for f in fields(o):
            out[f.name.rstrip("_")] = _jsonable(getattr(o, f.name))
        if isinstance(o, Check):
            out["text"] = o.text
        return out
    if isinstance(o, Mapping):
        return {str(k): _jsonable(v) for k, v in o.items()}
    if isinstance(o, list | tuple):
        return [_jsonable(x) for x in o]
    return _plain(o)


# -- text ----------------------------------------------------------------------------------


def render_text(d: Mapping[str, Any]) -> str:
    """The terminal form of an Explanation's dict (also of one from the daemon)."""
    lines: list[str] = []
    s = d.get("settings") or {}
    lines.append(
        f"rule {d.get('rule')} (group {d.get('group')}, {d.get('severity')}) at {d.get('source')}"
    )
    lines.append(f"  expr: {_one_line(str(d.get('expr', '')))}")
    opts = []
    if s.get("each"):
        opts.append(f"each {s['each']}")
    if s.get("for"):
        opts.append(f"for {_dur(float(s['for']))}")
    if s.get("consecutive"):
        opts.append(f"consecutive {s['consecutive']}")
    if s.get("keep_firing_for"):
        opts.append(f"keep_firing_for {_dur(float(s['keep_firing_for']))}")
    if s.get("resolve_expr"):
        opts.append(f"resolve_expr {_one_line(str(s['resolve_expr']))}")
    opts.append(f"no_data {s.get('no_data')}")
    opts.append(f"on_error {s.get('on_error')}")
    lines.append("  " + " · ".join(opts))
    lines.append(f"  as of {d.get('at')}")
    for n in d.get("notes") or []:
        lines.append(f"  note: {n}")
    instances = d.get("instances") or []
    if not instances:
        lines.append("")
        lines.append("no alert to explain")
    for inst in instances:
        lines.append("")
        labels = inst.get("labels") or {}
        lines.append(
            f"alert {_labels_text(labels) if labels else '{}'}  "
            f"(fingerprint {inst.get('fingerprint')})"
        )
        lines.append(f"  {inst.get('summary')}")
        for n in inst.get("notes") or []:
            lines.append(f"  note: {n}")
        cond = inst.get("condition") or {}
        check = cond.get("check")
        if check:
            lines.append("  why:")
            _render_check(check, lines, 4)
        if cond.get("outcome") in ("no_data", "stale", "error", "gone", "unknown") and not check:
            lines.append(f"  why: {cond.get('message')}")
        resolve = cond.get("resolve")
        if resolve:
            lines.append("  resolve_expr:")
            _render_check(resolve, lines, 4)
        timer = inst.get("timer") or []
        if timer:
            lines.append("  timer:")
            lines.extend(f"    - {t}" for t in timer)
        dl = inst.get("delivery") or {}
        lines.append(f"  notification: {dl.get('summary')}")
        for r in dl.get("routes") or []:
            lines.append(f"    {r.get('text')}")
        for n in dl.get("notes") or []:
            lines.append(f"    note: {n}")
        for r in dl.get("withheld") or []:
            lines.append(f"    ✗ {r.get('text')}")
        for c in dl.get("channels") or []:
            state = "✓" if c.get("sends") else "✗"
            head = f"    {state} channel {c.get('name')} ({c.get('type')})"
            rest = "; ".join(c.get("lines") or [])
            lines.append(head + (f": {rest}" if rest else ""))
        esc = dl.get("escalation") or []
        if esc:
            lines.append("    escalation:")
            lines.extend(f"      - {e}" for e in esc)
    return "\n".join(lines) + "\n"


def _render_check(c: Mapping[str, Any], lines: list[str], indent: int, mark: str = "") -> None:
    text = str(c.get("text") or c.get("source"))
    tail = ""
    if c.get("op") in ("and", "or"):
        kids = c.get("children") or []
        decisive = [k for k in kids if k.get("decisive")]
        if decisive and len(decisive) < len(kids):
            tail = f"  — decided by {decisive[0].get('source')}"
        elif kids:
            word = "all" if c.get("op") == "and" else "none"
            tail = f"  — {word} of its {len(kids)} operands {'hold' if word == 'all' else 'holds'}"
    if mark and not c.get("reached", True):
        tail += "  (not reached)"
    lines.append(" " * indent + mark + text + tail)
    for k in c.get("children") or []:
        o = k.get("outcome")
        sym = {"true": "✓ ", "false": "✗ "}.get(str(o), "? ")
        if not k.get("reached", True):
            sym = "· "
        _render_check(k, lines, indent + 2, sym)

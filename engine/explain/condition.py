"""Why an alert fires or not: the condition part of `vigil explain`.

Which alerts of a rule there are (its `each` elements, and the journal's alerts
whose element is gone), and for one of them whether the condition holds, judged
as the evaluator judges it (engine/rules/evaluator.py). Each part is shown: for
`and`/`or`, `not` and comparisons every operand's source is compiled on its own
with the rule's names and evaluated against the same scope, so
`system.cpu_percent > 90 → False (system.cpu_percent = 42.5)`. Separate from the
delivery part: it reads the collectors' values, never the routing."""

from __future__ import annotations

import ast
import re
from collections.abc import Mapping
from typing import Any

from engine.config.model import Rule
from engine.errors import ExprError
from engine.explain.facts import Facts
from engine.explain.notes import STALE_POLICY
from engine.explain.result import Check, Condition, Outcome
from engine.explain.wording import (
    as_number,
    is_missing,
    labels_text,
    one_line,
    plain_value,
    show_value,
    when_text,
)
from engine.expr.compiler import compile_expr
from engine.expr.expression import Expression
from engine.expr.scope import EvalScope, MissingData
from engine.rules.state import fingerprint

_GONE = object()  # the `it` of an element that is no longer in the list
_NO_IT = object()  # a plain rule: no `it`
# a metric path such as system.cpu_percent, it.labels["x"], app.queues[0].depth
_PATH = re.compile(r"[A-Za-z_]\w*(?:\s*(?:\.\s*[A-Za-z_]\w*|\[[^\[\]]*\]))*")


class ConditionExplainer:
    """Which alerts of the rule to explain, and for each whether its condition holds."""

    def __init__(self, facts: Facts) -> None:
        self.facts = facts

    # which alerts -------------------------------------------------------------------

    def _state_alerts(self) -> list[tuple[str, Mapping[str, Any]]]:
        return [
            (fp, a)
            for fp, a in self.facts.alerts.items()
            if isinstance(a, Mapping) and a.get("rule") == self.facts.rule.id
        ]

    def targets(
        self, wanted: Mapping[str, str], notes: list[str]
    ) -> list[tuple[Mapping[str, str], Any, str]]:
        """(labels, the `each` element or _NO_IT/_GONE/None (unknown), note) per instance."""
        rule = self.facts.rule

        def selected(labels: Mapping[str, str]) -> bool:
            return all(labels.get(k) == v for k, v in wanted.items())

        def what_if(why: str) -> list[tuple[Mapping[str, str], Any, str]]:
            merged = {**rule.labels, **wanted}
            notes.append(why)
            return [(merged, None if rule.compiled_each is not None else _NO_IT, "what-if")]

        if rule.compiled_each is None:
            if selected(rule.labels):
                return [(rule.labels, _NO_IT, "")]
            shown = labels_text(rule.labels) or "no labels"
            return what_if(
                f"the rule's alert has {shown}; explaining it with "
                f"{labels_text(wanted)} added, as a what-if"
            )
        out: list[tuple[Mapping[str, str], Any, str]] = []
        seen: set[str] = set()
        absent = (
            sorted(self.facts.reads - set(self.facts.scope.values))
            if self.facts.scope is not None
            else []
        )
        if absent:
            # as the evaluator does: without every collector the rule reads, `each`
            # yields no elements, and alerts whose element is gone resolve
            notes.append(
                "no data: "
                + "; ".join(self._collector_text(n) for n in absent)
                + f": `{rule.each}` yields no elements now, so the rule's alerts resolve"
            )
        elif self.facts.scope is not None:
            try:
                got = rule.compiled_each.evaluate(self.facts.scope)
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
            out.append((labels, _GONE if self.facts.scope is not None else None, ""))
        if out:
            return out
        if wanted:
            where = "in the values" if self.facts.scope is not None else "in the journal"
            return what_if(
                f"no element of `{rule.each}` has {labels_text(wanted)} {where}; "
                "explaining the routing of such an alert as a what-if"
            )
        if self.facts.scope is None:
            notes.append(
                f"the elements of `{rule.each}` are unknown without values and the journal "
                "has no alert of this rule: give --values, or --labels for a what-if"
            )
        else:
            notes.append(f"`{rule.each}` has no elements now: the rule has no alerts")
        return []

    # the condition -----------------------------------------------------------------

    def condition(self, it: Any, fp: str, note: str) -> Condition:
        rule = self.facts.rule
        if not rule.enabled:
            return Condition("disabled", "the rule is disabled: it is never evaluated")
        if note.startswith("each"):
            return Condition("error", note, policy=_on_error_policy(rule))
        if self.facts.scope is None or it is None:
            why = (
                "collector values are unknown"
                if self.facts.scope is None
                else "no such element in the values"
            )
            return Condition("unknown", why)
        if it is _GONE:
            return Condition(
                "gone",
                f"the element is no longer in `{rule.each}`: the alert resolves at the next "
                "evaluation",
            )
        scope = self.facts.scope if it is _NO_IT else self.facts.scope.for_element(it, fp)
        tree = self.walk(rule.expr, scope)
        resolve_tree: Check | None = None
        absent = sorted(self.facts.reads - set(scope.values))
        if absent:
            why = self._deciding_missing(tree) or "; ".join(self._collector_text(n) for n in absent)
            msg = "no data: " + why
            if any(n in self.facts.errors or n in self.facts.down for n in absent):
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
            return compile_expr(f"({source})" if "\n" in source else source, names=self.facts.names)
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
        return "value", v, show_value(v)

    def _leaf(self, source: str, scope: EvalScope) -> Check:
        outcome, value, shown = self._eval(source, scope)
        return Check(one_line(source), outcome, shown, plain_value(value))

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
            operands.append((one_line(seg), s))
        if outcome == "no_data":
            # the operand that is missing says more than the comparison around it
            shown = next((s for _src, s in operands if is_missing(s)), shown)
        return Check(one_line(source), outcome, shown, plain_value(value), tuple(_dedupe(operands)))

    def _missing_text(self, source: str, e: MissingData) -> str:
        src = one_line(source)
        if "no history" in e.message:
            return f"{src} has no value here: window functions need the daemon's sample history"
        if not _PATH.fullmatch(src):
            return e.message  # a larger expression: its operands say which value is missing
        root = _root_name(src)
        if (
            root is not None
            and root != "it"
            and self.facts.values is not None
            and root not in self.facts.values
        ):
            return f"{src} is missing ({self._collector_hint(root)})"
        return f"{src} is missing"

    def _collector_hint(self, name: str) -> str:
        if name in self.facts.errors:
            return f"collector {name} is down: {self.facts.errors[name]}"
        since = as_number(self.facts.down.get(name))
        if since is not None:
            return f"collector {name} is down since {when_text(since, self.facts.now)}"
        if not any(c.name == name for c in self.facts.config.collectors):
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

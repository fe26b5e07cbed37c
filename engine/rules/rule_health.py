"""Problems of a rule itself, as opposed to what its alerts say about the world.

vigil never sits silently on a rule it cannot evaluate (SPEC §2). The evaluator
reports each rule's outcome per evaluation here; this module keeps which rules
have which problem and what changed since the daemon last looked, and the
daemon raises one alert per rule and problem (engine/daemon/evaluation.py):

    rule_error            the expression raised (any instance, any on_error policy)
    rule_no_data          a metric it reads never appeared in NO_DATA_AFTER evaluations,
                          for collectors whose metric names are only known at run time
    cardinality_exceeded  its `each` produced more instances than the caps allow

Pure bookkeeping: no I/O, no clock.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Literal

from engine.config.model import Severity

__all__ = ["NO_DATA_AFTER", "PROBLEMS", "Change", "Outcome", "RuleHealth"]

Problem = Literal["rule_error", "rule_no_data", "cardinality_exceeded"]
PROBLEMS: tuple[Problem, ...] = ("rule_error", "rule_no_data", "cardinality_exceeded")
# what one evaluation of a rule found: a value, only missing data, an error, or
# nothing at all because a collector it reads is down (which changes nothing here)
Outcome = Literal["value", "no_data", "error", "stale"]
# evaluations without ever a value before a rule is said to have no data: a
# collector's first reads may lag the first evaluation by one or two ticks
NO_DATA_AFTER = 3


@dataclass(frozen=True, slots=True)
class Change:
    """A problem that started (`message` set) or ended (`message` None)."""

    problem: Problem
    rule: str
    severity: Severity
    message: str | None


@dataclass
class _Rule:
    severity: Severity
    seen: bool = False  # a value ever came out of it (since it was last edited)
    without: int = 0  # evaluations without a value while never seen


@dataclass
class RuleHealth:
    active: dict[tuple[Problem, str], str] = field(default_factory=dict)
    failures: Counter[str] = field(default_factory=Counter)  # rule -> failed evaluations
    _rules: dict[str, _Rule] = field(default_factory=dict)
    _changes: list[Change] = field(default_factory=list)
    _severity: dict[str, Severity] = field(default_factory=dict)
    _failed: list[str] = field(default_factory=list)  # since take_failed()
    # rules that had a value and have no problem: a value changes nothing for
    # them, so the evaluator's hot path skips observe() (one set lookup)
    quiet: set[str] = field(default_factory=set)

    def edited(self, rule: str, severity: Severity) -> None:
        """A rule is new or changed: whether its metrics appeared is asked again."""
        self._rules[rule] = _Rule(severity)
        self._severity[rule] = severity
        self.quiet.discard(rule)

    def observe(
        self, rule: str, outcome: Outcome, message: str = "", *, runtime_names: bool = False
    ) -> None:
        """One evaluation of `rule`. `runtime_names`: a collector it reads only
        knows its metric names at run time (a typo there shows only now)."""
        st = self._rules.get(rule)
        if st is None:
            st = self._rules[rule] = _Rule(self._severity.get(rule, "warning"))
        if outcome == "stale":
            return
        if outcome == "error":
            self.failures[rule] += 1
            self._failed.append(rule)
            self.mark("rule_error", rule, message or "evaluation failed")
            return
        self.mark("rule_error", rule, None)
        if outcome == "value":
            st.seen, st.without = True, 0
            self.mark("rule_no_data", rule, None)
            self.quiet.add(rule)
        elif not st.seen and runtime_names:
            st.without += 1
            if st.without >= NO_DATA_AFTER:
                self.mark(
                    "rule_no_data",
                    rule,
                    f"no data in {st.without} evaluations: a metric it reads never appeared",
                )

    def mark(self, problem: Problem, rule: str, message: str | None) -> None:
        """Start (message) or end (None) a problem; a change is recorded once."""
        key = (problem, rule)
        severity = self._severity.get(rule, "warning")
        if message is None:
            if self.active.pop(key, None) is not None:
                self._changes.append(Change(problem, rule, severity, None))
        elif key not in self.active:
            self.quiet.discard(rule)
            self.active[key] = message
            self._changes.append(Change(problem, rule, severity, message))

    def restore(self, problem: Problem, rule: str, message: str) -> None:
        """A problem still open in the journal at start: kept without a change, so
        that it is not announced again (its next evaluation ends it or not)."""
        self.active[(problem, rule)] = message

    def forget(self, keep: set[str]) -> None:
        """Rules that are gone: their problems end."""
        for problem, rule in list(self.active):
            if rule not in keep:
                self.mark(problem, rule, None)
        for rule in [r for r in self._rules if r not in keep]:
            del self._rules[rule]
            self._severity.pop(rule, None)
            self.failures.pop(rule, None)
            self.quiet.discard(rule)

    def take_failed(self) -> list[str]:
        """The rules whose evaluation failed since the last call, once per failure."""
        out, self._failed = self._failed, []
        return out

    def take(self) -> list[Change]:
        """The changes since the last call, oldest first."""
        out, self._changes = self._changes, []
        return out

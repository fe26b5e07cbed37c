"""What running a rule test gives: failures, predicted transitions, per-case and
per-file results.

Separate because it is the package's public output (the CLI prints it, tests and
the bench read it) and depends on nothing but the clock's formatting."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from engine.errors import Problem
from engine.notify.base import Notification
from engine.ruletest.clock import iso_time, offset


@dataclass
class Failure:
    """One failed assertion: where (the failing expect item, or the `at`), when,
    what, and the diff of expected (-) against actual (+)."""

    file: str
    line: int
    test: str
    kind: str  # alerts | notifications | template
    message: str
    at: float | None = None  # seconds since the test's start
    wall: float | None = None
    diff: list[str] = field(default_factory=list)
    expected: list[dict[str, Any]] = field(default_factory=list)
    actual: list[dict[str, Any]] = field(default_factory=list)

    def headline(self) -> str:
        when = f" at {offset(self.at)} ({iso_time(self.wall)})" if self.at is not None else ""
        return f'{self.file}:{self.line}: FAIL "{self.test}"{when}: {self.message}'

    def as_dict(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "line": self.line,
            "test": self.test,
            "kind": self.kind,
            "message": self.message,
            "at": offset(self.at) if self.at is not None else None,
            "at_seconds": self.at,
            "time": iso_time(self.wall) if self.wall is not None else None,
            "diff": self.diff,
            "expected": self.expected,
            "actual": self.actual,
        }


@dataclass(frozen=True, slots=True)
class Transition:
    """A journaled alert event as `vigil test` predicts it."""

    at: float  # seconds since the test's start
    rule: str
    event: str  # pending | firing | resolved | inactive | no_data | error | flapping ...
    labels: Mapping[str, str]
    fingerprint: str


@dataclass
class CaseResult:
    file: str
    name: str
    line: int
    failures: list[Failure] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)  # journal-like, with "at"
    notifications: list[tuple[float, Notification]] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.failures

    def transitions(self) -> list[Transition]:
        return [
            Transition(e["at"], e["rule"], e["event"], e.get("labels", {}), e["alert"])
            for e in self.events
            if "alert" in e and "rule" in e
        ]


@dataclass
class FileResult:
    file: str
    problems: list[Problem] = field(default_factory=list)
    cases: list[CaseResult] = field(default_factory=list)

    @property
    def failed(self) -> list[CaseResult]:
        return [c for c in self.cases if not c.passed]

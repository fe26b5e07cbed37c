"""Rule unit tests (`vigil test FILE...`): series in, expected alerts and
notifications out, on a simulated clock.

Nothing here re-implements the daemon. A test loads its rule and channel files
through `ConfigLoader` (the one config path), then drives the daemon's own parts
the way `App` does, on a clock it advances itself:

    step i at t = i * evaluation_interval (wall = start + t; mono: see MONO0):
        deliver what the Pipeline has due up to t (at its next_deadline() times)
        Snapshot of the series' values at step i; History.record_tree per collector
        per group: Evaluator.run_group -> journal_events (engine/rules/alert_events.py,
            shared with App) -> stamped like the journal -> store.fold_event
            -> Pipeline.ingest -> Pipeline.due(now) -> delivered(ok) at once
    an assertion at T sees everything up to and including T

Assertions compare sets: the alerts the evaluator holds at T (pending and firing,
and resolved or inactive ones when an expected item asks for that state) pair off
one to one with the expected items; so do the notifications sent in the window
since the previous notification assertion. Fields an expected item does not give
are not compared.

Public entry points: `run_file`, `run_files` (what the command prints),
`predict` (the transitions the daemon would journal) and `step_values` (the
collector values of each step), for comparing with a real daemon. Test files are validated with schemas/ruletest.schema.json; every
problem is a Problem with file:line:col, like `vigil validate`.
"""

from __future__ import annotations

import copy
import difflib
import json
import math
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from engine.common.durations import format_duration, parse_duration
from engine.config.build import ConfigLoader, LoadResult
from engine.config.load import Document, YamlError, format_path, load_file, resolve_plain
from engine.config.model import Config
from engine.config.schema import schema as schema_doc
from engine.config.schema import validate as schema_validate
from engine.config.secrets import PLACEHOLDER, REF
from engine.errors import Problem
from engine.expr.history import History
from engine.journal.format import FORMAT_VERSION, format_ts
from engine.journal.store import fold_event, initial_state
from engine.notify.base import Notification, iso
from engine.notify.dedup import told_fields
from engine.notify.pipeline import Pipeline
from engine.rules.alert_events import journal_events
from engine.rules.evaluator import Evaluator, Snapshot
from engine.ruletest.series import MISSING, SeriesError, parse_series

__all__ = [
    "CaseResult",
    "Failure",
    "FileResult",
    "Transition",
    "predict",
    "run_file",
    "run_files",
    "step_values",
    "test_files",
]

# Simulated clocks, made so that a duration of k steps is reached on step k
# whatever rounding does (for: 600ms over 200ms steps fires on the third step):
#   mono(i) = MONO0 + i * interval * (1 + _DRIFT): the state machine's timers see
#     each step a hair (a billionth) longer than the interval, which outweighs the
#     rounding of decimal durations and of the sums;
#   wall(i) = start + i * interval: the evaluation's `now`; every sample (a
#     collector's, and an `each` element's the evaluator records) is kept
#     _SAMPLE_AGE before it (collected just before the evaluation, as in the
#     daemon), so a sample exactly one window old is out of the window.
# Times shown and compared are rounded to the microsecond (_EPS).
MONO0 = 100.0
_DRIFT = 1e-9
_SAMPLE_AGE = 1e-6
EPOCH0 = 1767225600.0  # default start: 2026-01-01T00:00:00Z (a Thursday)
_EPS = 1e-6
_MAX_STEPS = 1_000_000  # steps one test may simulate
_SUFFIXES = (".yaml", ".yml")
_ALERT_FIELDS = (
    "rule",
    "state",
    "labels",
    "annotations",
    "annotations_regex",
    "value",
    "severity",
    "no_data",
    "error",
    "flapping",
)
_NOTE_FIELDS = (
    "channel",
    "status",
    "alerts",
    "kind",
    "level",
    "sent_at",
    "title",
    "title_regex",
    "body",
    "body_regex",
)


# -- results -------------------------------------------------------------------------


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
        when = f" at {_offset(self.at)} ({_iso(self.wall)})" if self.at is not None else ""
        return f'{self.file}:{self.line}: FAIL "{self.test}"{when}: {self.message}'

    def as_dict(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "line": self.line,
            "test": self.test,
            "kind": self.kind,
            "message": self.message,
            "at": _offset(self.at) if self.at is not None else None,
            "at_seconds": self.at,
            "time": _iso(self.wall) if self.wall is not None else None,
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


# -- the parsed test file ----------------------------------------------------------------


@dataclass
class _AlertExpect:
    line: int
    raw: dict[str, Any]  # as written, for the diff
    rule: str
    state: str
    labels: dict[str, str] | None
    annotations: dict[str, str] | None
    annotations_regex: dict[str, re.Pattern[str]] | None
    has_value: bool
    value: Any
    severity: str | None
    flags: dict[str, bool]  # no_data / error / flapping when given


@dataclass
class _AlertCheck:
    at: float
    line: int
    rules: frozenset[str] | None
    expect: list[_AlertExpect]


@dataclass
class _NoteExpect:
    line: int
    raw: dict[str, Any]
    channel: str
    status: str | None
    alerts: list[str] | None
    title: str | None
    title_regex: re.Pattern[str] | None
    body: str | None
    body_regex: re.Pattern[str] | None
    kind: str | None
    level: int | None
    sent_at: float | None


@dataclass
class _NoteCheck:
    at: float
    line: int
    expect: list[_NoteExpect]


@dataclass
class _Element:
    labels: dict[str, str]
    fields: dict[str, list[Any]]


@dataclass
class _Case:
    name: str
    line: int
    start: float
    constants: dict[str, dict[str, Any]]
    flat: dict[tuple[str, ...], list[Any]]  # (collector, metric, ...) -> values
    lists: dict[tuple[str, ...], list[_Element]]
    alerts: list[_AlertCheck]
    notifications: list[_NoteCheck]

    @property
    def end(self) -> float:
        times = [c.at for c in self.alerts] + [c.at for c in self.notifications]
        return max(times, default=0.0)


@dataclass
class _TestFile:
    path: str
    interval: float
    config: Config
    cases: list[_Case]
    channel_types: dict[str, str] = field(default_factory=dict)


# -- loading --------------------------------------------------------------------------------


class _Loader:
    """Loads test files; shares one ConfigLoader and the configs it built."""

    def __init__(self) -> None:
        self.configs = ConfigLoader()
        self._built: dict[tuple[Any, ...], LoadResult] = {}

    def load(self, path: str) -> tuple[_TestFile | None, list[Problem]]:
        try:
            doc = load_file(path)
        except YamlError as e:
            return None, [e.problem]
        problems = schema_validate(doc, "ruletest")
        if problems:
            return None, problems
        p = _Parser(doc)
        cases = p.cases()
        rule_files = p.files("rule_files")
        channel_files = p.files("channel_files") if "channel_files" in doc.data else []
        if p.problems:
            return None, p.problems
        collectors = sorted(p.collector_names)
        result = self._config(rule_files, channel_files, collectors)
        if result.config is None:
            line, col = doc.mark(("rule_files",))
            provided = (
                f"the collectors this test provides are: {', '.join(collectors)}"
                if collectors
                else "this test provides no collectors"
            )
            note = Problem(
                path,
                line,
                col,
                f"the rule and channel files do not load (problems above); {provided} "
                "(series name them; `collectors:` adds more)",
                "rule_files",
            )
            return None, [*result.problems, note]
        config = result.config
        p.check_refs(config, bool(channel_files))
        interval = p.interval(config)
        for i, case in enumerate(cases):
            if interval > 0 and case.end / interval > _MAX_STEPS:
                p.problem(
                    ("tests", i),
                    f"this test would take {case.end / interval:.0f} steps of "
                    f"{_offset(interval)}; the limit is {_MAX_STEPS}",
                )
        if p.problems:
            return None, p.problems
        types = {c.name: c.type for c in config.channels}
        return _TestFile(path, interval, config, cases, types), []

    def _config(
        self, rule_files: list[str], channel_files: list[str], collectors: list[str]
    ) -> LoadResult:
        key = (tuple(rule_files), tuple(channel_files), tuple(collectors))
        hit = self._built.get(key)
        if hit is not None:
            return hit
        # The collectors a test provides: `push` collectors hold whatever they are
        # given, which is what the series do.
        types = {n: "system" if n == "system" else "push" for n in collectors}
        result = self.configs.load(
            None, [*rule_files, *channel_files], env=_env(channel_files), collector_types=types
        )
        self._built[key] = result
        return result


def _env(channel_files: Sequence[str]) -> dict[str, str]:
    """The environment, plus a placeholder for every `${env:NAME}` the channel files
    name and the environment lacks: nothing is sent, so secrets need not be there."""
    env = dict(os.environ)
    for f in channel_files:
        try:
            with open(f, encoding="utf-8", errors="replace") as fh:
                text = fh.read()
        except OSError:
            continue
        for m in REF.finditer(text):
            if m.group(1) == "env":
                env.setdefault(m.group(2).strip(), PLACEHOLDER)
    return env


_RESERVED: frozenset[str] | None = None


def _reserved_names() -> frozenset[str]:
    """Names a collector cannot have (expression keywords and functions), from the
    config schema, so that the two never disagree."""
    global _RESERVED
    if _RESERVED is None:
        name = schema_doc("config")["definitions"]["collector"]["properties"]["name"]
        _RESERVED = frozenset(name.get("not", {}).get("enum", ()))
    return _RESERVED


class _Parser:
    """Turns a schema-valid test document into cases; collects every problem."""

    def __init__(self, doc: Document) -> None:
        self.doc = doc
        self.data: dict[str, Any] = doc.data
        self.problems: list[Problem] = []
        self.collector_names: set[str] = set()
        self._lines: list[str] | None = None
        self.base = os.path.dirname(doc.file)

    def problem(self, path: tuple[str | int, ...], message: str, *, key: bool = False) -> None:
        self.problems.append(self.doc.problem(path, message, key=key))

    def files(self, key: str) -> list[str]:
        out: list[str] = []
        for i, f in enumerate(self.data.get(key, [])):
            full = os.path.normpath(os.path.join(self.base, f))
            if not os.path.isfile(full):
                what = "rule file" if key == "rule_files" else "channel file"
                self.problem((key, i), f"{what} {f!r} not found (looked for {full})")
            elif not full.endswith(_SUFFIXES):
                self.problem((key, i), f"{f!r} is not a .yaml or .yml file")
            else:
                out.append(full)
        return out

    def time(self, path: tuple[str | int, ...], value: Any) -> float:
        try:
            return parse_duration(value)
        except ValueError as e:  # pragma: no cover - the schema's pattern is the engine's
            self.problem(path, str(e))
            return 0.0

    def start(self, path: tuple[str | int, ...], value: str | None, default: float) -> float:
        if value is None:
            return default
        try:
            dt = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
            if dt.tzinfo is None:
                raise ValueError
            return dt.timestamp()
        except ValueError:
            self.problem(
                path,
                f"expected an RFC 3339 time with zone such as 2026-11-23T10:00:00Z; got {value!r}",
            )
            return default

    def regex(self, path: tuple[str | int, ...], text: str) -> re.Pattern[str] | None:
        try:
            return re.compile(text)
        except re.error as e:
            self.problem(path, f"invalid regular expression {text!r}: {e}")
            return None

    def collectors(self, path: tuple[str | int, ...], value: Mapping[str, Any]) -> dict[str, Any]:
        for name in value:
            self.collector(path, name, key=True)
        return {k: dict(v) for k, v in value.items()}

    def collector(self, path: tuple[str | int, ...], name: str, *, key: bool = False) -> bool:
        if name in _reserved_names():
            self.problem(
                (*path, name),
                f"{name!r} cannot be a collector name: it is an expression keyword or function",
                key=key,
            )
            return False
        self.collector_names.add(name)
        return True

    # -- series ----------------------------------------------------------------------

    def _line(self, line: int) -> str:
        if self._lines is None:
            try:
                with open(self.doc.file, encoding="utf-8", errors="replace") as f:
                    self._lines = f.read().splitlines()
            except OSError:
                self._lines = []
        return self._lines[line - 1] if 0 < line <= len(self._lines) else ""

    def series_error(self, path: tuple[str | int, ...], text: Any, e: SeriesError) -> None:
        if e.index is not None:
            path = (*path, e.index)
            node: Any = text[e.index] if isinstance(text, list) else text
        else:
            node = text
        line, col = self.doc.mark(path)
        if isinstance(node, str) and e.offset is not None:
            raw = self._line(line)
            for quote in ("", '"', "'"):
                if raw[col - 1 : col - 1 + len(quote) + len(node)] == quote + node:
                    col += len(quote) + e.offset
                    break
        self.problems.append(Problem(self.doc.file, line, col, e.message, format_path(path)))

    def values(self, path: tuple[str | int, ...], value: Any) -> list[Any] | None:
        try:
            return parse_series(value)
        except SeriesError as e:
            self.series_error(path, value, e)
            return None

    def series(self, path: tuple[str | int, ...], value: Mapping[str, Any], case: _Case) -> None:
        seen: dict[tuple[str, ...], str] = {}
        for key, spec in value.items():
            kpath = (*path, key)
            parts = tuple(key.split("."))
            if not self.collector(path, parts[0], key=True):
                continue
            for n in range(2, len(parts)):
                if parts[:n] in seen:
                    self.problem(
                        kpath,
                        f"{key!r} is inside {seen[parts[:n]]!r}, which is a series itself",
                        key=True,
                    )
            longer = next((k for p, k in seen.items() if p[: len(parts)] == parts), None)
            if longer is not None:
                self.problem(kpath, f"{key!r} holds {longer!r}: it cannot be a series", key=True)
            seen[parts] = key
            if isinstance(spec, list) and spec and all(isinstance(x, dict) for x in spec):
                elements: list[_Element] = []
                for j, el in enumerate(spec):
                    fields: dict[str, list[Any]] = {}
                    bad = False
                    for fname, fvalue in el.items():
                        if fname == "labels":
                            continue
                        vals = self.values((*kpath, j, fname), fvalue)
                        if vals is not None:
                            fields[fname] = vals
                        bad = bad or vals is None
                    if not fields and not bad:
                        self.problem(
                            (*kpath, j), "an element needs at least one series besides labels"
                        )
                    labels = {str(k): _label(v) for k, v in el["labels"].items()}
                    elements.append(_Element(labels, fields))
                case.lists[parts] = elements
            else:
                vals = self.values(kpath, spec)
                if vals is not None:
                    case.flat[parts] = vals

    # -- tests -------------------------------------------------------------------------

    def cases(self) -> list[_Case]:
        d = self.data
        start = self.start(("start",), d.get("start"), EPOCH0)
        constants = self.collectors(("collectors",), d.get("collectors", {}))
        names: dict[str, int] = {}
        out: list[_Case] = []
        for i, t in enumerate(d["tests"]):
            path: tuple[str | int, ...] = ("tests", i)
            line = self.doc.mark(path)[0]
            name = t["name"]
            if name in names:
                self.problem(
                    (*path, "name"), f"duplicate test name {name!r} (first at line {names[name]})"
                )
            names.setdefault(name, line)
            consts = copy.deepcopy(constants)
            for c, metrics in self.collectors(
                (*path, "collectors"), t.get("collectors", {})
            ).items():
                consts.setdefault(c, {}).update(metrics)
            case = _Case(
                name=name,
                line=line,
                start=self.start((*path, "start"), t.get("start"), start),
                constants=consts,
                flat={},
                lists={},
                alerts=[],
                notifications=[],
            )
            self.series((*path, "series"), t.get("series", {}), case)
            for j, chk in enumerate(t.get("alerts", [])):
                case.alerts.append(self.alert_check((*path, "alerts", j), chk))
            last: tuple[float, int] | None = None
            for j, chk in enumerate(t.get("notifications", [])):
                nc = self.note_check((*path, "notifications", j), chk)
                if last is not None and nc.at <= last[0]:
                    self.problem(
                        (*path, "notifications", j, "at"),
                        f"notification assertions cover consecutive windows: this `at` "
                        f"({_offset(nc.at)}) must be later than the one before "
                        f"({_offset(last[0])}, line {last[1]})",
                    )
                last = (nc.at, nc.line)
                case.notifications.append(nc)
            if not case.alerts and not case.notifications:
                self.problem(
                    path, f"test {name!r} asserts nothing: add `alerts` or `notifications`"
                )
            out.append(case)
        return out

    def alert_check(self, path: tuple[str | int, ...], chk: Mapping[str, Any]) -> _AlertCheck:
        expect: list[_AlertExpect] = []
        for k, e in enumerate(chk["expect"]):
            ep = (*path, "expect", k)
            rx: dict[str, re.Pattern[str]] | None = None
            if "annotations_regex" in e:
                rx = {}
                for a, text in e["annotations_regex"].items():
                    pat = self.regex((*ep, "annotations_regex", a), text)
                    if pat is not None:
                        rx[a] = pat
            expect.append(
                _AlertExpect(
                    line=self.doc.mark(ep)[0],
                    raw=dict(e),
                    rule=e["rule"],
                    state=e.get("state", "firing"),
                    labels={str(k2): _label(v) for k2, v in e["labels"].items()}
                    if "labels" in e
                    else None,
                    annotations=dict(e["annotations"]) if "annotations" in e else None,
                    annotations_regex=rx,
                    has_value="value" in e,
                    value=e.get("value"),
                    severity=e.get("severity"),
                    flags={f: e[f] for f in ("no_data", "error", "flapping") if f in e},
                )
            )
        return _AlertCheck(
            at=self.time((*path, "at"), chk["at"]),
            line=self.doc.mark(path)[0],
            rules=frozenset(chk["rules"]) if "rules" in chk else None,
            expect=expect,
        )

    def note_check(self, path: tuple[str | int, ...], chk: Mapping[str, Any]) -> _NoteCheck:
        expect: list[_NoteExpect] = []
        for k, e in enumerate(chk["expect"]):
            ep = (*path, "expect", k)
            expect.append(
                _NoteExpect(
                    line=self.doc.mark(ep)[0],
                    raw=dict(e),
                    channel=e["channel"],
                    status=e.get("status"),
                    alerts=sorted(e["alerts"]) if "alerts" in e else None,
                    title=e.get("title"),
                    title_regex=self.regex((*ep, "title_regex"), e["title_regex"])
                    if "title_regex" in e
                    else None,
                    body=e.get("body"),
                    body_regex=self.regex((*ep, "body_regex"), e["body_regex"])
                    if "body_regex" in e
                    else None,
                    kind=e.get("kind"),
                    level=e.get("level"),
                    sent_at=self.time((*ep, "sent_at"), e["sent_at"]) if "sent_at" in e else None,
                )
            )
        return _NoteCheck(
            at=self.time((*path, "at"), chk["at"]), line=self.doc.mark(path)[0], expect=expect
        )

    # -- against the loaded configuration -------------------------------------------------

    def check_refs(self, config: Config, has_channels: bool) -> None:
        rules = {r.id for r in config.rules()}
        channels = {c.name for c in config.channels}
        for i, t in enumerate(self.data["tests"]):
            for j, chk in enumerate(t.get("alerts", [])):
                for k, rid in enumerate(chk.get("rules", [])):
                    self._known((("tests", i, "alerts", j, "rules", k)), "rule", rid, rules)
                for k, e in enumerate(chk["expect"]):
                    apath = ("tests", i, "alerts", j, "expect", k, "rule")
                    self._known(apath, "rule", e["rule"], rules)
            for j, chk in enumerate(t.get("notifications", [])):
                if not has_channels:
                    self.problem(
                        ("tests", i, "notifications", j),
                        "notification assertions need `channel_files` (the channels, "
                        "routes and silences to test)",
                    )
                    continue
                for k, e in enumerate(chk["expect"]):
                    npath = ("tests", i, "notifications", j, "expect", k)
                    self._known((*npath, "channel"), "channel", e["channel"], channels)
                    for m, rid in enumerate(e.get("alerts", [])):
                        self._known((*npath, "alerts", m), "rule", rid, rules)

    def _known(self, path: tuple[str | int, ...], kind: str, name: str, known: set[str]) -> None:
        if name in known:
            return
        hint = difflib.get_close_matches(name, sorted(known), n=1)
        where = "rule files" if kind == "rule" else "channel files"
        tail = f"; did you mean {hint[0]!r}?" if hint else f" (the {where} define {len(known)})"
        self.problem(path, f"unknown {kind} {name!r} in this test's {where}{tail}")

    def interval(self, config: Config) -> float:
        if "evaluation_interval" in self.data:
            return self.time(("evaluation_interval",), self.data["evaluation_interval"])
        intervals = {g.interval for g in config.groups}
        if len(intervals) <= 1:
            return intervals.pop() if intervals else config.default_interval
        groups = ", ".join(f"{g.name} every {format_duration(g.interval)}" for g in config.groups)
        self.problem(
            ("rule_files",),
            f"the rule groups have different intervals ({groups}): "
            "set evaluation_interval to the step every group is evaluated on",
        )
        return 0.0


def _label(v: Any) -> str:
    if isinstance(v, bool):
        return str(v).lower()
    return str(v)


# -- the simulation -----------------------------------------------------------------------


@dataclass
class _Actual:
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


class _Sim:
    """One test case on a simulated clock, driving the daemon's parts as App does."""

    def __init__(self, tf: _TestFile, case: _Case, result: CaseResult) -> None:
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

    def _at(self, wall: float) -> float:
        return round(wall - self.case.start, 6)

    def advance(self, t: float) -> None:
        """Everything up to and including `t` seconds after the start."""
        while self.step * self.dt <= t + _EPS:
            if self.step > _MAX_STEPS:
                raise ValueError(f"the test would simulate more than {_MAX_STEPS} steps")
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
            if d is None or d > limit + _EPS:
                return
            self._due(max(d, self.wall_now))
        raise RuntimeError("the notification pipeline keeps scheduling work at the same time")

    # -- one evaluation step, as App.run_group ------------------------------------------

    def _evaluate(self, i: int) -> None:
        t = i * self.dt
        wall, mono = self.case.start + t, MONO0 + t * (1 + _DRIFT)
        self.wall_now = max(self.wall_now, wall)
        values = self._values(i)
        for name, sample in values.items():
            self.history.record_tree(name, wall, sample)
        snap = Snapshot(values, frozenset(), wall, mono)
        for g in self.config.groups:
            transitions = self.evaluator.run_group(g, snap)
            if transitions:
                self._emit(journal_events(transitions, mono), wall)

    def _values(self, i: int) -> dict[str, Any]:
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

    def _stamp(self, ev: dict[str, Any], wall: float) -> dict[str, Any]:
        self.seq += 1
        return {"v": FORMAT_VERSION, "seq": self.seq, "ts": format_ts(wall), **ev}

    def _emit(self, events: list[dict[str, Any]], wall: float) -> None:
        """As App._emit: journal (stamp), fold into the durable state, then hand to
        the notification pipeline and take what is due now (Dispatcher.submit)."""
        stamped = self._journal(events, wall)
        if self.pipeline is not None:
            for ev in stamped:
                self.pipeline.ingest(ev, wall)
            self._due(wall)

    def _journal(self, events: list[dict[str, Any]], wall: float) -> list[dict[str, Any]]:
        stamped = [self._stamp(ev, wall) for ev in events]
        at = self._at(wall)
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
            self.result.notifications.append((self._at(wall), n))
            ev: dict[str, Any] = {
                "event": "notified",
                "channel": n.channel,
                "key": n.key,
                "alerts": [a.fingerprint for a in n.alerts],
                "status": n.status,
                "group_key": n.group_key,
                "attempts": 1,
            }
            if n.kind != "alerts":
                ev["kind"] = n.kind
            else:
                ev.update(told_fields(n))
            if n.escalation_level:
                ev["level"] = n.escalation_level
            self._journal([ev], wall)
            p.delivered(n, True, wall)
        extra = p.take_events()
        if extra:
            self._journal(extra, wall)

    # -- what there is at a time ----------------------------------------------------------

    def actual_alerts(self) -> list[_Actual]:
        out: list[_Actual] = []
        for fp, a in self.evaluator.alerts.items():
            rule = self.evaluator.rules.get(a.rule_id)
            out.append(
                _Actual(
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
    """The engine's History, keeping each sample _SAMPLE_AGE before the simulated
    instant it was taken at (see MONO0): the evaluator records `each` elements'
    series through `record` too."""

    __slots__ = ()

    def record(self, key: str, ts: float, value: Any) -> None:
        super().record(key, ts - _SAMPLE_AGE, value)


def _put(node: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    for p in path[:-1]:
        nxt = node.get(p)
        if not isinstance(nxt, dict):
            nxt = node[p] = {}
        node = nxt
    node[path[-1]] = value


# -- matching -------------------------------------------------------------------------------


def _same_value(want: Any, got: Any) -> bool:
    if isinstance(want, bool) or isinstance(got, bool):
        return want is got or (isinstance(want, bool) and isinstance(got, bool) and want == got)
    if isinstance(want, int | float) and isinstance(got, int | float):
        return math.isclose(want, got, rel_tol=1e-9, abs_tol=1e-9)
    return bool(want == got)


def _alert_matches(e: _AlertExpect, a: _Actual) -> bool:
    if e.rule != a.rule or e.state != a.state:
        return False
    if e.labels is not None and any(a.labels.get(k) != v for k, v in e.labels.items()):
        return False
    if e.annotations is not None and any(
        a.annotations.get(k) != v for k, v in e.annotations.items()
    ):
        return False
    if e.annotations_regex is not None and any(
        k not in a.annotations or p.search(a.annotations[k]) is None
        for k, p in e.annotations_regex.items()
    ):
        return False
    if e.has_value and not _same_value(e.value, a.value):
        return False
    if e.severity is not None and e.severity != a.severity:
        return False
    return all(getattr(a, f) == v for f, v in e.flags.items())


def _note_matches(e: _NoteExpect, at: float, n: Notification) -> bool:
    if e.channel != n.channel:
        return False
    if e.status is not None and e.status != n.status:
        return False
    if e.alerts is not None and e.alerts != sorted(a.rule for a in n.alerts):
        return False
    if e.title is not None and e.title != n.title:
        return False
    if e.title_regex is not None and e.title_regex.search(n.title) is None:
        return False
    if e.body is not None and e.body.rstrip("\n") != n.body.rstrip("\n"):
        return False
    if e.body_regex is not None and e.body_regex.search(n.body) is None:
        return False
    if e.kind is not None and e.kind != n.kind:
        return False
    if e.level is not None and e.level != n.escalation_level:
        return False
    return e.sent_at is None or abs(e.sent_at - at) <= _EPS


def _pair(n_exp: int, n_act: int, ok: Any) -> dict[int, int]:
    """A maximum one-to-one pairing of expected to actual items (Kuhn's algorithm):
    expected index -> actual index."""
    adj = [[j for j in range(n_act) if ok(i, j)] for i in range(n_exp)]
    owner: dict[int, int] = {}

    def take(i: int, seen: set[int]) -> bool:
        for j in adj[i]:
            if j in seen:
                continue
            seen.add(j)
            if j not in owner or take(owner[j], seen):
                owner[j] = i
                return True
        return False

    for i in range(n_exp):
        take(i, set())
    return {i: j for j, i in owner.items()}


def _closest(unmatched_exp: list[int], unmatched_act: list[int], score: Any) -> dict[int, int]:
    """Pairs of an unmatched expected item with the unmatched actual item it most
    resembles (same rule or channel at least), to show them side by side."""
    out: dict[int, int] = {}
    free = list(unmatched_act)
    for i in unmatched_exp:
        best = max(free, key=lambda j: score(i, j), default=None)
        if best is not None and score(i, best) > 0:
            out[i] = best
            free.remove(best)
    return out


# -- rendering --------------------------------------------------------------------------------

_NOT_PLAIN = re.compile(r"[{}\[\],#&*!|>'\"`\n\t]|: |:$|^[-?:%@ ]| $")


def _flow(v: Any) -> str:
    """A value as one line of YAML flow style."""
    if isinstance(v, dict):
        return "{" + ", ".join(f"{_flow(k)}: {_flow(x)}" for k, x in v.items()) + "}"
    if isinstance(v, list | tuple):
        return "[" + ", ".join(_flow(x) for x in v) + "]"
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return repr(v)
    s = str(v)
    if s and not _NOT_PLAIN.search(s) and resolve_plain(s) == s:
        return s  # reads back as this very string
    return json.dumps(s, ensure_ascii=False)


def _expected_alert(e: _AlertExpect) -> dict[str, Any]:
    out = {"rule": e.rule, "state": e.state}
    for f in _ALERT_FIELDS[2:]:
        if f in e.raw:
            out[f] = e.raw[f]
    return out


def _actual_alert(a: _Actual, like: _AlertExpect | None = None) -> dict[str, Any]:
    """An actual alert with the fields an expected item gives (all the identity
    otherwise); annotations only those the expected item names."""
    out: dict[str, Any] = {"rule": a.rule, "state": a.state}
    labels = dict(sorted(a.labels.items()))
    if like is None:
        out["labels"] = labels
        out["value"] = a.value
        if "summary" in a.annotations:
            out["annotations"] = {"summary": a.annotations["summary"]}
        for f in ("no_data", "error", "flapping"):
            if getattr(a, f):
                out[f] = True
        return out
    if like.labels is not None:
        shown = {k: a.labels[k] for k in like.labels if k in a.labels}
        out["labels"] = shown if shown == like.labels else labels
    for key in ("annotations", "annotations_regex"):
        names = like.raw.get(key)
        if names is not None:
            out[key] = {k: a.annotations.get(k) for k in names}
    if like.has_value:
        out["value"] = a.value
    if like.severity is not None:
        out["severity"] = a.severity
    for f in like.flags:
        out[f] = getattr(a, f)
    return out


def _expected_note(e: _NoteExpect) -> dict[str, Any]:
    return {f: e.raw[f] for f in _NOTE_FIELDS if f in e.raw}


def _actual_note(at: float, n: Notification, like: _NoteExpect | None = None) -> dict[str, Any]:
    full: dict[str, Any] = {
        "channel": n.channel,
        "status": n.status,
        "alerts": sorted(a.rule for a in n.alerts),
        "kind": n.kind,
        "level": n.escalation_level,
        "sent_at": _offset(at),
        "title": n.title,
        "body": n.body.rstrip("\n"),
    }
    if like is None:
        keys = ["channel", "status", "alerts", "sent_at", "title"]
        if n.kind != "alerts":
            keys.insert(3, "kind")
        if n.escalation_level:
            keys.insert(4, "level")
    else:
        # a regex is shown against the text it was matched with
        keys = [f.removesuffix("_regex") for f in _NOTE_FIELDS if f in like.raw]
        keys = list(dict.fromkeys(keys))
    return {k: full[k] for k in keys}


def _diff(
    expected: list[dict[str, Any]],
    matched: dict[int, int],
    shown_with: dict[int, dict[str, Any]],
    extra: list[dict[str, Any]],
) -> list[str]:
    """Lines of the diff: `  ` both, `- ` expected only, `+ ` actual only; an
    expected item is followed by the actual item it most resembles."""
    lines: list[str] = []
    for i, e in enumerate(expected):
        if i in matched:
            lines.append("  " + _flow(e))
            continue
        lines.append("- " + _flow(e))
        if i in shown_with:
            lines.append("+ " + _flow(shown_with[i]))
    lines += ["+ " + _flow(a) for a in extra]
    return lines


def _alert_score(e: _AlertExpect, a: _Actual) -> int:
    if e.rule != a.rule:
        return 0
    score = 10
    if e.labels is None or all(a.labels.get(k) == v for k, v in e.labels.items()):
        score += 5
    score += e.state == a.state
    return score


def _check_alerts(sim: _Sim, chk: _AlertCheck) -> Failure | None:
    states = {"pending", "firing"} | {e.state for e in chk.expect}
    actual = [
        a
        for a in sim.actual_alerts()
        if a.state in states and (chk.rules is None or a.rule in chk.rules)
    ]
    exp = chk.expect
    matched = _pair(len(exp), len(actual), lambda i, j: _alert_matches(exp[i], actual[j]))
    if len(matched) == len(exp) == len(actual):
        return None
    used = set(matched.values())
    miss = [i for i in range(len(exp)) if i not in matched]
    left = [j for j in range(len(actual)) if j not in used]
    near = _closest(miss, left, lambda i, j: _alert_score(exp[i], actual[j]))
    shown = {i: _actual_alert(actual[j], exp[i]) for i, j in near.items()}
    extra = [_actual_alert(actual[j]) for j in left if j not in near.values()]
    line = exp[miss[0]].line if miss else chk.line
    parts = []
    if miss:
        parts.append(f"{len(miss)} expected alert(s) not found")
    if left:
        parts.append(f"{len(left)} unexpected alert(s)")
    wall = sim.case.start + chk.at
    return Failure(
        file=sim.tf.path,
        line=line,
        test=sim.case.name,
        kind="alerts",
        message="alerts differ: " + ", ".join(parts) + " (- expected, + actual)",
        at=chk.at,
        wall=wall,
        diff=_diff([_expected_alert(e) for e in exp], matched, shown, extra),
        expected=[_expected_alert(e) for e in exp],
        actual=[_actual_alert(a) for a in actual],
    )


def _note_score(e: _NoteExpect, at: float, n: Notification) -> int:
    """How much a sent notification resembles an expected one: the same alerts
    first (a wrong channel is a routing mistake), then the same channel."""
    same_alerts = e.alerts is not None and e.alerts == sorted(a.rule for a in n.alerts)
    same_channel = e.channel == n.channel
    if not (same_alerts or same_channel):
        return 0
    return 10 * same_alerts + 5 * same_channel + (e.status is None or e.status == n.status)


def _check_notes(sim: _Sim, chk: _NoteCheck, since: float | None) -> Failure | None:
    sent = [
        (at, n)
        for at, n in sim.result.notifications
        if (since is None or at > since + _EPS) and at <= chk.at + _EPS
    ]
    exp = chk.expect
    matched = _pair(len(exp), len(sent), lambda i, j: _note_matches(exp[i], *sent[j]))
    if len(matched) == len(exp) == len(sent):
        return None
    used = set(matched.values())
    miss = [i for i in range(len(exp)) if i not in matched]
    left = [j for j in range(len(sent)) if j not in used]
    near = _closest(miss, left, lambda i, j: _note_score(exp[i], *sent[j]))
    shown = {i: _actual_note(*sent[j], exp[i]) for i, j in near.items()}
    extra = [_actual_note(*sent[j]) for j in left if j not in near.values()]
    line = exp[miss[0]].line if miss else chk.line
    parts = []
    if miss:
        parts.append(f"{len(miss)} expected notification(s) not sent")
    if left:
        parts.append(f"{len(left)} unexpected notification(s)")
    window = f"after {_offset(since)}" if since is not None else "from the start"
    return Failure(
        file=sim.tf.path,
        line=line,
        test=sim.case.name,
        kind="notifications",
        message=f"notifications {window} differ: " + ", ".join(parts) + " (- expected, + actual)",
        at=chk.at,
        wall=sim.case.start + chk.at,
        diff=_diff([_expected_note(e) for e in exp], matched, shown, extra),
        expected=[_expected_note(e) for e in exp],
        actual=[_actual_note(*s) for s in sent],
    )


# -- running --------------------------------------------------------------------------------


def _run_case(tf: _TestFile, case: _Case) -> CaseResult:
    result = CaseResult(tf.path, case.name, case.line)
    sim = _Sim(tf, case, result)
    checks: list[tuple[float, int, Any]] = [(c.at, 0, c) for c in case.alerts]
    checks += [(c.at, 1, c) for c in case.notifications]
    checks.sort(key=lambda x: (x[0], x[1]))
    since: float | None = None
    for at, kind, chk in checks:
        sim.advance(at)
        if kind == 0:
            f = _check_alerts(sim, chk)
        else:
            f = _check_notes(sim, chk, since)
            since = chk.at
        if f is not None:
            result.failures.append(f)
    for msg, (wall, _) in sim.template_errors.items():
        result.failures.append(
            Failure(
                file=tf.path,
                line=case.line,
                test=case.name,
                kind="template",
                message=f"a template failed to render ({msg})",
                at=sim._at(wall),
                wall=wall,
            )
        )
    return result


def run_file(path: str, *, loader: _Loader | None = None) -> FileResult:
    """Load and run one test file."""
    tf, problems = (loader or _Loader()).load(path)
    out = FileResult(path, problems)
    if tf is not None:
        out.cases = [_run_case(tf, c) for c in tf.cases]
    return out


def test_files(paths: Iterable[str]) -> tuple[list[str], list[Problem]]:
    """The test files named by `paths`: files as given, folders searched
    recursively for *.yaml / *.yml."""
    out: list[str] = []
    problems: list[Problem] = []
    for p in paths:
        if os.path.isdir(p):
            found: list[str] = []
            for root, dirs, names in os.walk(p):
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                found += [os.path.join(root, n) for n in names if n.endswith(_SUFFIXES)]
            if not found:
                problems.append(Problem(p, 0, 0, "no test files (*.yaml) in this folder"))
            out += sorted(found)
        elif os.path.isfile(p):
            out.append(p)
        else:
            problems.append(Problem(p, 0, 0, "no such file or folder"))
    return out, problems


test_files.__test__ = False  # type: ignore[attr-defined]  # not a pytest test


def run_files(paths: Iterable[str], *, jobs: int = 1) -> tuple[list[FileResult], list[Problem]]:
    """Run every test file named by `paths` (files or folders); problems with the
    paths themselves are returned apart.

    With `jobs` > 1 and enough files (two a process at least, so that starting one
    pays off), up to that many forked processes run the files, each from the state
    this process has (nothing is re-imported); results come back in file order,
    but their cases carry no `notifications` (those hold live objects that do not
    pickle): failures and events are all there."""
    files, problems = test_files(paths)
    jobs = min(jobs, len(files) // 2)
    if jobs > 1 and _can_fork():
        import multiprocessing

        with multiprocessing.get_context("fork").Pool(jobs) as pool:
            # one file at a time: files differ in size, so workers take the next free one
            return pool.map(_run_in_worker, files, chunksize=1), problems
    loader = _Loader()
    return [run_file(f, loader=loader) for f in files], problems


def _can_fork() -> bool:
    import multiprocessing

    return "fork" in multiprocessing.get_all_start_methods()


_worker_loader: _Loader | None = None


def _run_in_worker(path: str) -> FileResult:
    global _worker_loader
    if _worker_loader is None:  # one per worker process: it caches the files it loaded
        _worker_loader = _Loader()
    result = run_file(path, loader=_worker_loader)
    for case in result.cases:
        case.notifications = []
    return result


def step_values(path: str, test: str | None = None) -> tuple[float, list[dict[str, Any]]]:
    """The evaluation interval and the collector values of every step of a test of
    `path` (the first, or the one named `test`) up to its last assertion: what a
    real daemon must be fed to see the same series. Raises ValueError when the
    file is invalid or has no such test."""
    tf, problems = _Loader().load(path)
    if tf is None:
        raise ValueError("; ".join(p.format() for p in problems))
    for case in tf.cases:
        if test is None or case.name == test:
            sim = _Sim(tf, case, CaseResult(path, case.name, case.line))
            steps = int(case.end / tf.interval + _EPS) + 1
            return tf.interval, [sim._values(i) for i in range(steps)]
    raise ValueError(f"{path}: no test named {test!r}")


def predict(path: str, test: str | None = None) -> list[Transition]:
    """The alert events (pending, firing, resolved, inactive, marks) the daemon
    would journal for a test of `path` (the first, or the one named `test`), in
    order, with their times since the test's start. Raises ValueError when the
    file is invalid or has no such test."""
    result = run_file(path)
    if result.problems:
        raise ValueError("; ".join(p.format() for p in result.problems))
    for c in result.cases:
        if test is None or c.name == test:
            return c.transitions()
    raise ValueError(f"{path}: no test named {test!r}")


# -- formatting helpers -----------------------------------------------------------------------


def _offset(t: float | None) -> str:
    """Seconds since the start as a duration: 2m30s, 1.2s, 200ms."""
    if t is None:
        return "-"
    if 0 < t < 1:
        return f"{round(t * 1000, 3):g}ms"
    return format_duration(round(t, 6))


def _iso(t: float | None) -> str:
    if t is None:
        return "-"
    text = iso(t) or "-"
    return text.replace(".000Z", "Z")

"""Records have types (issue 15.4): every exception of engine/ sits in the one tree
of engine/errors.py, every journal event kind the code writes has a TypedDict in
engine/common/records.py, and events made by the real code paths (evaluator,
notification pipeline, journal writer) carry exactly what their type says."""

from __future__ import annotations

import ast
import glob
import importlib
import types
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints, is_typeddict

import pytest

from engine.common.records import (
    AlertEventKind,
    AuditEvent,
    JournalEvent,
    StoredAlert,
    event_types,
)
from engine.config.model import LogConfig
from engine.errors import VigilError
from engine.journal.journal import Journal
from engine.journal.reader import iter_events
from engine.journal.store import fold_event, initial_state
from engine.ruletest import ruletest

ROOT = Path(__file__).resolve().parents[3]
ENGINE = ROOT / "engine"
ENVELOPE = {"v", "seq", "ts", "crc"}  # the journal's own fields (engine/journal/lines.py)


def _module(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _trees() -> Iterator[tuple[Path, ast.Module]]:
    for path in sorted(ENGINE.rglob("*.py")):
        yield path, ast.parse(path.read_text(), str(path))


# -- one exception tree -------------------------------------------------------------------


def _classes(body: list[ast.stmt], prefix: tuple[str, ...]) -> Iterator[tuple[str, ...]]:
    """Attribute paths of the classes defined at module level and inside classes."""
    for node in body:
        if isinstance(node, ast.ClassDef):
            yield (*prefix, node.name)
            yield from _classes(node.body, (*prefix, node.name))


def _exception_like_in_functions(tree: ast.Module) -> list[str]:
    """Classes defined inside functions whose bases look like exceptions: such a
    class cannot be imported to check, so it must not exist."""
    out = []
    for fn in ast.walk(tree):
        if not isinstance(fn, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        for node in ast.walk(fn):
            if isinstance(node, ast.ClassDef):
                names = [ast.unparse(b) for b in node.bases]
                if any(n.endswith(("Error", "Exception", "Exit")) for n in names):
                    out.append(f"{node.name}({', '.join(names)}) at line {node.lineno}")
    return out


def test_every_exception_class_of_engine_derives_from_vigil_error() -> None:
    outside: list[str] = []
    seen: list[type] = []
    for path, tree in _trees():
        name = _module(path)
        mod = importlib.import_module(name)
        for attrs in _classes(tree.body, ()):
            obj: Any = mod
            for a in attrs:
                obj = getattr(obj, a)
            if isinstance(obj, type) and issubclass(obj, BaseException):
                seen.append(obj)
                if not issubclass(obj, VigilError):
                    bases = ", ".join(b.__name__ for b in obj.__bases__)
                    outside.append(f"{name}.{'.'.join(attrs)}({bases})")
        outside += [f"{name}: {c}" for c in _exception_like_in_functions(tree)]
    assert not outside, "exceptions outside engine/errors.py's tree:\n" + "\n".join(outside)
    # the walk sees the package's exceptions, the ones that stood outside among them
    names = {c.__name__ for c in seen}
    assert {"RequestError", "WireError", "YamlError", "ApiError", "Unauthorized"} <= names
    assert {"SeriesError", "MatcherError", "BadLine", "LoadTimeout", "JournalFatal"} <= names


def test_errors_py_documents_every_class_of_the_tree() -> None:
    doc = importlib.import_module("engine.errors").__doc__ or ""
    missing = []
    for path, tree in _trees():
        for attrs in _classes(tree.body, ()):
            obj: Any = importlib.import_module(_module(path))
            for a in attrs:
                obj = getattr(obj, a)
            if isinstance(obj, type) and issubclass(obj, VigilError) and obj.__name__ not in doc:
                missing.append(f"{_module(path)}.{obj.__name__}")
    assert not missing, missing


def test_reparented_exceptions_keep_their_builtin_bases() -> None:
    # every `except ValueError` / `except OSError` that caught them still does
    from engine.common.address_policy import Unresolved
    from engine.common.matchers import MatcherError
    from engine.httpclient.transport import InvalidURL, RequestError
    from engine.ruletest.series import SeriesError

    for cls in (MatcherError, SeriesError, RequestError, InvalidURL):
        assert issubclass(cls, ValueError) and issubclass(cls, VigilError), cls
    assert issubclass(Unresolved, OSError) and issubclass(Unresolved, VigilError)


# -- every event kind has a type -------------------------------------------------------------


def _kinds_of(value: ast.expr) -> set[str]:
    if isinstance(value, ast.Constant) and isinstance(value.value, str):
        return {value.value}
    if isinstance(value, ast.IfExp):
        return _kinds_of(value.body) | _kinds_of(value.orelse)
    return set()


def _written_kinds() -> dict[str, str]:
    """Every `"event": "<kind>"` of a dict literal in engine/ -> where it is."""
    out: dict[str, str] = {}
    for path, tree in _trees():
        for node in ast.walk(tree):
            if not isinstance(node, ast.Dict):
                continue
            for k, v in zip(node.keys, node.values, strict=True):
                if isinstance(k, ast.Constant) and k.value == "event":
                    for kind in _kinds_of(v):
                        out.setdefault(kind, f"{path.relative_to(ROOT)}:{node.lineno}")
    return out


def test_every_event_kind_written_in_engine_has_a_typed_dict() -> None:
    written = _written_kinds()
    # the walker sees the literals of the daemon, the pipeline and the control paths
    assert {"notified", "acknowledged", "silence_created", "collector_down", "started"} <= set(
        written
    )
    # the state machine's kinds are written through a variable (Transition.as_journal)
    kinds = set(written) | set(get_args(AlertEventKind))
    missing = {k: written.get(k, "engine/rules/state.py") for k in kinds - set(event_types())}
    assert not missing, f"event kinds without a TypedDict in engine/common/records.py: {missing}"


def test_each_kind_has_exactly_one_type() -> None:
    kinds = event_types()
    assert len(kinds) >= 15
    per_type: dict[type, set[str]] = {}
    for kind, td in kinds.items():
        per_type.setdefault(td, set()).add(kind)
    assert set(per_type) == set(get_args(JournalEvent))


# -- events of the real code paths conform -------------------------------------------------


def _type_errors(value: Any, hint: Any, where: str) -> list[str]:
    """Where `value` (decoded JSON) does not have type `hint` (a records.py annotation)."""
    origin, args = get_origin(hint), get_args(hint)
    if hint is Any:
        return []
    if origin is Literal:
        return [] if value in args else [f"{where}: {value!r} not one of {args}"]
    if origin in (Union, types.UnionType):
        fits = any(not _type_errors(value, a, where) for a in args)
        return [] if fits else [f"{where}: {value!r} is not {hint}"]
    if hint is type(None):
        return [] if value is None else [f"{where}: {value!r} is not None"]
    if is_typeddict(hint):
        return record_errors(value, hint, where)
    if origin is list:
        if not isinstance(value, list):
            return [f"{where}: {value!r} is not a list"]
        return [e for i, v in enumerate(value) for e in _type_errors(v, args[0], f"{where}[{i}]")]
    if origin is dict:
        if not isinstance(value, dict):
            return [f"{where}: {value!r} is not an object"]
        return [e for k, v in value.items() for e in _type_errors(v, args[1], f"{where}.{k}")]
    if hint is float:  # JSON writes 3.0 as 3
        ok = isinstance(value, int | float) and not isinstance(value, bool)
    elif hint is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    else:
        ok = isinstance(value, hint)
    return [] if ok else [f"{where}: {value!r} is not {hint.__name__}"]


def record_errors(rec: Any, td: Any, where: str, *, open_: bool = False) -> list[str]:
    if not isinstance(rec, Mapping):
        return [f"{where}: {rec!r} is not an object"]
    hints = get_type_hints(td)
    errors = [f"{where}: no {k!r}" for k in sorted(td.__required_keys__ - set(rec))]
    if not open_:
        errors += [f"{where}: {k!r} is not in {td.__name__}" for k in sorted(set(rec) - set(hints))]
    for k, v in rec.items():
        if k in hints:
            errors += _type_errors(v, hints[k], f"{where}.{k}")
    return errors


def event_errors(ev: Mapping[str, Any]) -> list[str]:
    """What is wrong with one journal event (envelope stripped) against its type."""
    td = event_types().get(ev.get("event", ""))
    if td is None:
        return [f"{ev.get('event')!r} has no type"]
    body = {k: v for k, v in ev.items() if k not in ENVELOPE}
    return record_errors(body, td, str(ev.get("event")), open_=td is AuditEvent)


RULES = """
group: app
interval: 1m
rules:
  - id: queue_deep
    expr: app.queue > 100
    severity: critical
    labels: {team: ops}
    annotations: {summary: "queue at {{ value }}", broken: "{{ value // 0 }}"}
  - id: wobbly
    expr: app.wobble > 0
    flapping: {window: 10m, max_changes: 3}
"""

CHANNELS = """
channels:
  - {name: pager, type: log}
routes:
  - channels: [pager]
    group_wait: 0s
    repeat_interval: 2m
    escalate: [{after: 2m, channels: [pager]}]
"""

CASE = """
tests:
  - name: queue fires, escalates and resolves; wobble flaps
    series:
      app.queue: "50 150x5 50"
      app.wobble: "0 1 0 1 0 1 0 1"
    alerts: [{at: 10m, expect: []}]  # the run lasts to here; what it finds is not the point
"""


def _sample_events(tmp: Path) -> list[dict[str, Any]]:
    """The journal events `vigil test` makes: the evaluator's transitions with
    rendered annotations, the pipeline's marks and escalations, `notified`."""
    (tmp / "rules.yaml").write_text(RULES)
    (tmp / "channels.yaml").write_text(CHANNELS)
    (tmp / "t.yaml").write_text("rule_files: [rules.yaml]\nchannel_files: [channels.yaml]\n" + CASE)
    out: list[dict[str, Any]] = []
    files = [str(tmp / "t.yaml"), *sorted(glob.glob(str(ROOT / "rules/tests/*.yaml")))]
    for f in files:
        result = ruletest.run_file(f)
        assert not result.problems, [p.format() for p in result.problems]
        for case in result.cases:
            out += [{k: v for k, v in e.items() if k != "at"} for e in case.events]
    return out


@pytest.mark.timeout(120)
def test_events_of_the_evaluator_and_the_pipeline_match_their_types(tmp_path: Path) -> None:
    events = _sample_events(tmp_path)
    kinds = {e["event"] for e in events}
    # the sample covers the state machine, marks, escalation and delivery records
    assert {"pending", "firing", "resolved", "notified", "escalated"} <= kinds, kinds
    assert {"flapping", "template_failed", "silenced", "inhibited", "silence_expired"} <= kinds
    errors = [e for ev in events for e in event_errors(ev)]
    assert not errors, "\n".join(errors[:30])


def test_the_journal_writes_a_typed_event_as_envelope_plus_its_fields(tmp_path: Path) -> None:
    from engine.notify.base import AlertView, Notification
    from engine.notify.dedup import notified_event

    alert = AlertView("fp1", "queue_deep", "resolved", "critical", {}, {}, 3, 1.0, 2.0)
    n = Notification("pager", "{}:{}", "resolved", (alert,), "k1", "t", "b")
    j = Journal(str(tmp_path), LogConfig())
    j.open()
    try:
        ev = notified_event("pager", n, ok=False, attempts=3, error="503")
        [stamped] = j.append_sync([ev])
    finally:
        j.close_sync()
    [read] = list(iter_events(str(tmp_path)))
    # the envelope first, then the event's fields in its builder's order (SPEC §3)
    assert [k for k in read if k != "crc"] == ["v", "seq", "ts", *ev]
    assert {k: v for k, v in read.items() if k not in ENVELOPE} == dict(ev)
    assert ev["error"] == "503" and ev["resolved"] == ["fp1"]
    assert not event_errors(read) and not event_errors(stamped)


def test_the_stored_alert_folded_from_sample_events_matches_its_type(tmp_path: Path) -> None:
    state = initial_state()
    alerts: list[Any] = []
    for seq, ev in enumerate(_sample_events(tmp_path), 1):
        fold_event(state, {**ev, "v": 1, "seq": seq, "ts": "2026-12-01T00:00:00.000Z"})
        alerts += list(state["alerts"].values())
    assert alerts
    errors = [e for a in alerts for e in record_errors(a, StoredAlert, "alert")]
    assert not errors, "\n".join(errors[:30])


def test_the_checker_sees_a_wrong_event() -> None:
    # guards the checker itself, or the tests above would pass vacuously
    good = {"event": "collector_down", "collector": "app", "error": "boom"}
    assert not event_errors(good)
    assert event_errors({**good, "extra": 1}) == [
        "collector_down: 'extra' is not in CollectorDownEvent"
    ]
    assert event_errors({"event": "collector_down", "collector": "app"}) == [
        "collector_down: no 'error'"
    ]
    assert event_errors({**good, "collector": 3})
    assert event_errors({"event": "nosuchkind"}) == ["'nosuchkind' has no type"]

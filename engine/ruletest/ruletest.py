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

This module is the runner and the package's public entry points: `run_file`,
`run_files` (what the command prints), `predict` (the transitions the daemon
would journal) and `step_values` (the collector values of each step), for
comparing with a real daemon. The parts, one concept each: clock.py (the
simulated clock), model.py / parser.py / loader.py (the test file), simulation.py
(the daemon's parts on that clock), matching.py / diff.py / checks.py (the
assertions), results.py (what a run gives). Test files are validated with
schemas/ruletest.schema.json; every problem is a Problem with file:line:col,
like `vigil validate`.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

from engine.errors import Problem
from engine.ruletest.checks import check_alerts, check_notes
from engine.ruletest.clock import EPS
from engine.ruletest.loader import Loader
from engine.ruletest.model import SUFFIXES, Case, TestFile
from engine.ruletest.results import CaseResult, Failure, FileResult, Transition
from engine.ruletest.simulation import Simulation

__all__ = [
    "predict",
    "run_file",
    "run_files",
    "step_values",
    "test_files",
]


def _run_case(tf: TestFile, case: Case) -> CaseResult:
    result = CaseResult(tf.path, case.name, case.line)
    sim = Simulation(tf, case, result)
    checks: list[tuple[float, int, Any]] = [(c.at, 0, c) for c in case.alerts]
    checks += [(c.at, 1, c) for c in case.notifications]
    checks.sort(key=lambda x: (x[0], x[1]))
    since: float | None = None
    for at, kind, chk in checks:
        sim.advance(at)
        if kind == 0:
            f = check_alerts(sim, chk)
        else:
            f = check_notes(sim, chk, since)
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
                at=sim.since_start(wall),
                wall=wall,
            )
        )
    return result


def run_file(path: str, *, loader: Loader | None = None) -> FileResult:
    """Load and run one test file."""
    tf, problems = (loader or Loader()).load(path)
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
                found += [os.path.join(root, n) for n in names if n.endswith(SUFFIXES)]
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
    loader = Loader()
    return [run_file(f, loader=loader) for f in files], problems


def _can_fork() -> bool:
    import multiprocessing

    return "fork" in multiprocessing.get_all_start_methods()


_worker_loader: Loader | None = None


def _run_in_worker(path: str) -> FileResult:
    global _worker_loader
    if _worker_loader is None:  # one per worker process: it caches the files it loaded
        _worker_loader = Loader()
    result = run_file(path, loader=_worker_loader)
    for case in result.cases:
        case.notifications = []
    return result


def step_values(path: str, test: str | None = None) -> tuple[float, list[dict[str, Any]]]:
    """The evaluation interval and the collector values of every step of a test of
    `path` (the first, or the one named `test`) up to its last assertion: what a
    real daemon must be fed to see the same series. Raises ValueError when the
    file is invalid or has no such test."""
    tf, problems = Loader().load(path)
    if tf is None:
        raise ValueError("; ".join(p.format() for p in problems))
    for case in tf.cases:
        if test is None or case.name == test:
            sim = Simulation(tf, case, CaseResult(path, case.name, case.line))
            steps = int(case.end / tf.interval + EPS) + 1
            return tf.interval, [sim.values_at(i) for i in range(steps)]
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

"""`vigil test FILE... [--format text|json|github] [-v]`: rule unit tests.

Exit 0 when every test passed, 1 when a test failed, 2 when a test file (or a
rule or channel file it names) is invalid or a path does not exist.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any, TextIO

from engine.errors import Problem


def register(sub: Any) -> None:
    p = sub.add_parser(
        "test",
        help="run rule unit tests: series in, expected alerts and notifications out",
        description="Run rule unit tests (see docs/rules-as-code.md). Exit 0 all passed, "
        "1 a test failed, 2 a test file is invalid.",
    )
    p.add_argument(
        "paths", nargs="+", metavar="FILE", help="test files, or folders of them (*.yaml)"
    )
    p.add_argument("--format", choices=("text", "json", "github"), default="text")
    p.add_argument("-v", "--verbose", action="store_true", help="list every test")
    p.add_argument(
        "-j",
        "--jobs",
        type=int,
        default=0,
        metavar="N",
        help="run test files in N processes (default: one per CPU; 1: in this process)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from engine.ruletest.ruletest import run_files

    results, path_problems = run_files(args.paths, jobs=args.jobs or _cpus())
    problems = sorted(path_problems + [p for r in results for p in r.problems])
    cases = [c for r in results for c in r.cases]
    failed = [c for c in cases if not c.passed]
    if args.format == "json":
        _json(results, problems, sys.stdout)
    elif args.format == "github":
        _github(results, problems, sys.stdout)
    else:
        _text(results, problems, sys.stdout, sys.stderr, verbose=args.verbose)
    if problems:
        return 2
    return 1 if failed else 0


def _cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))  # the CPUs this process may use
    except AttributeError:  # not on every platform
        return os.cpu_count() or 1


def _color(stream: TextIO) -> bool:
    return stream.isatty() and "NO_COLOR" not in os.environ and os.environ.get("TERM") != "dumb"


def _paint(line: str, on: bool) -> str:
    if not on:
        return line
    code = {"- ": "31", "+ ": "32"}.get(line[:2])
    return f"\x1b[{code}m{line}\x1b[0m" if code else line


def _text(
    results: list[Any], problems: list[Problem], out: TextIO, err: TextIO, *, verbose: bool
) -> None:
    color = _color(out)
    for p in problems:
        print(p.format(), file=err)
    for r in results:
        for c in r.cases:
            if verbose and c.passed:
                print(f'{c.file}:{c.line}: ok "{c.name}"', file=out)
            for f in c.failures:
                print(f.headline(), file=out)
                for line in f.diff:
                    print("  " + _paint(line, color), file=out)
        if r.cases:
            n, bad = len(r.cases), len(r.failed)
            tail = f"{bad} of {n} tests failed" if bad else f"{n} tests passed"
            print(f"{r.file}: {tail}", file=out)
    cases = [c for r in results for c in r.cases]
    failed = [c for c in cases if not c.passed]
    files = len(results)
    if problems:
        bad_files = len({p.file for p in problems})
        print(f"{len(problems)} problem(s) in {bad_files} file(s)", file=err)
    if failed:
        print(f"FAILED: {len(failed)} of {len(cases)} tests in {files} file(s)", file=out)
    elif not problems:
        print(f"ok: {len(cases)} tests in {files} file(s) passed", file=out)


def _json(results: list[Any], problems: list[Problem], out: TextIO) -> None:
    cases = [c for r in results for c in r.cases]
    doc = {
        "passed": not problems and all(c.passed for c in cases),
        "files": len(results),
        "tests": len(cases),
        "failed": sum(1 for c in cases if not c.passed),
        "problems": [p.as_dict() for p in problems],
        "results": [
            {
                "file": c.file,
                "name": c.name,
                "line": c.line,
                "passed": c.passed,
                "failures": [f.as_dict() for f in c.failures],
            }
            for c in cases
        ],
    }
    json.dump(doc, out, indent=2, default=str)
    out.write("\n")


def _escape(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _github(results: list[Any], problems: list[Problem], out: TextIO) -> None:
    for p in problems:
        msg = (f"{p.path}: " if p.path else "") + p.message
        print(
            f"::error file={p.file},line={max(p.line, 1)},col={max(p.col, 1)}::{_escape(msg)}",
            file=out,
        )
    cases = [c for r in results for c in r.cases]
    for c in cases:
        for f in c.failures:
            head = f.headline().split(": ", 1)[1]  # the file and line are in the annotation
            body = "\n".join([head, *f.diff])
            print(
                f"::error file={f.file},line={f.line},title=vigil test::{_escape(body)}", file=out
            )
    failed = sum(1 for c in cases if not c.passed)
    print(
        f"{len(cases) - failed} of {len(cases)} tests passed in {len(results)} file(s)"
        + (f"; {len(problems)} problem(s)" if problems else ""),
        file=out,
    )

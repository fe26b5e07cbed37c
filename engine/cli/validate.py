"""`vigil validate [PATH...] [--format text|json|github]`."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from engine.config.build import ConfigLoader
from engine.errors import Problem


def register(sub: Any) -> None:
    p = sub.add_parser(
        "validate", help="check config, rules, channels, routes, templates, expressions"
    )
    p.add_argument(
        "paths", nargs="*", metavar="PATH", help="files or folders (default: from vigil.yaml)"
    )
    p.add_argument("-c", "--config", help="vigil.yaml to use (default: ./vigil.yaml if present)")
    p.add_argument("--format", choices=("text", "json", "github"), default="text")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    result = ConfigLoader().load(args.config, args.paths)
    print_problems(result.problems, args.format, checked=len(result.files))
    if result.problems:
        return 1
    if args.format == "text" and result.config is not None:
        c = result.config
        n_rules = sum(len(g.rules) for g in c.groups)
        print(
            f"ok: {len(result.files)} files, {len(c.groups)} groups, {n_rules} rules, "
            f"{len(c.channels)} channels, {len(c.routes)} routes"
        )
    return 0


def print_problems(problems: list[Problem], fmt: str, *, checked: int = 0) -> None:
    if fmt == "json":
        json.dump(
            {"valid": not problems, "files": checked, "problems": [p.as_dict() for p in problems]},
            sys.stdout,
            indent=2,
        )
        sys.stdout.write("\n")
        return
    for p in problems:
        if fmt == "github":
            msg = (f"{p.path}: " if p.path else "") + p.message
            msg = msg.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
            print(f"::error file={p.file},line={max(p.line, 1)},col={max(p.col, 1)}::{msg}")
        else:
            print(p.format(), file=sys.stderr)
    if problems and fmt == "text":
        files = len({p.file for p in problems})
        print(f"{len(problems)} problem(s) in {files} file(s)", file=sys.stderr)

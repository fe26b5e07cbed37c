"""`vigil run [-c vigil.yaml] [--once] [--dry-run]`: the daemon."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from typing import Any

from engine.errors import ConfigError, JournalError


def register(sub: Any) -> None:
    p = sub.add_parser("run", help="run the daemon")
    p.add_argument(
        "-c", "--config", help="vigil.yaml (default: ./vigil.yaml, else deploy/vigil.yaml)"
    )
    p.add_argument("--once", action="store_true", help="one evaluation pass: print states and exit")
    p.add_argument("--dry-run", action="store_true", help="evaluate and journal, send nothing")
    p.add_argument("--log-level", default="info", choices=("debug", "info", "warning", "error"))
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(
        level=args.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    from engine.app import App, load_or_fail

    try:
        config, loader = load_or_fail(args.config)
    except ConfigError as e:
        for p in e.problems:
            print(p.format(), file=sys.stderr)
        print(
            f"vigil: configuration invalid ({len(e.problems)} problem(s)); not starting",
            file=sys.stderr,
        )
        return 1
    app = App(config, loader=loader, dry_run=args.dry_run)
    if args.once:
        alerts = asyncio.run(app.once())
        _print_once(app, alerts)
        return 0
    try:
        app.open_journal()
    except JournalError as e:
        print(f"vigil: {e}", file=sys.stderr)
        return 1
    return asyncio.run(app.run())


def _print_once(app: Any, alerts: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    by_rule: dict[str, list[Any]] = {}
    for a in alerts.values():
        by_rule.setdefault(a.rule_id, []).append(a)
    table = Table(title="vigil --once: one evaluation pass")
    for col in ("group", "rule", "severity", "state", "labels", "value"):
        table.add_column(col)
    for g in app.config.groups:
        for r in g.rules:
            items = by_rule.get(r.id) or [None]
            for a in items:
                state = a.state if a else "inactive"
                mark = (
                    " (no data)"
                    if a and a.no_data
                    else f" (error: {a.error})"
                    if a and a.error
                    else ""
                )
                labels = ", ".join(
                    f"{k}={v}" for k, v in sorted((a.labels if a else r.labels).items())
                )
                value = (
                    ""
                    if a is None or a.value is None
                    else f"{a.value:.4g}"
                    if isinstance(a.value, float)
                    else str(a.value)
                )
                table.add_row(g.name, r.id, r.severity, state + mark, labels, value)
    down = ", ".join(f"{n}: {e}" for n, e in app.hub.down.items())
    console = Console()
    console.print(table)
    if down:
        console.print(f"collectors down: {down}")

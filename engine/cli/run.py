"""`vigil run [-c vigil.yaml] [--once] [--dry-run]`: the daemon."""

from __future__ import annotations

import argparse
import asyncio
import logging
import logging.handlers
import sys
from queue import SimpleQueue
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


SWITCH_INTERVAL = 0.0005  # seconds a thread may hold the GIL while another waits


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(
        level=args.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    listener = _log_from_a_thread()
    # one line per job run is noise at info level
    # (and the daemon reports skipped runs itself, rate-limited)
    logging.getLogger("apscheduler").setLevel(max(logging.ERROR, logging.getLogger().level))
    # nor is one line per HTTP probe (httpx logs each request at info); a probe
    # that fails is reported by the collector itself
    logging.getLogger("httpx").setLevel(max(logging.WARNING, logging.getLogger().level))
    from engine.daemon.app import App, load_or_fail

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
    # the channels send from a child process (engine/delivery/sender_process.py):
    # a burst's sends then take no CPU from the evaluation loop
    app = App(config, loader=loader, dry_run=args.dry_run, sender_process=not args.once)
    if args.once:
        _print_once(app, asyncio.run(app.once()))
        return 0
    try:
        app.open_journal()
    except JournalError as e:
        print(f"vigil: {e}", file=sys.stderr)
        return 1
    # The event loop shares the GIL with the journal's, the collectors' and the
    # log's threads: one of them running Python would keep a due tick waiting up
    # to the switch interval (5 ms by default) before the loop gets the GIL back,
    # and a busy loop gives it up at every iteration's select(). 0.5 ms, not 1:
    # with logtail at 10,000 lines/s, ticks were up to 10.7 ms late (1 of 9 runs
    # of bench/logtail.py --no-throughput --no-latency), at most 8.9 with 0.5 ms.
    sys.setswitchinterval(SWITCH_INTERVAL)
    try:
        return asyncio.run(app.run())
    finally:
        listener.stop()  # what is queued is written before the process ends


def _log_from_a_thread() -> logging.handlers.QueueListener:
    """Log records are queued by the event loop and written by a thread: a write
    to a slow disk or a full pipe (journald under load) must not stall the loop
    that runs the evaluation ticks. Records are formatted when logged."""
    root = logging.getLogger()
    handlers = list(root.handlers)
    queue: SimpleQueue[logging.LogRecord] = SimpleQueue()
    for h in handlers:
        root.removeHandler(h)
    root.addHandler(logging.handlers.QueueHandler(queue))
    listener = logging.handlers.QueueListener(queue, *handlers, respect_handler_level=True)
    listener.start()
    return listener


def _print_once(app: Any, rows: list[Any]) -> None:
    from engine.cli.tables import Rows

    table = Rows("group", "rule", "severity", "state", "labels", "value")
    for rule, labels, value, state in rows:
        shown = "" if value is None else f"{value:.4g}" if isinstance(value, float) else str(value)
        table.add_row(
            rule.group,
            rule.id,
            rule.severity,
            state,
            ", ".join(f"{k}={v}" for k, v in sorted(labels.items())),
            shown,
        )
    table.show(title="vigil run --once: one evaluation pass")
    for name, error in app.hub.down.items():
        print(f"collector {name} is down: {error}")

"""`vigil report`: incidents, MTTA/MTTR, noise, interruptions and availability
from the journal, as HTML, Markdown, JSON or CSV (engine/report/).

Reads the journal directly (lock-free, beside a running daemon). The config, when
there is one, gives data_dir, the time intervals (off-hours, sleep-hours,
maintenance) and which rules check HTTP targets.
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import time
from collections.abc import Mapping

from engine.common.durations import parse_duration
from engine.config.model import Config, TimeInterval
from engine.errors import VigilError
from engine.journal.format import parse_ts
from engine.report.build import FORMATS, make_report, render
from engine.report.deliver import http_rules
from engine.report.metrics import Options

DAY = 86400.0
DEFAULT_INTERVALS = {
    "off_hours": "off_hours",
    "sleep_hours": "sleep_hours",
    "maintenance": "maintenance",
}


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "report",
        help="incidents, MTTA/MTTR, noise and availability from the journal",
        description="A report of the journal's period [until - since, until): per rule, route "
        "and team. The same journal and arguments give the same bytes (pin --until).",
    )
    p.add_argument(
        "--since",
        default="7d",
        metavar="WHEN",
        help="a duration before --until (7d) or an ISO time; default 7d",
    )
    p.add_argument("--until", metavar="WHEN", help="an ISO time, or a duration ago; default now")
    p.add_argument("--format", choices=FORMATS, help="default: from -o's extension, else md")
    p.add_argument("-o", "--output", metavar="FILE", help="write here (default: stdout)")
    p.add_argument(
        "-c", "--config", metavar="FILE", help="vigil.yaml (default: ./vigil.yaml if it exists)"
    )
    p.add_argument(
        "--data-dir", metavar="DIR", help="the journal directory (default: the config's data_dir)"
    )
    p.add_argument(
        "--top", type=int, default=10, metavar="K", help="noisiest/flapping rules shown (10)"
    )
    p.add_argument(
        "--team-label", default="team", metavar="LABEL", help="the label naming a team (team)"
    )
    p.add_argument(
        "--off-hours",
        metavar="NAME",
        help="time interval of off-hours (default: off_hours if defined)",
    )
    p.add_argument(
        "--sleep-hours",
        metavar="NAME",
        help="time interval of sleep hours (default: sleep_hours if defined)",
    )
    p.add_argument(
        "--maintenance",
        metavar="NAME",
        help="time interval left out of availability (default: maintenance if defined)",
    )
    p.add_argument(
        "--availability-rule",
        action="append",
        default=[],
        metavar="RULE",
        help="a rule whose alerts mean an HTTP target is down (default: rules reading an http collector)",
    )
    p.add_argument(
        "--decimals", type=int, default=3, metavar="N", help="availability's decimals (3)"
    )
    p.add_argument(
        "--no-index",
        action="store_true",
        help="read every journal line, not the rows the daemon's history index keeps",
    )
    p.set_defaults(func=run)


def _moment(text: str, ref: float, what: str) -> float:
    """A duration before `ref`, or an ISO time."""
    try:
        return ref - parse_duration(text)
    except ValueError:
        pass
    try:
        return parse_ts(text.strip())
    except ValueError:
        raise VigilError(
            f"{what} {text!r} is neither a duration (12h, 7d) nor an ISO time (2026-11-22T20:00:00Z)"
        ) from None


def _config(path: str | None) -> Config | None:
    from engine.config.build import ConfigLoader
    from engine.config.build.files import default_config_path

    path = path or default_config_path()
    if path is None:
        return None
    result = ConfigLoader().load(path)
    if result.config is None:
        for problem in result.problems:
            print(problem.format(), file=sys.stderr)
        raise VigilError(f"{path}: configuration invalid; `vigil validate` shows the problems")
    return result.config


def _interval(given: str | None, key: str, intervals: Mapping[str, TimeInterval]) -> str | None:
    if given is not None:
        if given not in intervals:
            known = ", ".join(sorted(intervals)) or "none are defined"
            raise VigilError(
                f"--{key.replace('_', '-')} {given!r}: no such time interval ({known})"
            )
        return given
    default = DEFAULT_INTERVALS[key]
    return default if default in intervals else None


def run(args: argparse.Namespace) -> int:
    for flag, n in (("--top", args.top), ("--decimals", args.decimals)):
        if n < 0:
            raise VigilError(f"{flag} {n}: expected 0 or more")
    config = _config(args.config)
    if args.data_dir:
        data_dir = args.data_dir
    elif config is not None:
        data_dir = config.data_dir
    else:  # `vigil log`'s lookup (its module brings the journal writer: imported only here)
        from engine.cli.log import data_dir_of

        data_dir = data_dir_of(args)
    if not os.path.isdir(data_dir):
        raise VigilError(f"{data_dir}: no such journal directory; give --data-dir or -c")
    now = time.time()
    until = _moment(args.until, now, "--until") if args.until else float(int(now))
    since = _moment(args.since, until, "--since")
    if since >= until:
        raise VigilError(
            f"--since must come before --until ({args.since!r} ≥ {args.until or 'now'!r})"
        )
    intervals = {i.name: i for i in config.time_intervals} if config is not None else {}
    if args.availability_rule:
        avail, source = tuple(args.availability_rule), "--availability-rule"
    elif config is not None:
        avail, source = http_rules(config), "rules reading an http collector"
    else:
        avail, source = (), "no config: give --availability-rule"
    o = Options(
        since=since,
        until=until,
        top=args.top,
        team_label=args.team_label,
        decimals=args.decimals,
        bucket=3600.0 if until - since <= 2 * DAY else DAY,
        off_hours=_interval(args.off_hours, "off_hours", intervals),
        sleep_hours=_interval(args.sleep_hours, "sleep_hours", intervals),
        maintenance=_interval(args.maintenance, "maintenance", intervals),
        availability_rules=avail,
        availability_source=source,
    )
    fmt = args.format or _format_of(args.output)
    # a year's report allocates a million rows and frees them, none in cycles: the
    # collector would walk them again and again for nothing (~15% of the run)
    gc.disable()
    try:
        report = make_report(data_dir, o, intervals, index=not args.no_index)
    finally:
        gc.enable()
    out = render(report, fmt)
    if args.output:
        with open(args.output, "wb") as f:
            f.write(out)
    else:
        sys.stdout.buffer.write(out)
        sys.stdout.flush()
    return 0


def _format_of(path: str | None) -> str:
    ext = os.path.splitext(path or "")[1].lstrip(".").lower()
    return (
        {"htm": "html", "markdown": "md"}.get(ext, ext)
        if ext in (*FORMATS, "htm", "markdown")
        else "md"
    )

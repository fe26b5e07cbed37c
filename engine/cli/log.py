"""`vigil log verify|repair|compact|tail|query`: the journal, read and mended offline.

Every handler returns an exit code: 0 done, 1 the journal has a problem (or is
locked by a running daemon), 2 a usage error. Errors are one line on stderr.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
import time
from collections.abc import Callable, Iterable
from typing import Any, TextIO

from engine.cli.tables import one_line
from engine.common.durations import format_duration, parse_duration
from engine.config.load import YamlError, load_file
from engine.errors import JournalError, VigilError
from engine.journal.format import format_ts, parse_ts
from engine.journal.journal import DEFAULT_RETENTION
from engine.journal.maintenance import JournalInfo, compact_offline, inspect, repair, verify
from engine.journal.reader import follow_events, iter_events, tail_events

DEFAULT_CONFIG = "vigil.yaml"
DEFAULT_DATA_DIR = "data"
PROG = "vigil log"

Handler = Callable[[argparse.Namespace], int]


class UsageError(VigilError):
    """Bad arguments or configuration: exit code 2. Never leaves a handler."""


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `log` and its subcommands to the `vigil` parser; each sets `func`."""
    p = sub.add_parser(
        "log",
        help="journal maintenance: verify, repair, compact, tail, query",
        description="Read, check and mend the JSONL journal in data_dir. Safe to run "
        "beside the daemon, except repair and compact, which need it stopped.",
    )
    cmds = p.add_subparsers(dest="log_command", metavar="COMMAND", required=True)

    common = argparse.ArgumentParser(add_help=False)
    # SUPPRESS: leave a value set by a top-level option of the same name alone
    common.add_argument(
        "-c",
        "--config",
        default=argparse.SUPPRESS,
        metavar="FILE",
        help=f"read data_dir from this file (default: ./{DEFAULT_CONFIG} if it exists)",
    )
    common.add_argument(
        "--data-dir",
        default=argparse.SUPPRESS,
        metavar="DIR",
        help=f"the journal directory (default: data_dir of the config, else {DEFAULT_DATA_DIR})",
    )
    fmt = argparse.ArgumentParser(add_help=False)
    fmt.add_argument("--format", choices=("text", "json"), default="text", help="output format")

    c = cmds.add_parser(
        "verify",
        parents=[common, fmt],
        help="check every line's checksum and order, and every snapshot",
        description="Check every line and snapshot. Exit 0 when sound, 1 with one "
        "`file:offset: problem` line per problem.",
    )
    c.set_defaults(func=_guard(_verify))

    c = cmds.add_parser(
        "repair",
        parents=[common],
        help="move damaged lines to a quarantine file and rewrite the segments",
        description="Move damaged or out-of-order lines to quarantine-<time>.jsonl and "
        "rewrite the segments without them. The daemon must be stopped.",
    )
    c.set_defaults(func=_guard(_repair))

    c = cmds.add_parser(
        "compact",
        parents=[common],
        help="fold the log into a new snapshot and drop old covered segments",
        description="Fold every event into a new snapshot, keep the two newest "
        "snapshots, and delete segments the snapshot covers that are older than "
        "--retention. The daemon must be stopped.",
    )
    c.add_argument(
        "--retention",
        type=_duration,
        default=DEFAULT_RETENTION,
        metavar="DURATION",
        help="keep covered segments younger than this for reports (default: 30d)",
    )
    c.set_defaults(func=_guard(_compact))

    c = cmds.add_parser(
        "tail",
        parents=[common, fmt],
        help="print the last events, and follow new ones with -f",
    )
    c.add_argument("-n", "--lines", type=_count, default=10, metavar="N", help="default 10")
    c.add_argument("-f", "--follow", action="store_true", help="keep printing new events")
    c.set_defaults(func=_guard(_tail))

    c = cmds.add_parser(
        "query",
        parents=[common, fmt],
        help="print events matching filters",
        description="Print the events that match every filter given, oldest first.",
    )
    c.add_argument(
        "--event",
        action="append",
        default=[],
        metavar="NAME",
        help="event name; repeat or comma-separate for several (e.g. firing,resolved)",
    )
    c.add_argument("--rule", action="append", default=[], metavar="ID", help="rule id")
    c.add_argument("--alert", metavar="ID", help="alert fingerprint, or a prefix of it")
    c.add_argument("--severity", action="append", default=[], metavar="LEVEL")
    c.add_argument("--since", metavar="WHEN", help="a duration ago (1h, 7d) or an ISO time")
    c.add_argument("--until", metavar="WHEN", help="a duration ago (1h, 7d) or an ISO time")
    c.add_argument("--limit", type=_count, metavar="N", help="stop after N events")
    c.set_defaults(func=_guard(_query))


# --------------------------------------------------------------- arguments


def _duration(text: str) -> float:
    try:
        return parse_duration(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _count(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        n = -1
    if n < 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a count; expected 0 or more")
    return n


def data_dir_of(args: argparse.Namespace) -> str:
    """--data-dir, else data_dir from -c FILE or the default config lookup (as
    `vigil run` does: ./vigil.yaml, else deploy/vigil.yaml), else `data`.

    A relative data_dir is relative to the config file that names it, as for the
    daemon.
    """
    from engine.config.build.files import default_config_path

    given = getattr(args, "data_dir", None)
    if given:
        return str(given)
    config = getattr(args, "config", None) or default_config_path()
    if config is None:
        return DEFAULT_DATA_DIR
    try:
        data = load_file(str(config)).data
    except YamlError as e:
        raise UsageError(e.problem.format()) from None
    value = data.get("data_dir", DEFAULT_DATA_DIR)
    if not isinstance(value, str) or not value:
        raise UsageError(f"{config}: data_dir must be a non-empty path, got {value!r}")
    base = os.path.dirname(str(config))
    return value if os.path.isabs(value) or not base else os.path.join(base, value)


def when(text: str, now: float) -> str:
    """A journal timestamp for `1h` (that long before now) or an ISO date/time."""
    try:
        return format_ts(now - parse_duration(text))
    except ValueError:
        pass
    try:
        return format_ts(parse_ts(text.strip()))
    except ValueError:
        raise UsageError(
            f"{text!r} is neither a duration (30m, 1h, 7d) nor an ISO time "
            "(2026-11-22T20:00:00Z, 2026-11-22)"
        ) from None


# ---------------------------------------------------------------- handlers


def _guard(handler: Handler) -> Handler:
    """Turn the errors a person can act on into one stderr line and an exit code."""

    def run(args: argparse.Namespace) -> int:
        name = f"{PROG} {getattr(args, 'log_command', '')}".strip()
        try:
            return handler(args)
        except UsageError as e:
            print(f"{name}: {e}", file=sys.stderr)
            return 2
        except JournalError as e:
            print(f"{name}: {e}", file=sys.stderr)
            return 1
        except OSError as e:
            if isinstance(e, BrokenPipeError):
                _silence_stdout()  # `vigil log query | head` is not an error
                return 0
            where = f"{e.filename}: " if e.filename else ""
            print(f"{name}: {where}{e.strerror or e}", file=sys.stderr)
            return 1
        except KeyboardInterrupt:
            return 130

    run.__name__ = handler.__name__
    run.__doc__ = handler.__doc__
    return run


def _silence_stdout() -> None:
    # Python flushes stdout at exit and would report the broken pipe again
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


def _progress(label: str, out: TextIO) -> Callable[[int, int], None] | None:
    """A one-line progress meter on a terminal; nothing when piped."""
    if not out.isatty():
        return None
    shown = [False]

    def update(done: int, total: int) -> None:
        if total < 16 << 20 and not shown[0]:
            return  # small journals finish before a meter helps
        shown[0] = True
        pct = 100 * done // total if total else 100
        end = "\n" if done >= total else ""
        print(f"\r{label} {pct:3d}% of {total / (1 << 20):.1f} MiB", end=end, file=out, flush=True)

    return update


def _verify(args: argparse.Namespace) -> int:
    d = data_dir_of(args)
    problems = verify(d, progress=_progress("verifying", sys.stderr))
    info = inspect(d)
    if args.format == "json":
        out = {
            "data_dir": d,
            "ok": not problems,
            "problems": problems,
            "segments": len(info.segments),
            "bytes": info.bytes,
            "first_seq": info.first_seq,
            "last_seq": info.last_seq,
            "snapshots": [{"seq": seq, "path": path} for seq, path in info.snapshots],
        }
        print(json.dumps(out, indent=2))
        return 1 if problems else 0
    for p in problems:
        print(p, file=sys.stderr)
    if problems:
        print(
            f"{d}: {len(problems)} problem(s); `vigil log repair` moves damaged lines "
            "to a quarantine file",
            file=sys.stderr,
        )
        return 1
    print(f"{d}: journal is sound; {_describe(info)}")
    return 0


def _describe(info: JournalInfo) -> str:
    seqs = f"seq {info.first_seq}..{info.last_seq}" if info.last_seq else "no events"
    snaps = (
        f"{len(info.snapshots)} snapshot(s), newest at seq {info.snapshots[0][0]}"
        if info.snapshots
        else "no snapshots"
    )
    return f"{len(info.segments)} segment(s), {info.bytes / (1 << 20):.1f} MiB, {seqs}, {snaps}"


def _repair(args: argparse.Namespace) -> int:
    print(repair(data_dir_of(args)))
    return 0


def _compact(args: argparse.Namespace) -> int:
    d = data_dir_of(args)
    try:
        # the store folds events into alert state; a build without it cannot compact
        store = importlib.import_module("engine.journal.store")
        fold = store.fold_event
    except (ImportError, AttributeError) as e:
        raise UsageError(
            f"compact needs the state store (engine.journal.store.fold_event): {e}"
        ) from None
    initial = getattr(store, "initial_state", dict)
    if not os.path.isdir(d):
        raise JournalError(f"{d}: no such directory; is data_dir right?")
    print(
        compact_offline(d, fold, initial, retention_seconds=args.retention)
        + f"\n(retention {format_duration(args.retention)})"
    )
    return 0


def _tail(args: argparse.Namespace) -> int:
    d = data_dir_of(args)
    show = _printer(args.format)
    last = 0
    if args.lines:
        for ev in tail_events(d, args.lines):
            show(ev)
            last = ev["seq"]
    elif args.follow:
        last = inspect(d).last_seq or 0
    elif not os.path.isdir(d):
        raise JournalError(f"{d}: no such directory; is data_dir right?")
    if args.follow:
        for ev in follow_events(d, last):
            show(ev)
    return 0


def _query(args: argparse.Namespace) -> int:
    d = data_dir_of(args)
    now = time.time()
    since = when(args.since, now) if args.since else None
    until = when(args.until, now) if args.until else None
    events = {e.strip() for arg in args.event for e in arg.split(",") if e.strip()}
    rules = set(args.rule)
    severities = set(args.severity)
    show = _printer(args.format)
    shown = 0
    for ev in _matching(iter_events(d, since_ts=since), since, until):
        if events and ev.get("event") not in events:
            continue
        if rules and ev.get("rule") not in rules:
            continue
        if severities and ev.get("severity") not in severities:
            continue
        if args.alert and not str(ev.get("alert", "")).startswith(args.alert):
            continue
        show(ev)
        shown += 1
        if args.limit is not None and shown >= args.limit:
            break
    return 0


def _matching(
    events: Iterable[dict[str, Any]], since: str | None, until: str | None
) -> Iterable[dict[str, Any]]:
    # journal timestamps have one fixed width, so text order is time order
    for ev in events:
        ts = str(ev.get("ts", ""))
        if since is not None and ts < since:
            continue
        if until is not None and ts > until:
            continue
        yield ev


# ----------------------------------------------------------------- output


def _printer(fmt: str) -> Callable[[dict[str, Any]], None]:
    if fmt == "json":

        def show_json(ev: dict[str, Any]) -> None:
            print(json.dumps(ev, ensure_ascii=False, separators=(",", ":")), flush=True)

        return show_json

    def show_text(ev: dict[str, Any]) -> None:
        print(format_event(ev), flush=True)

    return show_text


_LEAD = ("v", "seq", "ts", "event", "rule", "alert", "severity", "value", "labels")


def format_event(ev: dict[str, Any]) -> str:
    """One readable line: time, seq, event, then the fields people look for first."""
    parts = [str(ev.get("ts", "?")), f"#{ev.get('seq', '?')}", f"{ev.get('event', '?'):<14}"]
    for key in ("rule", "alert", "severity", "value"):
        if key in ev:
            parts.append(f"{key}={_short(ev[key])}")
    labels = ev.get("labels")
    if isinstance(labels, dict) and labels:
        parts.append("{" + ",".join(f"{k}={_short(v)}" for k, v in labels.items()) + "}")
    parts += [f"{k}={_short(_time_field(ev, k, v))}" for k, v in ev.items() if k not in _LEAD]
    # labels and values come from monitored data: no ESC or BEL to the terminal
    return one_line(" ".join(parts).rstrip())


# time fields that journals before 13.18 hold as epoch seconds: shown in RFC 3339
_TIME_FIELDS = {"acknowledged": ("until",), "silence_created": ("until", "starts")}


def _time_field(ev: dict[str, Any], key: str, v: Any) -> Any:
    numeric = isinstance(v, int | float) and not isinstance(v, bool)
    if numeric and key in _TIME_FIELDS.get(str(ev.get("event")), ()):
        return format_ts(float(v))
    return v


def _short(v: Any, width: int = 80) -> str:
    if isinstance(v, str) and v and not any(c.isspace() or c in "\"'{}=," for c in v):
        s = v
    else:
        s = json.dumps(v, ensure_ascii=False, separators=(",", ":"))
    return s if len(s) <= width else s[: width - 1] + "…"

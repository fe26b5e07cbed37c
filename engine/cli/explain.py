"""`vigil explain RULE [--labels K=V ...] [--at TIME] [--journal PATH] [--values FILE]
[-c vigil.yaml] [--url URL | --daemon] [--format text|json]`.

Offline (the default): the configuration from -c (or the default lookup), the
durable state replayed from the journal in --journal (default: the config's
data_dir; with --at only the events up to that time), and the collector values
from --values, else from one collection of the collectors the rule reads (like
`vigil run --once`). Without values the routing part is still explained.

Online (--url, or --daemon with $VIGIL_URL / api.listen of the config): the
running daemon explains with its live values, state, history and channel
status: GET /api/v1/explain/{rule}?label=k=v, which answers the dict form of
engine.explain.result.Explanation. Both modes print the same text (render_text).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import os
import re
import sys
import time
from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime
from typing import Any

from engine.common.durations import parse_duration
from engine.config.build import ConfigLoader
from engine.config.model import Config, Rule
from engine.errors import ClientError, CollectorError, JournalError, VigilError
from engine.explain.explain import explain, find_rule, parse_labels
from engine.explain.text import render_text

RECENT_SENDS = 10_000  # per channel: enough for any sane rate limit


def register(sub: Any) -> None:
    p = sub.add_parser(
        "explain",
        help="why a rule is or is not firing and where its notification would go",
        description="Why a rule is or is not firing, and where its notification would go "
        "(route, silence, inhibition, time interval, acknowledgement, rate limit).",
    )
    p.add_argument("rule", metavar="RULE", help="rule id")
    p.add_argument(
        "--labels",
        "--label",
        dest="labels",
        nargs="+",
        action="extend",
        default=[],
        type=_label,
        metavar="K=V",
        help="pick the alert with these labels (an `each` element); repeatable",
    )
    p.add_argument(
        "--at",
        type=_at,
        metavar="TIME",
        help="explain the situation at this time: RFC 3339 (local time without a zone), "
        "epoch seconds, or e.g. '2h ago' (offline only; replays the journal up to it)",
    )
    p.add_argument(
        "--journal", metavar="PATH", help="data_dir whose journal to replay (default: data_dir)"
    )
    p.add_argument(
        "--values",
        metavar="FILE",
        help="JSON or YAML file of collector -> metrics to evaluate against "
        "(default: collect once from the collectors the rule reads)",
    )
    p.add_argument(
        "--no-collect",
        action="store_true",
        help="do not collect: explain the state and the routing only",
    )
    p.add_argument("-c", "--config", help="vigil.yaml (default: ./vigil.yaml, else deploy/)")
    d = p.add_argument_group("asking the running daemon")
    d.add_argument("--url", help="daemon URL: explain with its live values and channel state")
    d.add_argument(
        "--daemon",
        action="store_true",
        help="ask the running daemon at $VIGIL_URL, else api.listen of the config",
    )
    d.add_argument(
        "--token-file", help="file holding the API token (default: $VIGIL_TOKEN, $VIGIL_TOKEN_FILE)"
    )
    d.add_argument("--timeout", type=float, default=10.0, help="seconds to wait (default 10)")
    p.add_argument("--format", choices=("text", "json"), default="text")
    p.set_defaults(func=run)


# -- argument types (a bad one is a usage error, exit 2) ---------------------------------


def _label(text: str) -> str:
    try:
        parse_labels([text])
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    return text


_AGO = re.compile(r"\s*(\S+)\s+ago\s*\Z")


def _at(text: str) -> float:
    t = text.strip()
    m = _AGO.fullmatch(t)
    if m or t.startswith("-"):
        try:
            return time.time() - parse_duration(m.group(1) if m else t[1:])
        except ValueError as e:
            raise argparse.ArgumentTypeError(str(e)) from None
    try:
        return float(t)
    except ValueError:
        pass
    try:
        dt = datetime.fromisoformat(t.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a time; expected e.g. 2026-12-01T18:00, 2026-12-01T17:00:00Z, "
            "1764608400 or '2h ago'"
        ) from None
    if dt.tzinfo is None:
        dt = dt.astimezone()  # local time, as people mean it
    return dt.timestamp()


# -- the command -------------------------------------------------------------------------


def run(args: argparse.Namespace) -> int:
    if args.url or args.daemon:
        if args.at is not None:
            print("vigil: --at replays the journal: it works offline only", file=sys.stderr)
            return 2
        if args.values or args.journal:
            print(
                "vigil: --values and --journal are for offline use; the daemon uses its own",
                file=sys.stderr,
            )
            return 2
        return _online(args)
    return _offline(args)


def _emit(d: Mapping[str, Any], fmt: str) -> None:
    if fmt == "json":
        json.dump(d, sys.stdout, indent=2, ensure_ascii=False)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(render_text(d))


def _online(args: argparse.Namespace) -> int:
    from urllib.parse import quote

    from engine.cli.connection import Client, Status

    params = [("label", lbl) for lbl in args.labels]
    with Client.from_args(args) as c:
        try:
            d = c.call("GET", f"/api/v1/explain/{quote(args.rule, safe='')}", params=params)
        except Status as e:
            if e.status == 404 and not isinstance(e.data, dict):
                raise ClientError(
                    f"vigil at {c.url} does not serve /api/v1/explain (an older version?); "
                    "run without --url to explain offline"
                ) from None
            raise
    if not isinstance(d, dict) or "rule" not in d:
        raise ClientError(f"{c.url} answered something that is not an explanation")
    _emit(d, args.format)
    return 0


def _offline(args: argparse.Namespace) -> int:
    result = ConfigLoader().load(args.config)
    if result.config is None:
        for p in result.problems:
            print(p.format(), file=sys.stderr)
        print(
            f"vigil: configuration invalid ({len(result.problems)} problem(s)); "
            "`vigil validate` shows them too",
            file=sys.stderr,
        )
        return 1
    config = result.config
    rule = find_rule(config, args.rule)  # UnknownRule: one line with a did-you-mean
    labels = parse_labels(args.labels)
    now = args.at if args.at is not None else time.time()
    notes: list[str] = []

    data_dir = args.journal or config.data_dir
    if args.journal and not os.path.isdir(args.journal):
        print(f"vigil: --journal {args.journal}: no such directory", file=sys.stderr)
        return 1
    state, sends = replay(data_dir, args.at, notes)

    values: dict[str, Mapping[str, Any]] | None = None
    errors: dict[str, str] = {}
    if args.values:
        values = load_values(args.values)
    elif not args.no_collect and args.at is None:
        values, errors = asyncio.run(collect(config, rule, now))
    expl = explain(
        config,
        rule.id,
        labels=labels,
        values=values,
        state=state,
        now=now,
        sent_at=sends,
        collector_errors=errors,
    )
    if notes:
        expl = replace(expl, notes=(*notes, *expl.notes))
    _emit(expl.to_dict(), args.format)
    return 0


# -- the pieces: journal, values, collection ---------------------------------------------


def replay(
    data_dir: str, at: float | None, notes: list[str]
) -> tuple[dict[str, Any], dict[str, list[float]]]:
    """The durable state (latest snapshot + the events after it; with `at` only the
    events up to it) and, per channel, the recent send times (`notified` events)."""
    from engine.journal.format import parse_ts
    from engine.journal.maintenance import inspect
    from engine.journal.reader import iter_events
    from engine.journal.snapshots import read_snapshot
    from engine.journal.store import fold_event, initial_state

    sends: dict[str, collections.deque[float]] = {}
    if not os.path.isdir(data_dir):
        notes.append(f"no journal in {data_dir}: no alert state (has the daemon run there?)")
        return initial_state(), {}
    info = inspect(data_dir)
    if info.last_seq is None and not info.snapshots:
        notes.append(f"the journal in {data_dir} is empty: no alert state")
    base_seq, state = 0, initial_state()
    snap_time: float | None = None  # when the snapshot we start from was written
    if at is None:
        snap = read_snapshot(data_dir)
        if snap is not None:
            base_seq, state = snap
    elif info.first_seq is None or info.first_seq > 1:
        # older events were compacted into snapshots: start from the oldest snapshot
        # whose following events are all still there (a later one might already
        # hold events after `at`)
        first = info.first_seq
        usable = [(s, p) for s, p in sorted(info.snapshots) if first is None or s >= first - 1]
        if not usable:
            raise JournalError(
                f"{data_dir}: events before seq {first} are gone and no snapshot covers them"
            )
        base_seq, state = _read_snapshot(*usable[0])
        try:
            snap_time = os.path.getmtime(usable[0][1])
        except OSError:
            snap_time = None
    folded = 0
    try:
        for ev in iter_events(data_dir, base_seq):
            ts_text = ev.get("ts")
            ts = parse_ts(ts_text) if isinstance(ts_text, str) else None
            if at is not None and ts is not None and ts > at:
                if folded == 0 and base_seq > 0 and (snap_time is None or snap_time > at):
                    raise JournalError(
                        f"{data_dir}: the journal before {ts_text} is only kept as a snapshot; "
                        "--at cannot go back that far"
                    )
                break
            fold_event(state, ev)
            folded += 1
            if ev.get("event") == "notified" and isinstance(ev.get("channel"), str):
                q = sends.setdefault(ev["channel"], collections.deque(maxlen=RECENT_SENDS))
                if ts is not None:
                    q.append(ts)
    except ValueError as e:
        raise JournalError(f"{data_dir}: unreadable journal: {e}") from None
    if at is not None and folded == 0 and base_seq == 0 and info.last_seq:
        notes.append("the journal has no events up to --at: no alert state then")
    return state, {ch: list(q) for ch, q in sends.items()}


def _read_snapshot(seq: int, path: str) -> tuple[int, dict[str, Any]]:
    try:
        with open(path, "rb") as f:
            obj = json.loads(f.read())
    except (OSError, ValueError) as e:
        raise JournalError(f"{path}: unreadable snapshot: {e}") from None
    state = obj.get("state") if isinstance(obj, dict) else None
    if not isinstance(state, dict) or obj.get("seq") != seq:
        raise JournalError(f"{path}: not a snapshot of seq {seq}")
    return seq, state


def load_values(path: str) -> dict[str, Mapping[str, Any]]:
    """A JSON or YAML file of collector name -> {metric: value}."""
    from engine.config.load import YamlError, load_file

    try:
        data = load_file(path).data
    except YamlError as e:
        raise VigilError(f"--values: {e.problem.format()}") from None
    if not isinstance(data, dict):
        raise VigilError(
            f"--values {path}: expected a mapping of collector -> metrics, "
            f"e.g. {{system: {{cpu_percent: 93}}}}"
        )
    out: dict[str, Mapping[str, Any]] = {}
    for name, metrics in data.items():
        if not isinstance(metrics, dict):
            raise VigilError(
                f"--values {path}: collector {name}: expected a mapping of metric -> value, "
                f"not {type(metrics).__name__}"
            )
        out[str(name)] = metrics
    return out


def _reads(rule: Rule) -> set[str]:
    names = set(rule.compiled.names)
    for e in (rule.compiled_each, rule.compiled_resolve):
        if e is not None:
            names |= e.names
    return names - {"it"}


async def collect(
    config: Config, rule: Rule, now: float
) -> tuple[dict[str, Mapping[str, Any]], dict[str, str]]:
    """One collection from the collectors the rule reads: (values, errors)."""
    from engine.collectors.base import Collector, create

    wanted = [c for c in config.collectors if c.name in _reads(rule)]
    values: dict[str, Mapping[str, Any]] = {}
    errors: dict[str, str] = {}
    built: dict[str, Collector] = {}
    for cc in wanted:
        if cc.type == "push":
            errors[cc.name] = "a push collector's values live in the running daemon (use --url)"
            continue
        try:
            built[cc.name] = create(cc)
        except ValueError as e:
            errors[cc.name] = str(e)

    async def one(name: str, c: Collector) -> None:
        try:
            values[name] = await asyncio.wait_for(c.collect(now), timeout=c.timeout + 1.0)
        except (CollectorError, TimeoutError, OSError) as e:
            errors[name] = str(e) or type(e).__name__

    try:
        await asyncio.gather(*(one(n, c) for n, c in built.items()))
    finally:
        for c in built.values():
            await c.aclose()
    return values, errors

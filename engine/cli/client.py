"""Commands that talk to the running daemon's API: `vigil alerts`, `ack`, `unack`,
`silence`, `silences`, `expire`, `status`, `reload`.

Where the daemon is and the token: engine/cli/connection.py; how they print:
engine/cli/output.py.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from datetime import UTC, datetime
from typing import Any

from engine.cli.connection import Client, Status, daemon_args, path_segment, resolve_id
from engine.cli.output import (
    age_text,
    dump,
    labels_text,
    marks_text,
    matchers_text,
    new_table,
    plain,
    print_table,
    value_text,
    when_text,
)
from engine.cli.tables import evidence_lines
from engine.common import matchers
from engine.common.durations import parse_duration
from engine.config.model import SEVERITIES


def register(sub: Any) -> None:
    common = daemon_args()
    fmt = argparse.ArgumentParser(add_help=False)
    fmt.add_argument("--format", choices=("text", "json"), default="text")

    p = sub.add_parser("alerts", parents=[common, fmt], help="list the daemon's active alerts")
    p.add_argument("--state", choices=("pending", "firing"))
    p.add_argument("--severity", choices=SEVERITIES)
    p.add_argument("--rule")
    p.add_argument(
        "--label", action="append", default=[], type=_label, metavar="K=V", help="repeatable"
    )
    p.add_argument("--evidence", type=int, default=3, metavar="N", help="log lines shown (3)")
    p.set_defaults(func=cmd_alerts)

    p = sub.add_parser("ack", parents=[common], help="acknowledge an alert")
    p.add_argument("id", metavar="ID", help="alert fingerprint (a unique prefix will do)")
    p.add_argument("--note", required=True, help="why; shown to everyone")
    p.add_argument("--by", help="who acknowledges (default: the API token's name)")
    when = p.add_mutually_exclusive_group()
    when.add_argument("--for", dest="for_", type=_duration, metavar="DURATION", help="e.g. 2h")
    when.add_argument("--until", type=_time, metavar="TIME", help="RFC 3339 or local time")
    p.set_defaults(func=cmd_ack)

    p = sub.add_parser("unack", parents=[common], help="remove an alert's acknowledgement")
    p.add_argument("id", metavar="ID", help="alert fingerprint (a unique prefix will do)")
    p.set_defaults(func=cmd_unack)

    p = sub.add_parser("silence", parents=[common, fmt], help="create a silence")
    p.add_argument(
        "--match",
        action="append",
        required=True,
        type=_matcher,
        metavar="K=V",
        help="label=value, label!=value, label=~regex or label!~regex (RE2); repeatable, all must match",
    )
    when = p.add_mutually_exclusive_group(required=True)
    when.add_argument("--for", dest="for_", type=_duration, metavar="DURATION", help="e.g. 2h")
    when.add_argument("--until", type=_time, metavar="TIME", help="RFC 3339 or local time")
    p.add_argument("--starts", type=_time, metavar="TIME", help="start later (default: now)")
    p.add_argument("--reason", required=True)
    p.set_defaults(func=cmd_silence)

    p = sub.add_parser("silences", parents=[common, fmt], help="list silences")
    p.add_argument("--all", action="store_true", help="also the expired ones")
    p.set_defaults(func=cmd_silences)

    p = sub.add_parser("expire", parents=[common], help="expire a silence now")
    p.add_argument("silence_id", metavar="SILENCE_ID")
    p.set_defaults(func=cmd_expire)

    p = sub.add_parser("status", parents=[common, fmt], help="the daemon's version and config")
    p.set_defaults(func=cmd_status)

    p = sub.add_parser("reload", parents=[common], help="reload the daemon's configuration")
    p.set_defaults(func=cmd_reload)


# -- argument types (a bad one is a usage error, exit 2) ---------------------------------


def _label(text: str) -> str:
    k, sep, _ = text.partition("=")
    if not sep or not k:
        raise argparse.ArgumentTypeError(f"expected name=value, got {text!r}")
    return text


_CLI_MATCHER = re.compile(r"([^=!~]+)(=~|!~|!=|=)(.*)", re.DOTALL)


def _matcher(text: str) -> dict[str, Any]:
    """`label=value`, `label!=value`, `label=~regex`, `label!~regex`; the value is
    taken as typed (the shell already did the quoting)."""
    m = _CLI_MATCHER.fullmatch(text)
    if m is None:
        raise argparse.ArgumentTypeError(
            f"expected label=value, label!=value, label=~regex or label!~regex, got {text!r}"
        )
    k, op, v = m.groups()
    out: dict[str, Any] = {"label": k}
    if op.endswith("~"):
        try:
            matchers.compile_regex(v)
        except matchers.MatcherError as e:
            raise argparse.ArgumentTypeError(f"{text!r}: {e}") from None
        out["regex"] = v
    else:
        out["value"] = v
    if op.startswith("!"):
        out["negate"] = True
    return out


def _duration(text: str) -> str:
    try:
        if parse_duration(text) <= 0:
            raise ValueError("must be longer than 0s")
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    return text


def _time(text: str) -> str:
    """RFC 3339 for the API; a time without a zone is local time, as people mean it."""
    try:
        dt = datetime.fromisoformat(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a time; expected e.g. 2026-12-01T18:00 or 2026-12-01T17:00:00Z"
        ) from None
    if dt.tzinfo is None:
        dt = dt.astimezone()
    return dt.astimezone(UTC).isoformat().replace("+00:00", "Z")


# -- commands ----------------------------------------------------------------------------


def cmd_alerts(args: argparse.Namespace) -> int:
    params: list[tuple[str, str]] = [("label", lbl) for lbl in args.label]
    for key in ("state", "severity", "rule"):
        value = getattr(args, key)
        if value is not None:
            params.append((key, value))
    with Client.from_args(args) as c:
        alerts: list[dict[str, Any]] = c.call("GET", "/api/v1/alerts", params=params)["alerts"]
    if args.format == "json":
        dump(alerts)
        return 0
    if not alerts:
        print("no active alerts")
        return 0
    order = {s: i for i, s in enumerate(reversed(SEVERITIES))}
    alerts.sort(key=lambda a: (order.get(str(a.get("severity")), 9), str(a.get("starts_at"))))
    table = new_table(
        "fingerprint", "severity", "state", "rule", "labels", "value", "since", "marks"
    )
    now = time.time()
    for a in alerts:
        table.add_row(
            str(a.get("fingerprint")),
            str(a.get("severity")),
            str(a.get("state")),
            str(a.get("rule")),
            labels_text(a.get("labels")),
            value_text(a.get("value")),
            age_text(a.get("starts_at"), now),
            marks_text(a),
        )
    print_table(table, f"{len(alerts)} active alert(s)")
    for line in evidence_lines(alerts, args.evidence):
        print(line)
    return 0


def cmd_ack(args: argparse.Namespace) -> int:
    body: dict[str, Any] = {"note": args.note}
    if args.by:
        body["by"] = args.by
    if args.for_:
        body["for"] = args.for_
    if args.until:
        body["until"] = args.until
    with Client.from_args(args) as c:
        fp = resolve_id(c, args.id)
        a = c.call("POST", f"/api/v1/alerts/{path_segment(fp)}/ack", body=body)
    until = (a.get("acknowledged") or {}).get("until")
    print(
        f"acknowledged {fp} ({a.get('rule')} {labels_text(a.get('labels'))}) "
        f"until {when_text(until) if until else 'it resolves'}"
    )
    return 0


def cmd_unack(args: argparse.Namespace) -> int:
    with Client.from_args(args) as c:
        fp = resolve_id(c, args.id)
        a = c.call("POST", f"/api/v1/alerts/{path_segment(fp)}/unack", body={})
    print(f"unacknowledged {fp} ({a.get('rule')} {labels_text(a.get('labels'))})")
    return 0


def cmd_silence(args: argparse.Namespace) -> int:
    body: dict[str, Any] = {"matchers": args.match, "reason": args.reason}
    if args.for_:
        body["for"] = args.for_
    if args.until:
        body["until"] = args.until
    if args.starts:
        body["starts"] = args.starts
    with Client.from_args(args) as c:
        s = c.call("POST", "/api/v1/silences", body=body)
    if args.format == "json":
        dump(s)
        return 0
    print(
        f"silence {s.get('id')} created: {matchers_text(s.get('matchers'))} "
        f"until {when_text(s.get('until'))}"
    )
    return 0


def cmd_silences(args: argparse.Namespace) -> int:
    with Client.from_args(args) as c:
        params = {"all": "true"} if args.all else None
        silences: list[dict[str, Any]] = c.call("GET", "/api/v1/silences", params=params)[
            "silences"
        ]
    if args.format == "json":
        dump(silences)
        return 0
    if not silences:
        print("no silences")
        return 0
    table = new_table("id", "state", "matchers", "starts", "until", "reason", "by")
    for s in silences:
        table.add_row(
            str(s.get("id")),
            str(s.get("state", "")),
            matchers_text(s.get("matchers")),
            when_text(s.get("starts")),
            when_text(s.get("until")),
            str(s.get("reason") or ""),
            str(s.get("created_by") or ""),
        )
    print_table(table, f"{len(silences)} silence(s)")
    return 0


def cmd_expire(args: argparse.Namespace) -> int:
    with Client.from_args(args) as c:
        c.call("DELETE", f"/api/v1/silences/{path_segment(args.silence_id)}")
    print(f"silence {args.silence_id} expired")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    with Client.from_args(args) as c:
        st: dict[str, Any] = c.call("GET", "/api/v1/status")
    if args.format == "json":
        dump(st)
        return 0
    print(f"vigil {st.get('version', '?')} at {c.url}")
    for key, value in st.items():
        if key in ("version", "last_reload", "rule_problems"):
            continue
        print(f"{key}: {when_text(value) if key in ('started',) else plain(value)}")
    lr = st.get("last_reload")
    if isinstance(lr, dict):
        if lr.get("at"):
            print(f"last reload: {'ok' if lr.get('ok') else 'FAILED'} at {when_text(lr['at'])}")
        else:
            print("last reload: none since start")
        for err in lr.get("errors") or []:
            print(f"  {err}")
    problems = st.get("rule_problems") or []
    if problems:
        print(f"rule problems: {len(problems)}")
        for p in problems:
            print(
                f"  {p.get('problem')} {p.get('rule')}: {' '.join(str(p.get('message')).split())}"
            )
    return 0


def cmd_reload(args: argparse.Namespace) -> int:
    with Client.from_args(args) as c:
        try:
            c.call("POST", "/api/v1/reload", body={})
        except Status as e:
            if e.status == 422 and isinstance(e.data, dict):
                # the problems are the useful part: one line each, then the summary
                for err in e.data.get("errors") or []:
                    print(" ".join(str(err).split()), file=sys.stderr)
            raise
    print("configuration reloaded")
    return 0

"""`vigil notify-test CHANNEL`: send a clearly marked test notification, or with
`--preview` show what the channel would send, sending nothing.

It goes through the real dispatcher (queue, retries with backoff, breaker,
the channel's own settings and templates), without a running daemon and
without touching its journal.

`--preview` renders the channel's templates for the chosen alert and prints
what the channel would put on the wire (requests with headers and body, the
mail, the command line and stdin, the nft batch), secrets as ***: no request,
no process, no file written (engine/channels/preview_build.py). The alert: the
test alert by default; `--alert FP`, an active alert of the running daemon
(its API) or of a journal (`--journal DIR`); `--rule ID --labels k=v ...
--value V`, the alert that rule would raise. The local configuration renders
it, so a template edit can be previewed before the daemon reloads it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Sequence
from typing import Any

from engine.cli.connection import daemon_args
from engine.common.records import JournalEvent
from engine.errors import ClientError, ConfigError, JournalError


def register(sub: Any) -> None:
    p = sub.add_parser(
        "notify-test",
        parents=[daemon_args()],
        help="send a test notification through a channel (--preview: show it, send nothing)",
    )
    p.add_argument("channel", help="channel name from the channel files")
    g = p.add_argument_group("preview")
    g.add_argument(
        "--preview", action="store_true", help="show what the channel would send; send nothing"
    )
    which = g.add_mutually_exclusive_group()
    which.add_argument("--alert", metavar="FP", help="an active alert (a unique prefix will do)")
    which.add_argument("--rule", metavar="ID", help="the alert this rule would raise")
    g.add_argument("--journal", metavar="DIR", help="read --alert from this journal, not the API")
    g.add_argument(
        "--labels", "--label", nargs="+", action="extend", default=[], metavar="K=V",
        type=_label, help="labels of the --rule alert",
    )  # fmt: skip
    g.add_argument("--value", type=_value, help="the --rule alert's value (a number or text)")
    g.add_argument("--resolved", action="store_true", help="preview the resolve")
    g.add_argument("--format", choices=("text", "json"), default="text")
    p.set_defaults(func=run)


def _label(text: str) -> tuple[str, str]:
    k, sep, v = text.partition("=")
    if not sep or not k:
        raise argparse.ArgumentTypeError(f"expected name=value, got {text!r}")
    return k, v


def _value(text: str) -> Any:
    try:
        return json.loads(text)  # 0.93, 12, true
    except ValueError:
        return text


def run(args: argparse.Namespace) -> int:
    from engine.daemon.app import load_or_fail

    preview_only = (args.alert, args.rule, args.journal, args.labels, args.value, args.resolved)
    if not args.preview and any(x not in (None, False, []) for x in preview_only):
        print("vigil: --alert, --rule, --labels, ... choose what --preview shows", file=sys.stderr)
        return 2
    try:
        config, _ = load_or_fail(args.config)
    except ConfigError as e:
        for p in e.problems:
            print(p.format(), file=sys.stderr)
        return 1
    if config.channel(args.channel) is None:
        known = ", ".join(c.name for c in config.channels) or "none"
        print(f"vigil: unknown channel {args.channel!r} (channels: {known})", file=sys.stderr)
        return 2
    if args.preview:
        return _preview(args, config)

    from engine.delivery.dispatch import Dispatcher

    async def emit(events: Sequence[JournalEvent], durable: bool) -> list[dict[str, Any]]:
        return [dict(e) for e in events]  # a test is not part of the daemon's history

    async def send() -> str:
        d = Dispatcher(config, emit=emit, state={"alerts": {}, "silences": {}})
        await d.start()
        try:
            return await d.send_test(args.channel)
        finally:
            await d.aclose()

    outcome = asyncio.run(send())
    ok = ": delivered" in outcome
    print(outcome, file=sys.stdout if ok else sys.stderr)
    return 0 if ok else 1


def _preview(args: argparse.Namespace, config: Any) -> int:
    from engine.channels.preview_build import Choice, PreviewError, preview

    try:
        stored = _stored(args) if args.alert else None
        choice = Choice(
            stored=stored,
            rule=args.rule,
            labels=dict(args.labels),
            value=args.value,
            resolved=args.resolved,
        )
        got = asyncio.run(preview(config, args.channel, choice, time.time()))
    except (ClientError, JournalError, PreviewError) as e:
        print(f"vigil: {e}", file=sys.stderr)
        return 1
    if args.format == "json":
        json.dump(got, sys.stdout, indent=2, ensure_ascii=False)
        print()
    else:
        print(render_text(got), end="")
    return 0


def _stored(args: argparse.Namespace) -> dict[str, Any]:
    """The --alert alert: from the journal's state, or from the daemon's API."""
    fp: str = args.alert
    if args.journal:
        from engine.cli.explain import replay

        notes: list[str] = []
        state, _ = replay(args.journal, None, notes)
        alerts: dict[str, Any] = state["alerts"]
        found = [k for k in alerts if k.startswith(fp)]
        if len(found) != 1:
            what = "is ambiguous" if found else "is not active"
            why = f" ({notes[0]})" if notes else ""
            raise ClientError(f"alert {fp} {what} in the journal {args.journal}{why}")
        return {**alerts[found[0]], "fingerprint": found[0]}
    from engine.cli.connection import Client, path_segment, resolve_id

    with Client.from_args(args) as c:
        full = resolve_id(c, fp)
        alert: dict[str, Any] = c.call("GET", f"/api/v1/alerts/{path_segment(full)}")
    return alert


def render_text(got: dict[str, Any]) -> str:
    """The preview for a terminal: the notification's text, then each wire item."""
    n = got["notification"]
    alerts = len(n["alerts"])
    out = [
        f"preview of {got['channel']} ({got['type']}): {n['kind']}, {n['status']}, "
        f"{alerts} alert{'s' if alerts != 1 else ''}; nothing was sent",
        f"title: {n['title']}" if n["title"] else "title: (not rendered for this channel type)",
    ]
    wire: list[dict[str, Any]] = got["wire"]
    if not wire:
        out.append("(the channel would send nothing for this alert)")
    for w in wire:
        out.append("")
        out.append(f"--- {w['kind']} {w['target']}")
        if w["argv"]:
            import shlex

            out.append("argv: " + shlex.join(w["argv"]))
        out += [f"{k}: {v}" for k, v in w["headers"]]
        out.append("")
        out.append(w["body"].rstrip("\n"))
    return "\n".join(out) + "\n"

"""`vigil dashboard`: a live terminal view of a running daemon, over its API.

Alerts grouped and sorted, collectors, channels and recent events, refreshed
every second; keys to acknowledge, silence, explain and filter. Where the daemon
is and the token: as every client command (--url, $VIGIL_URL, api.listen of the
config; --token-file, $VIGIL_TOKEN, $VIGIL_TOKEN_FILE).

This module only registers the command: Textual (~120 ms to import) and the
HTTP client are imported when the command runs, never by `vigil validate`.
"""

from __future__ import annotations

import argparse
import threading
from typing import Any

SORT_CHOICES = ("severity", "state", "age")


def register(sub: Any) -> None:
    from engine.cli.connection import daemon_args

    p = sub.add_parser(
        "dashboard",
        parents=[daemon_args()],
        help="live terminal view of the daemon's alerts, collectors and channels",
        description="A live terminal view of a running daemon: alerts grouped and sorted, "
        "collectors, channels, recent events. Keys: a ack, u unack, s silence, e explain, "
        "/ filter, g group by, o sort, enter details, 1/2/3 views, ? help, q quit.",
    )
    p.add_argument(
        "--refresh", type=_refresh, default=1.0, metavar="SECONDS", help="default 1, at most 1"
    )
    p.add_argument(
        "--group-by", default="rule", metavar="LABEL", help="group alerts by this label "
        "(default rule; '' for no groups)"
    )  # fmt: skip
    p.add_argument("--sort", choices=SORT_CHOICES, default="severity")
    p.add_argument(
        "--filter", default="", metavar="MATCHERS", help="e.g. 'team=web severity!=info'"
    )
    p.set_defaults(func=cmd_dashboard)


def _refresh(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds, got {text!r}") from None
    if not 0.1 <= v <= 1.0:
        raise argparse.ArgumentTypeError("between 0.1 and 1 second")
    return v


def cmd_dashboard(args: argparse.Namespace) -> int:
    import sys

    from engine.cli.dashboard_model import parse_filter
    from engine.common.matchers import MatcherError
    from engine.errors import ClientError

    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        raise ClientError("vigil dashboard needs a terminal; for a script, use vigil alerts")
    try:
        filters = parse_filter(args.filter)
    except MatcherError as e:
        raise ClientError(f"--filter: {e}") from None
    from engine.cli.dashboard_feed import Feed, Snapshot
    from engine.cli.dashboard_http import DashboardClient

    feed = Feed(DashboardClient.from_args(args), args.timeout)
    # the first snapshot is asked for while Textual imports: the first frame has alerts
    first: list[Snapshot] = []
    fetch = threading.Thread(target=lambda: first.append(feed.snapshot()), daemon=True)
    fetch.start()
    from engine.cli.dashboard_app import Dashboard

    app = Dashboard(
        feed,
        first=(fetch, first),
        refresh=args.refresh,
        group_by=args.group_by,
        sort=args.sort,
        filters=filters,
    )
    try:
        app.run()
    finally:
        feed.close()
    return 0

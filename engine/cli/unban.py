"""`vigil unban ADDRESS` and `vigil bans`: lift a ban of the `ban` channels, list them.

Through the daemon's API (operator role to unban): the ban channel removes the
address from its nftables set and the daemon journals the `unban` event."""

from __future__ import annotations

import argparse
import ipaddress
from typing import Any

from engine.cli.connection import Client, daemon_args, path_segment
from engine.cli.output import dump, new_table, print_table, when_text


def register(sub: Any) -> None:
    common = daemon_args()
    p = sub.add_parser(
        "unban", parents=[common], help="lift the ban of an address (every ban channel)"
    )
    p.add_argument("address", metavar="ADDRESS", type=_address, help="IPv4 or IPv6 address")
    p.set_defaults(func=cmd_unban)
    p = sub.add_parser("bans", parents=[common], help="list the ban channels' active bans")
    p.add_argument("--format", choices=("text", "json"), default="text")
    p.set_defaults(func=cmd_bans)


def _address(text: str) -> str:
    try:
        return str(ipaddress.ip_address(text.strip()))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an IP address: {text!r}") from None


def cmd_unban(args: argparse.Namespace) -> int:
    with Client.from_args(args) as c:
        got = c.call("POST", f"/api/v1/bans/{path_segment(args.address)}/unban", body={})
    lifted = [r["channel"] for r in got.get("channels", []) if r.get("ok")]
    print(f"unbanned {args.address} (channel {', '.join(lifted)})")
    return 0


def cmd_bans(args: argparse.Namespace) -> int:
    with Client.from_args(args) as c:
        bans: list[dict[str, Any]] = c.call("GET", "/api/v1/bans")["bans"]
    if args.format == "json":
        dump(bans)
        return 0
    if not bans:
        print("no active bans")
        return 0
    table = new_table("channel", "banned", "key", "rule", "offences", "until")
    for b in bans:
        until = when_text(b.get("until"))
        table.add_row(
            str(b.get("channel")),
            str(b.get("net")) + (" (dry run)" if b.get("dry_run") else ""),
            str(b.get("key") or ""),
            str(b.get("rule") or ""),
            str(b.get("offences") or ""),
            until,
        )
    print_table(table, f"{len(bans)} active ban(s)")
    return 0
